import { describe, it, expect } from 'vitest';
import { buildSitemap, routePath } from '../../astro-multi-tenant/server/sites/sitemap.ts';
import { buildRobots } from '../../astro-multi-tenant/server/sites/robots.ts';

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
