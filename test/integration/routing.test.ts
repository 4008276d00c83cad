import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdir, readFile, rename, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { copySites, get, rawRequest, removeDir, ROOT, SAMPLE_SITES, startServer, type RunningServer } from '../helpers/server.ts';
import { eventually, freshnessDeadlineMs } from '../helpers/eventually.ts';

const SITE_NAMES = ['Acme Tools', 'Field Notes', 'Acme Docs', 'Sweet Crumbs Bakery'];
const SAMPLE_IDS = ['acme', 'docs', 'bakery', 'blog'];
const escapeHtml = (text: string) => text.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;').replaceAll('"', '&quot;');

/**
 * What only one sample site's pages carry, read from its site.json: its data-site id, name, theme
 * colour and footer. Names overlap in words ("Acme Tools", "Acme Docs"), never as whole strings.
 */
async function siteMarkers(id: string): Promise<string[]> {
  const config = JSON.parse(await readFile(join(SAMPLE_SITES, id, 'site.json'), 'utf8'));
  return [`data-site="${id}"`, escapeHtml(config.name), config.theme.primary, ...(config.footer ? [escapeHtml(config.footer)] : [])];
}

let server: RunningServer;
let sitesDir: string;

beforeAll(async () => {
  sitesDir = await copySites([join(ROOT, 'test/fixtures/broken-sites/broken')]);
  server = await startServer(sitesDir);
});

afterAll(async () => {
  await server?.stop();
  await removeDir(sitesDir);
});

describe('tenant routing by Host', () => {
  it.each([
    ['acme.example', 'acme', 'Acme Tools'],
    ['docs.example', 'docs', 'Acme Docs'],
    ['sweet-crumbs.example', 'bakery', 'Sweet Crumbs Bakery'],
    ['blog.localhost', 'blog', 'Field Notes'],
  ])('serves %s its own home page and no other site\'s', async (host, id, name) => {
    const res = await get(server.port, host);
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/text\/html/);
    expect(res.body).toContain(`data-site="${id}"`);
    expect(res.body).toContain(name);
    // Every marker of this site is on its page (so their absence elsewhere means something)...
    for (const marker of await siteMarkers(id)) expect(res.body, `${host} shows its own ${marker}`).toContain(marker);
    // ...and no marker of any other sample site is: every pair, acme and docs included.
    for (const other of SAMPLE_IDS.filter((o) => o !== id)) {
      for (const marker of await siteMarkers(other)) expect(res.body, `${host} leaks ${other}'s ${marker}`).not.toContain(marker);
    }
  });

  it('serves site B\'s page, never site A\'s, for B\'s host on the same path', async () => {
    const a = await get(server.port, 'acme.example', '/about');
    const b = await get(server.port, 'docs.example', '/about');
    expect(a.status).toBe(200);
    expect(a.body).toContain('About Acme');
    expect(b.status).toBe(404);
    expect(b.body).not.toContain('About Acme');
    expect(b.body).toContain('data-site="docs"');
  });

  it('treats host names case-insensitively, ignores the port and a trailing dot', async () => {
    const res = await get(server.port, 'ACME.Example.:8080');
    expect(res.status).toBe(200);
    expect(res.body).toContain('data-site="acme"');
  });

  it('routes an internationalised domain by its punycode form', async () => {
    const unicode = await rawRequest(server.port, 'GET / HTTP/1.1\r\nHost: ' + Buffer.from('bäckerei.example', 'utf8').toString('latin1') + '\r\nConnection: close\r\n\r\n');
    const puny = await get(server.port, 'xn--bckerei-5wa.example');
    expect(unicode.status).toBe(200);
    expect(puny.status).toBe(200);
    // The UTF-8 Host and its punycode form both reach the bakery, the site that lists the domain.
    for (const body of [Buffer.from(unicode.raw, 'latin1').toString('utf8'), puny.body]) {
      expect(body).toContain('data-site="bakery"');
      expect(body).toContain('Sweet Crumbs Bakery');
      expect(body.match(/data-site="[^"]*"/g)).toEqual(['data-site="bakery"']);
    }
  });

  it('redirects an alias to the primary domain with 301, keeping path and query', async () => {
    const res = await get(server.port, 'www.acme.example', '/products/hammer?ref=ad&x=1');
    expect(res.status).toBe(301);
    expect(res.headers.location).toBe('http://acme.example/products/hammer?ref=ad&x=1');
  });

  it('keeps the visitor\'s port on alias redirects so local testing works', async () => {
    const res = await get(server.port, `www.sweet-crumbs.example:${server.port}`, '/menu');
    expect(res.status).toBe(301);
    expect(res.headers.location).toBe(`http://sweet-crumbs.example:${server.port}/menu`);
  });

  it('serves a wildcard-only site on <site-id>.<PLATFORM_DOMAIN>', async () => {
    const res = await get(server.port, `blog.localhost:${server.port}`, '/posts/2026/hello-world');
    expect(res.status).toBe(200);
    expect(res.body).toContain('Hello, world');
    expect(res.body).toContain('data-layout="article"');
  });

  it('answers an unknown host with the platform 404 page, carrying no tenant data', async () => {
    const res = await get(server.port, 'unknown.example');
    expect(res.status).toBe(404);
    expect(res.body).toContain('data-platform-page="404"');
    for (const name of SITE_NAMES) expect(res.body).not.toContain(name);
    expect(res.body).not.toMatch(/data-site=/);
  });

  it('answers a nested or unknown platform subdomain with 404', async () => {
    expect((await get(server.port, 'nope.localhost')).status).toBe(404);
    expect((await get(server.port, 'a.blog.localhost')).status).toBe(404);
  });

  it.each([
    ['a space', 'bad host.example'],
    ['a slash', 'evil.example/x'],
    ['an empty label', 'a..example'],
    ['a bad port', 'acme.example:99999'],
    ['a userinfo part', 'user@acme.example'],
  ])('rejects a Host with %s with 400', async (_what, host) => {
    const res = await rawRequest(server.port, `GET / HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);
    expect(res.status).toBe(400);
    expect(res.raw).not.toContain('data-site');
  });

  it('rejects a request without Host with 400', async () => {
    const res = await rawRequest(server.port, 'GET / HTTP/1.0\r\n\r\n');
    expect(res.status).toBe(400);
  });

  it('honours X-Forwarded-Host and X-Forwarded-Proto from a trusted proxy (loopback by default)', async () => {
    const res = await get(server.port, 'internal-upstream', '/about', { 'x-forwarded-host': 'acme.example', 'x-forwarded-proto': 'https' });
    expect(res.status).toBe(200);
    expect(res.body).toContain('<link rel="canonical" href="https://acme.example/about">');
  });
});

describe('pages, drafts and errors', () => {
  it('renders nested pages and folder index pages with the site\'s layouts', async () => {
    const nested = await get(server.port, 'acme.example', '/products/hammer');
    const index = await get(server.port, 'acme.example', '/products');
    const landing = await get(server.port, 'acme.example', '/');
    expect(nested.status).toBe(200);
    expect(nested.body).toContain('<table>');
    expect(index.body).toContain('data-layout="page"');
    expect(landing.body).toContain('data-layout="landing"');
    expect(landing.body).toContain('Tools built for a lifetime');
  });

  it('redirects a trailing slash to the canonical path', async () => {
    const res = await get(server.port, 'acme.example', '/products/?a=1');
    expect(res.status).toBe(301);
    expect(res.headers.location).toBe('/products?a=1');
  });

  it('answers a draft page with 404', async () => {
    const res = await get(server.port, 'blog.localhost', '/drafts/secret');
    expect(res.status).toBe(404);
    expect(res.body).not.toContain('Not ready yet');
  });

  it('removes scripts from raw HTML in Markdown', async () => {
    const res = await get(server.port, 'blog.localhost', '/posts/2026/hello-world');
    expect(res.body).not.toContain("alert('this is removed')");
    expect(res.body).not.toMatch(/<script/i);
  });

  it('answers 503 for a site with an invalid site.json while every other site stays 200', async () => {
    const broken = await get(server.port, 'broken.example');
    expect(broken.status).toBe(503);
    expect(broken.body).toContain('temporarily unavailable');
    expect(broken.body).not.toContain('theme.primary');
    expect((await get(server.port, 'broken.localhost')).status).toBe(503);
    for (const host of ['acme.example', 'docs.example', 'sweet-crumbs.example', 'blog.localhost']) {
      expect((await get(server.port, host)).status).toBe(200);
    }
    const logged = server.logs.find((l) => l.includes('site config invalid'));
    expect(logged).toContain('sites/broken/site.json');
    expect(logged).toContain('theme.primary');
  });

  it('serves a per-site sitemap.xml and robots.txt with the site\'s own origin', async () => {
    const sitemap = await get(server.port, 'docs.example', '/sitemap.xml');
    expect(sitemap.status).toBe(200);
    expect(sitemap.headers['content-type']).toMatch(/xml/);
    expect(sitemap.body).toContain('<loc>http://docs.example/guide/getting-started</loc>');
    expect(sitemap.body).not.toContain('acme.example');
    const blog = await get(server.port, 'blog.localhost', '/sitemap.xml');
    expect(blog.body).toContain('<loc>http://blog.localhost/posts/2026/hello-world</loc>');
    expect(blog.body).not.toContain('secret');
    const robots = await get(server.port, 'docs.example', '/robots.txt');
    expect(robots.body).toContain('Disallow: /reference/internal');
    expect(robots.body).toContain('Sitemap: http://docs.example/sitemap.xml');
    // Members pages are not for crawlers.
    expect(sitemap.body).not.toContain('/members');
  });

  it('keeps disallowed paths out of the sitemap, and marks every page noindex when robots.index is false', async () => {
    await mkdir(join(sitesDir, 'docs/pages/reference/internal'), { recursive: true });
    await writeFile(join(sitesDir, 'docs/pages/reference/internal/index.md'), '---\ntitle: Internal\n---\nInternal notes.\n');
    const docs = await get(server.port, 'docs.example', '/sitemap.xml');
    expect(docs.body).toContain('<loc>http://docs.example/reference/site-json</loc>');
    expect(docs.body).not.toContain('/reference/internal');
    expect((await get(server.port, 'docs.example', '/guide')).body).not.toContain('name="robots" content="noindex"');

    const configPath = join(sitesDir, 'bakery/site.json');
    const { readFile } = await import('node:fs/promises');
    const config = JSON.parse(await readFile(configPath, 'utf8'));
    await writeFile(configPath, JSON.stringify({ ...config, robots: { index: false, disallow: [] } }));
    const { waitFor } = await import('../helpers/server.ts');
    await waitFor(async () => (await get(server.port, 'sweet-crumbs.example', '/')).body.includes('<meta name="robots" content="noindex">'), 2000);
    const sitemap = await get(server.port, 'sweet-crumbs.example', '/sitemap.xml');
    expect(sitemap.body).not.toContain('<loc>');
    expect((await get(server.port, 'sweet-crumbs.example', '/robots.txt')).body).toContain('Disallow: /');
    await writeFile(configPath, JSON.stringify(config));
  });

  it('answers methods other than GET and HEAD with 405', async () => {
    const res = await get(server.port, 'acme.example', '/', {}, 'DELETE');
    expect(res.status).toBe(405);
    expect(res.headers.allow).toBe('GET, HEAD');
  });
});

describe('path safety', () => {
  it.each([
    '/../broken/site.json',
    '/%2e%2e/%2e%2e/package.json',
    '/%2E%2E%2Fsite.json',
    '/..%2fsite.json',
    '/logo.svg%00.md',
    '/.hidden',
    '/%5c..%5csite.json',
    '/public/../site.json',
  ])('never reads a file outside the site folder for %s', async (path) => {
    const res = await rawRequest(server.port, `GET ${path} HTTP/1.1\r\nHost: acme.example\r\nConnection: close\r\n\r\n`);
    expect(res.status).toBe(404);
    expect(res.raw).not.toContain('"domains"');
  });

  it('refuses a symlink that points out of the site folder', async () => {
    await writeFile(join(sitesDir, 'secret.md'), '---\ntitle: Secret\n---\nTOP SECRET');
    await symlink(join(sitesDir, 'secret.md'), join(sitesDir, 'acme/pages/leak.md'));
    await symlink(join(sitesDir, 'docs/site.json'), join(sitesDir, 'acme/public/leak.json'));
    const page = await get(server.port, 'acme.example', '/leak');
    const file = await get(server.port, 'acme.example', '/leak.json');
    expect(page.status).toBe(404);
    expect(page.body).not.toContain('TOP SECRET');
    expect(file.status).toBe(404);
  });
});

describe('static files', () => {
  it('serves a site\'s public file with ETag, caching headers and 304', async () => {
    const res = await get(server.port, 'acme.example', '/logo.svg');
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toBe('image/svg+xml');
    expect(res.headers['cache-control']).toMatch(/max-age=\d+/);
    expect(res.headers.etag).toBeTruthy();
    const again = await get(server.port, 'acme.example', '/logo.svg', { 'if-none-match': res.headers.etag! });
    expect(again.status).toBe(304);
    expect(again.body).toBe('');
  });

  it('never serves one site\'s public file on another site\'s host', async () => {
    expect((await get(server.port, 'docs.example', '/logo.svg')).status).toBe(404);
    expect((await get(server.port, 'acme.example', '/images/cover.svg')).status).toBe(404);
    expect((await get(server.port, 'blog.localhost', '/images/cover.svg')).status).toBe(200);
  });

  it('serves hashed stylesheets as immutable, a site\'s own only on its hosts', async () => {
    const page = await get(server.port, 'blog.localhost', '/');
    const href = /<link rel="stylesheet" href="([^"]+)"/.exec(page.body)?.[1];
    expect(href).toMatch(/^\/_platform\/css\/blog\/site\.[a-f0-9]+\.css$/);
    const css = await get(server.port, 'blog.localhost', href!);
    expect(css.status).toBe(200);
    expect(css.headers['cache-control']).toContain('immutable');
    expect(css.body).toContain('--site-primary');
    expect((await get(server.port, 'acme.example', href!)).status).toBe(404);
  });

  it('renders a site without built CSS with the shared base CSS and logs a warning', async () => {
    await mkdir(join(sitesDir, 'nocss/pages'), { recursive: true });
    await writeFile(join(sitesDir, 'nocss/site.json'), JSON.stringify({ name: 'No CSS Yet' }));
    await writeFile(join(sitesDir, 'nocss/pages/index.md'), '---\ntitle: Unstyled\n---\nhello');
    // A new folder goes live on the follower's next tick (CONTENT_CHECK_MS), not necessarily on the very first request.
    const { value: res } = await eventually(() => get(server.port, 'nocss.localhost'), (r) => r.status === 200, { what: 'nocss.localhost answers', deadlineMs: freshnessDeadlineMs({ contentCheckMs: 500 }) });
    expect(res.status).toBe(200);
    expect(res.body).toMatch(/href="\/_platform\/css\/_base\/site\.[a-f0-9]+\.css"/);
    // The log line travels through a pipe: give it a moment to arrive.
    const { waitFor } = await import('../helpers/server.ts');
    await waitFor(async () => server.logs.some((l) => l.includes('"site":"nocss"') && l.includes('site CSS is missing')), 2000);
  });
});

describe('content folders without restart', () => {
  it('keeps serving the old page while a page file is replaced atomically', async () => {
    // A server of its own that re-checks files on every request (CONTENT_CHECK_MS=0), so requests
    // meet the replacements at every step, not once per interval.
    const own = await startServer(sitesDir, { CONTENT_CHECK_MS: '0' });
    try {
      const path = join(sitesDir, 'docs/pages/index.md');
      const original = 'Start with the <a href="/guide">guide</a>';
      expect((await get(own.port, 'docs.example')).body).toContain(original);
      // At least 20 replacements, and more (up to 200) until the clients have seen three versions:
      // on a loaded machine 20 can all land between two requests.
      const MIN_SWAPS = 20;
      const MAX_SWAPS = 200;
      let last = 0;
      const marker = (i: number) => `swap-version-${i}`;
      const seen = new Map<string, number>();
      const wrong: string[] = [];
      let replacing = true;
      const client = async () => {
        while (replacing) {
          const res = await get(own.port, 'docs.example').catch((error: Error) => ({ status: 0, body: error.message }));
          const version = res.body.includes(original) ? 'original' : /swap-version-(\d+)/.exec(res.body)?.[0];
          if (res.status !== 200 || !version || !res.body.includes('data-site="docs"')) wrong.push(`${res.status} ${res.body.slice(0, 160)}`);
          else seen.set(version, (seen.get(version) ?? 0) + 1);
        }
      };
      const clients = Array.from({ length: 4 }, client);
      for (let i = 1; i <= MAX_SWAPS && (i <= MIN_SWAPS || seen.size < 3); i++) {
        await writeFile(`${path}.tmp`, `---\ntitle: Swapped ${i}\n---\n${marker(i)}\n\n${'More text. '.repeat(200)}`);
        await rename(`${path}.tmp`, path);
        last = i;
        await new Promise((r) => setTimeout(r, 25));
      }
      replacing = false;
      await Promise.all(clients);
      // Every answer during the replacements was a whole page, old or new: never an error, a 404
      // or a half-read file.
      expect(wrong).toEqual([]);
      // The requests did overlap the replacements: they saw several versions, not one.
      expect(seen.size, JSON.stringify([...seen])).toBeGreaterThanOrEqual(3);
      await eventually(() => get(own.port, 'docs.example'), (res) => res.body.includes(marker(last)), { what: 'the last version', deadlineMs: freshnessDeadlineMs({ contentCheckMs: 0 }) });
    } finally {
      await own.stop();
    }
  });
});
