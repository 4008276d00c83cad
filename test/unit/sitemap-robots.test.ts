import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdir, mkdtemp, realpath, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { buildSitemap, routePath, sitemapEntries } from '../../astro-multi-tenant/server/sites/sitemap.ts';
import { buildRobots } from '../../astro-multi-tenant/server/sites/robots.ts';
import { listPageRoutes } from '../../astro-multi-tenant/server/sites/pages.ts';
import { readPageFrontmatter } from '../../astro-multi-tenant/server/sites/page-frontmatter.ts';
import { parseSiteConfig, type Site } from '../../astro-multi-tenant/server/sites/loader.ts';

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
    const xml = buildSitemap(ORIGIN, [[], ['about'], ['blog', 'first-post']].map((segments) => ({ segments })));
    expect(locs(xml)).toEqual([`${ORIGIN}/`, `${ORIGIN}/about`, `${ORIGIN}/blog/first-post`]);
  });

  it('is a sitemaps.org urlset document', () => {
    const xml = buildSitemap(ORIGIN, [{ segments: [] }]);
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
    const xml = buildSitemap('https://a.example', [{ segments: ["it's"] }, { segments: ['<tag>&more'] }]);
    expect(xml).toContain('<loc>https://a.example/it&apos;s</loc>');
    expect(xml).toContain('<loc>https://a.example/%3Ctag%3E%26more</loc>');
    for (const loc of locs(xml)) expect(loc.replace(/&(amp|lt|gt|apos|quot);/g, '')).not.toMatch(/[<>&'"]/);
  });

  it('gives each URL its lastmod when one is known, and none when it is not', () => {
    const xml = buildSitemap(ORIGIN, [{ segments: ['a'], lastmod: '2026-01-31' }, { segments: ['b'] }, { segments: ['c'], lastmod: '2026-11-30T09:00:00.000Z' }]);
    expect(xml).toContain(`<url><loc>${ORIGIN}/a</loc><lastmod>2026-01-31</lastmod></url>`);
    expect(xml).toContain(`<url><loc>${ORIGIN}/b</loc></url>`);
    expect(xml).toContain(`<lastmod>2026-11-30T09:00:00.000Z</lastmod>`);
  });

  it('escapes an origin containing an ampersand', () => {
    expect(buildSitemap('https://a.example&x', [{ segments: [] }])).toContain('<loc>https://a.example&amp;x/</loc>');
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

describe('sitemapEntries', () => {
  let root: string;

  async function put(path: string, text: string, mtime?: Date) {
    await mkdir(dirname(path), { recursive: true });
    await writeFile(path, text);
    if (mtime) await utimes(path, mtime, mtime);
  }

  function siteWith(json: string): Site {
    const parsed = parseSiteConfig(json, 'site.json');
    if (!parsed.ok) throw parsed.error;
    return { id: 'demo', dir: root, config: parsed.config, cssFile: undefined, cssProblem: undefined, version: json };
  }

  const entries = (json = '{"name":"Demo"}') => sitemapEntries(siteWith(json), { listRoutes: (site) => listPageRoutes(site), readFrontmatter: readPageFrontmatter });
  const paths = async (json?: string) => (await entries(json)).map((e) => routePath(e.segments));

  beforeAll(async () => {
    root = await realpath(await mkdtemp(join(tmpdir(), 'sitemap-test-')));
    const pages = join(root, 'pages');
    const old = new Date('2025-03-04T05:06:07.000Z');
    await put(join(pages, 'index.md'), '---\ntitle: Home\n---\n', old);
    await put(join(pages, 'guide.md'), '---\ntitle: Guide (file)\ndate: 2026-01-31\n---\n', old);
    await put(join(pages, 'guide', 'index.md'), '---\ntitle: Guide (folder)\n---\n');
    await put(join(pages, 'guide', 'install.md'), '---\ntitle: Install\n---\n');
    await put(join(pages, 'secret.md'), '---\ntitle: Secret\ndraft: true\n---\n');
    await put(join(pages, 'members', 'news.md'), '---\ntitle: News\naccess: members\n---\n');
    await put(join(pages, 'internal', 'notes.md'), '---\ntitle: Notes\n---\n');
    await put(join(pages, 'broken.md'), '---\ntitle: [unclosed\n---\n');
    // 1 MiB less a little of the body that took 16.7 s to render per 180 KB: listed from its frontmatter.
    await put(join(pages, 'trap.md'), `---\ntitle: Trap\n---\n${'[a](b '.repeat(174_000)}`);
  });

  afterAll(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('lists /guide once when both guide.md and guide/index.md exist, and leaves drafts, members pages and invalid pages out', async () => {
    expect(await paths()).toEqual(['/guide', '/guide/install', '/', '/internal/notes', '/trap']);
  });

  it('reads frontmatter only, never rendering a body: a page whose Markdown would take minutes costs a read', async () => {
    const started = performance.now();
    const listed = await paths();
    // Rendering the trap page would take 90 s or more; reading it takes milliseconds.
    expect(performance.now() - started).toBeLessThan(5_000);
    expect(listed).toContain('/trap');
  });

  it('lists the file a route serves when two files share it (guide.md before guide/index.md), whatever order they are listed in', async () => {
    const site = siteWith('{"name":"Demo"}');
    const seen: string[] = [];
    const reversed = await sitemapEntries(site, {
      listRoutes: async (s) => (await listPageRoutes(s)).reverse(),
      readFrontmatter: async (s, route) => {
        seen.push(route.file);
        return readPageFrontmatter(s, route);
      },
    });
    expect(reversed.find((e) => routePath(e.segments) === '/guide')?.lastmod).toBe('2026-01-31');
    expect(seen).toContain('guide.md');
    expect(seen).not.toContain('guide/index.md');
  });

  it('leaves out paths under a robots.disallow prefix, and only those', async () => {
    expect(await paths('{"name":"Demo","robots":{"disallow":["/internal"]}}')).toEqual(['/guide', '/guide/install', '/', '/trap']);
    expect(await paths('{"name":"Demo","robots":{"disallow":["/gui"]}}')).toContain('/guide');
  });

  it('lists nothing for a site that asks not to be indexed', async () => {
    expect(await entries('{"name":"Demo","robots":{"index":false}}')).toEqual([]);
  });

  it('dates each page by its date frontmatter, else by its file\'s modification time', async () => {
    const byPath = new Map((await entries()).map((e) => [routePath(e.segments), e.lastmod]));
    expect(byPath.get('/guide')).toBe('2026-01-31');
    expect(byPath.get('/')).toBe('2025-03-04T05:06:07.000Z');
    expect(Date.parse(byPath.get('/guide/install')!)).toBeGreaterThan(Date.parse('2026-01-01'));
  });
});
