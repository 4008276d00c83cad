import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { createServer, request, type Server } from 'node:http';
import { mkdir, mkdtemp, realpath, rm, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import pino from 'pino';
import { buildSitemap, routePath } from '../../astro-multi-tenant/server/sites/sitemap.ts';
import { buildRobots } from '../../astro-multi-tenant/server/sites/robots.ts';
import { createApp, type AppDeps } from '../../astro-multi-tenant/server/app.ts';
import { createPageLoader } from '../../astro-multi-tenant/server/sites/pages.ts';
import { createContentCache } from '../../astro-multi-tenant/server/sites/content-cache.ts';
import { parseSiteConfig, type Site } from '../../astro-multi-tenant/server/sites/loader.ts';
import { parseTrustedProxies } from '../../astro-multi-tenant/server/tenant/trusted-proxies.ts';

const ORIGIN = 'https://acme.example';

function locs(xml: string): string[] {
  return [...xml.matchAll(/<loc>([^<]*)<\/loc>/g)].map((m) => m[1]!);
}

describe('routePath', () => {
  it('writes [] as / and nested segments as a nested path', () => {
    expect(routePath([])).toBe('/');
    expect(routePath(['posts', '2026', 'hello-world'])).toBe('/posts/2026/hello-world');
  });

  it('percent-encodes each segment, including characters that would change the path', () => {
    expect(routePath(['café', 'a b', 'x?y#z', 'a/b'])).toBe('/caf%C3%A9/a%20b/x%3Fy%23z/a%2Fb');
  });
});

describe('buildSitemap', () => {
  it('lists one absolute URL per route on the given origin', () => {
    const xml = buildSitemap(ORIGIN, [[], ['about'], ['blog', 'first-post']]);
    expect(locs(xml)).toEqual([`${ORIGIN}/`, `${ORIGIN}/about`, `${ORIGIN}/blog/first-post`]);
  });

  it('is a sitemaps.org urlset document', () => {
    const xml = buildSitemap(ORIGIN, [[]]);
    expect(xml.startsWith('<?xml version="1.0" encoding="UTF-8"?>\n')).toBe(true);
    expect(xml).toContain('<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">');
    expect(xml.trimEnd().endsWith('</urlset>')).toBe(true);
  });

  it('is still a valid, empty urlset for a site with no pages', () => {
    const xml = buildSitemap(ORIGIN, []);
    expect(locs(xml)).toEqual([]);
    expect(xml).toContain('<urlset');
    expect(xml).toContain('</urlset>');
  });

  it('escapes XML special characters so a page name cannot break the document', () => {
    const xml = buildSitemap('https://a.example', [["it's"], ['<tag>&more']]);
    expect(xml).toContain('<loc>https://a.example/it&apos;s</loc>');
    expect(xml).toContain('<loc>https://a.example/%3Ctag%3E%26more</loc>');
    for (const loc of locs(xml)) expect(loc.replace(/&(amp|lt|gt|apos|quot);/g, '')).not.toMatch(/[<>&'"]/);
  });

  it('escapes an origin containing an ampersand', () => {
    expect(buildSitemap('https://a.example&x', [[]])).toContain('<loc>https://a.example&amp;x/</loc>');
  });
});

describe('buildRobots', () => {
  it('allows everything by default and points at this site\'s own sitemap', () => {
    expect(buildRobots(ORIGIN, { index: true, disallow: [] })).toBe(`User-agent: *\nAllow: /\n\nSitemap: ${ORIGIN}/sitemap.xml\n`);
  });

  it('lists each disallowed path and no blanket Allow', () => {
    const text = buildRobots(ORIGIN, { index: true, disallow: ['/reference/internal', '/drafts'] });
    expect(text).toBe(`User-agent: *\nDisallow: /reference/internal\nDisallow: /drafts\n\nSitemap: ${ORIGIN}/sitemap.xml\n`);
    expect(text).not.toContain('Allow: /\n');
  });

  it('disallows the whole site when indexing is off, whatever else is listed', () => {
    const text = buildRobots(ORIGIN, { index: false, disallow: ['/drafts'] });
    expect(text).toBe(`User-agent: *\nDisallow: /\n\nSitemap: ${ORIGIN}/sitemap.xml\n`);
  });

  it('names the sitemap on the origin it was built for', () => {
    expect(buildRobots('http://blog.localhost:4321', { index: true, disallow: [] })).toContain('Sitemap: http://blog.localhost:4321/sitemap.xml');
  });
});

describe('GET /sitemap.xml', () => {
  let root: string;
  let server: Server;

  async function put(path: string, text: string) {
    await mkdir(dirname(path), { recursive: true });
    await writeFile(path, text);
  }

  function getSitemap(): Promise<string> {
    return new Promise((resolvePromise, reject) => {
      const { port } = server.address() as AddressInfo;
      request({ port, path: '/sitemap.xml', headers: { host: 'demo.localhost' } }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk) => (body += chunk));
        res.on('end', () => (res.statusCode === 200 ? resolvePromise(body) : reject(new Error(`status ${res.statusCode}: ${body}`))));
      })
        .on('error', reject)
        .end();
    });
  }

  beforeAll(async () => {
    root = await realpath(await mkdtemp(join(tmpdir(), 'sitemap-test-')));
    const pages = join(root, 'pages');
    await put(join(pages, 'index.md'), '---\ntitle: Home\n---\n');
    await put(join(pages, 'guide.md'), '---\ntitle: Guide (file)\n---\n');
    await put(join(pages, 'guide', 'index.md'), '---\ntitle: Guide (folder)\n---\n');
    await put(join(pages, 'guide', 'install.md'), '---\ntitle: Install\n---\n');
    await put(join(pages, 'secret.md'), '---\ntitle: Secret\ndraft: true\n---\n');
    const parsed = parseSiteConfig('{"name":"Demo"}', 'site.json');
    if (!parsed.ok) throw parsed.error;
    const site: Site = { id: 'demo', dir: root, config: parsed.config, cssFile: undefined, cssProblem: undefined, version: 'v1' };
    // Only what the sitemap route touches is real; the rest fails loudly if it is ever reached.
    const deps: AppDeps = {
      registry: { resolve: async () => ({ kind: 'site', siteId: 'demo', via: 'platform' }), requestRescan: async () => {} } as unknown as AppDeps['registry'],
      loadSite: (async () => ({ ok: true, site })) as unknown as AppDeps['loadSite'],
      loadPage: createPageLoader(createContentCache({ maxEntries: 100, maxBytes: 10_000_000, checkIntervalMs: 1000 })),
      renderer: { render: async () => { throw new Error('the sitemap must not render a view'); } },
      trustedProxies: parseTrustedProxies(''),
      cssDir: join(root, 'css'),
      baseCssFile: undefined,
      staticMaxAge: 0,
      logger: pino({ level: 'silent' }),
    };
    server = createServer(createApp(deps));
    await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  });

  afterAll(async () => {
    await new Promise((done) => server?.close(done));
    await rm(root, { recursive: true, force: true });
  });

  it('lists /guide once when both guide.md and guide/index.md exist, and leaves drafts out', async () => {
    expect(locs(await getSitemap())).toEqual(['http://demo.localhost/guide', 'http://demo.localhost/guide/install', 'http://demo.localhost/']);
  });
});
