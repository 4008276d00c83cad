import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdir, mkdtemp, realpath, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readContainedPrefix } from '../../astro-multi-tenant/server/sites/contained-file.ts';
import { FRONTMATTER_PREFIX_BYTES, readPageFrontmatter } from '../../astro-multi-tenant/server/sites/page-frontmatter.ts';
import { listPageRoutes, type PageRoute } from '../../astro-multi-tenant/server/sites/pages.ts';
import { parseSiteConfig, type Site } from '../../astro-multi-tenant/server/sites/loader.ts';
import { robotsSitemapStage } from '../../astro-multi-tenant/server/pipeline/stages/robots-sitemap.ts';
import type { SiteRequest } from '../../astro-multi-tenant/server/pipeline/context.ts';

/**
 * A sitemap costs kilobytes per page, and a burst of sitemap requests shares one pass: anyone can
 * ask for /sitemap.xml, so its cost must not grow with page bodies or with how often it is asked.
 */
let root: string;
let site: Site;

beforeAll(async () => {
  root = await realpath(await mkdtemp(join(tmpdir(), 'amt-sitemap-cost-')));
  await mkdir(join(root, 'pages'), { recursive: true });
  for (let i = 0; i < 20; i++) {
    const file = join(root, 'pages', `p${i}.md`);
    await writeFile(file, `---\ntitle: Page ${i}\ndate: 2026-01-${String(i + 1).padStart(2, '0')}\n---\nbody`);
    await truncate(file, 1024 * 1024 - 1); // a page at the size limit, mostly sparse body
  }
  const parsed = parseSiteConfig('{"name":"Costly"}', 'site.json');
  if (!parsed.ok) throw parsed.error;
  site = { id: 'costly', dir: root, config: parsed.config, cssFile: undefined, cssProblem: undefined, version: 'v1' };
});

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('reading frontmatter for the sitemap', () => {
  it('reads only the first FRONTMATTER_PREFIX_BYTES of a page at the size limit', async () => {
    const read = await readContainedPrefix(join(root, 'pages', 'p0.md'), root, { maxBytes: 1024 * 1024, prefixBytes: FRONTMATTER_PREFIX_BYTES });
    expect(read.kind).toBe('text');
    if (read.kind !== 'text') return;
    expect(read.stats.size).toBe(1024 * 1024 - 1);
    expect(Buffer.byteLength(read.text, 'latin1')).toBeLessThanOrEqual(FRONTMATTER_PREFIX_BYTES);
    expect(FRONTMATTER_PREFIX_BYTES).toBeLessThan(100 * 1024);
  });

  it('still gets each page\'s frontmatter from that prefix', async () => {
    const got = await readPageFrontmatter(site, { segments: ['p3'], file: 'p3.md' });
    expect(got?.frontmatter.title).toBe('Page 3');
    expect(got?.frontmatter.date).toBe('2026-01-04');
  });
});

describe('a burst of sitemap requests', () => {
  let server: Server;
  let reads = 0;

  beforeAll(async () => {
    const stage = robotsSitemapStage({
      listRoutes: (s) => listPageRoutes(s),
      readFrontmatter: async (s: Site, route: PageRoute) => {
        reads++;
        return readPageFrontmatter(s, route);
      },
      edgeCacheSeconds: 0,
    });
    server = createServer((req, res) => {
      const ctx = { req, res, site, siteOrigin: 'http://costly.example', target: { segments: ['sitemap.xml'], pathname: '/sitemap.xml', search: '', trailingSlash: false } } as unknown as SiteRequest;
      void stage(ctx);
    });
    await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  });

  afterAll(async () => {
    await new Promise((done) => server.close(done));
  });

  const fetchSitemap = () =>
    new Promise<string>((resolve, reject) => {
      const { port } = server.address() as AddressInfo;
      request({ port, path: '/sitemap.xml', agent: false }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c) => (body += c));
        res.on('end', () => resolve(body));
      })
        .on('error', reject)
        .end();
    });

  it('shares one pass over the pages among requests that arrive together', async () => {
    reads = 0;
    const bodies = await Promise.all(Array.from({ length: 8 }, fetchSitemap));
    expect(new Set(bodies).size).toBe(1);
    expect(bodies[0]).toContain('<loc>http://costly.example/p19</loc>');
    expect(reads).toBe(20);
  });
});
