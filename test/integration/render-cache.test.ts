import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chmod, mkdir, mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { copySites, get, removeDir, startServer, waitFor, type RunningServer } from '../helpers/server.ts';
import { metricSum } from '../../bench/metrics-text.ts';
import { eventually, freshnessDeadlineMs } from '../helpers/eventually.ts';

describe('the render cache for anonymous pages', () => {
  let sitesDir: string;
  let server: RunningServer;
  // The cache's freshness rides on the content checks; the deadline below derives from this.
  const CONTENT_CHECK_MS = 500;
  const EDIT_DEADLINE_MS = freshnessDeadlineMs({ contentCheckMs: CONTENT_CHECK_MS });

  beforeAll(async () => {
    sitesDir = await copySites();
    server = await startServer(sitesDir, { CONTENT_CHECK_MS: String(CONTENT_CHECK_MS) });
  }, 30_000);

  afterAll(async () => {
    await server?.stop();
    await removeDir(sitesDir);
  });

  it('answers a repeated anonymous request from the cache, with the same bytes and ETag', async () => {
    const first = await get(server.port, 'acme.example', '/products');
    const second = await get(server.port, 'acme.example', '/products');
    expect(first.status).toBe(200);
    expect(first.headers['x-render-cache']).toBe('miss');
    expect(second.headers['x-render-cache']).toBe('hit');
    expect(second.body).toBe(first.body);
    expect(second.headers.etag).toBe(first.headers.etag);
    expect(first.headers.etag).toMatch(/^W\/"[A-Za-z0-9_-]+"$/);
    expect(second.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(second.headers['cache-control']).toBe('public, max-age=0, must-revalidate');
    expect(Number(second.headers['content-length'])).toBe(Buffer.byteLength(second.body));
  });

  it('answers If-None-Match with 304 and no body', async () => {
    const page = await get(server.port, 'docs.example', '/guide');
    const revalidated = await get(server.port, 'docs.example', '/guide', { 'If-None-Match': page.headers.etag as string });
    expect(revalidated.status).toBe(304);
    expect(revalidated.body).toBe('');
    expect(revalidated.headers.etag).toBe(page.headers.etag);
    expect((await get(server.port, 'docs.example', '/guide', { 'If-None-Match': 'W/"something-else"' })).status).toBe(200);
  });

  it('keeps each tenant’s pages apart: the same path on two hosts is two entries', async () => {
    const acme = await get(server.port, 'acme.example', '/');
    const docs = await get(server.port, 'docs.example', '/');
    const acmeAgain = await get(server.port, 'acme.example', '/');
    const docsAgain = await get(server.port, 'docs.example', '/');
    expect(acmeAgain.headers['x-render-cache']).toBe('hit');
    expect(docsAgain.headers['x-render-cache']).toBe('hit');
    expect(acmeAgain.body).toContain('data-site="acme"');
    expect(docsAgain.body).toContain('data-site="docs"');
    expect(acme.headers.etag).not.toBe(docs.headers.etag);
    // The platform subdomain renders with the primary domain as canonical origin: the same page.
    const wildcard = await get(server.port, 'acme.localhost', '/');
    expect(wildcard.body).toContain('data-site="acme"');
    expect(wildcard.headers.etag).toBe(acme.headers.etag);
    // A site without a domain is canonical on its platform host.
    const blog = await get(server.port, 'blog.localhost', '/');
    expect(blog.body).toContain('data-site="blog"');
    expect(blog.headers.etag).not.toBe(acme.headers.etag);
  });

  it('never serves an edited page stale beyond two content-check intervals', async () => {
    const path = join(sitesDir, 'docs/pages/guide/getting-started.md');
    await get(server.port, 'docs.example', '/guide/getting-started');
    const cached = await get(server.port, 'docs.example', '/guide/getting-started');
    expect(cached.headers['x-render-cache']).toBe('hit');
    await writeFile(path, (await readFile(path, 'utf8')) + '\nFreshly edited paragraph.\n');
    await eventually(() => get(server.port, 'docs.example', '/guide/getting-started'), (res) => res.status === 200 && res.body.includes('Freshly edited paragraph.'), {
      what: `the edited page (CONTENT_CHECK_MS=${CONTENT_CHECK_MS})`,
      deadlineMs: EDIT_DEADLINE_MS,
      intervalMs: 20,
      describe: (res) => `${res.status} x-render-cache=${res.headers['x-render-cache']} etag=${res.headers.etag}${res.body.includes('Freshly edited') ? ' (edited)' : ' (old text)'}`,
    });
    const after = await get(server.port, 'docs.example', '/guide/getting-started');
    expect(after.headers.etag).not.toBe(cached.headers.etag);
    // A browser holding the old ETag gets the new page, not a 304.
    expect((await get(server.port, 'docs.example', '/guide/getting-started', { 'If-None-Match': cached.headers.etag as string })).status).toBe(200);
  });

  it('picks up a site.json edit (theme) on cached pages within two content-check intervals', async () => {
    const path = join(sitesDir, 'bakery/site.json');
    await get(server.port, 'sweet-crumbs.example', '/');
    const config = JSON.parse(await readFile(path, 'utf8'));
    config.theme = { ...config.theme, primary: '#123456' };
    await writeFile(path, JSON.stringify(config));
    await eventually(() => get(server.port, 'sweet-crumbs.example', '/'), (res) => res.status === 200 && res.body.includes('--site-primary:#123456'), {
      what: `the bakery home page with the edited theme (CONTENT_CHECK_MS=${CONTENT_CHECK_MS})`,
      deadlineMs: EDIT_DEADLINE_MS,
      intervalMs: 20,
      describe: (res) => `${res.status} x-render-cache=${res.headers['x-render-cache']} ${/--site-primary:[^;"]*/.exec(res.body)?.[0] ?? 'no --site-primary'}`,
    });
  });

  it('is bypassed for visitors with a session cookie, and never holds members pages', async () => {
    await get(server.port, 'acme.example', '/about');
    const withSession = await get(server.port, 'acme.example', '/about', { Cookie: 'amt_session=whatever' });
    expect(withSession.status).toBe(200);
    expect(withSession.headers['x-render-cache']).toBeUndefined();
    const members = await get(server.port, 'docs.example', '/members');
    expect(members.status).toBe(303);
    expect(members.headers['x-render-cache']).toBeUndefined();
  });

  it('answers HEAD from the cache with headers only', async () => {
    await get(server.port, 'acme.example', '/products');
    const head = await get(server.port, 'acme.example', '/products', {}, 'HEAD');
    expect(head.status).toBe(200);
    expect(head.body).toBe('');
    expect(head.headers['x-render-cache']).toBe('hit');
  });

  it('reports what loading the site and the page cost in Server-Timing', async () => {
    const res = await get(server.port, 'blog.localhost', '/posts/2026/hello-world');
    const timing = String(res.headers['server-timing']);
    expect(timing).toMatch(/^site;dur=\d+\.\d{3}, page;dur=\d+\.\d{3}$/);
  });

  it('counts hits and misses in the metrics', async () => {
    const metrics = (await get(server.port, 'localhost', '/_platform/metrics')).body;
    expect(Number(/^amt_render_cache_hits_total (\d+)/m.exec(metrics)?.[1])).toBeGreaterThan(0);
    expect(Number(/^amt_render_cache_misses_total (\d+)/m.exec(metrics)?.[1])).toBeGreaterThan(0);
  });
});

describe('with RENDER_CACHE_MB=0', () => {
  it('renders every request and still answers If-None-Match', async () => {
    const sitesDir = await copySites();
    const server = await startServer(sitesDir, { RENDER_CACHE_MB: '0' });
    try {
      const first = await get(server.port, 'acme.example', '/');
      const second = await get(server.port, 'acme.example', '/');
      expect(second.headers['x-render-cache']).toBeUndefined();
      expect(second.body).toBe(first.body);
      expect((await get(server.port, 'acme.example', '/', { 'If-None-Match': first.headers.etag as string })).status).toBe(304);
    } finally {
      await server.stop();
      await removeDir(sitesDir);
    }
  });
});

describe('the Markdown cache on disk', () => {
  let sitesDir: string;
  let cacheDir: string;

  beforeAll(async () => {
    sitesDir = await copySites();
    cacheDir = await mkdtemp(join(tmpdir(), 'amt-md-'));
  });

  afterAll(async () => {
    await removeDir(sitesDir);
    await removeDir(cacheDir);
  });

  const counter = async (port: number, name: string) => metricSum((await get(port, 'localhost', '/_platform/metrics')).body, name);

  it('lets a restarted worker load cold pages from disk, with the same HTML, and renders an edited page afresh', async () => {
    const first = await startServer(sitesDir, { MARKDOWN_CACHE_DIR: cacheDir, RENDER_CACHE_MB: '0' });
    let page: string;
    try {
      page = (await get(first.port, 'docs.example', '/guide')).body;
      expect(await counter(first.port, 'amt_markdown_cache_misses_total')).toBeGreaterThanOrEqual(1);
      expect(await counter(first.port, 'amt_markdown_cache_hits_total')).toBe(0);
    } finally {
      await first.stop();
    }

    const second = await startServer(sitesDir, { MARKDOWN_CACHE_DIR: cacheDir, RENDER_CACHE_MB: '0' });
    try {
      const again = await get(second.port, 'docs.example', '/guide');
      expect(again.status).toBe(200);
      expect(again.body).toBe(page);
      expect(await counter(second.port, 'amt_markdown_cache_hits_total')).toBe(1);
      expect(await counter(second.port, 'amt_markdown_cache_misses_total')).toBe(0);

      const file = join(sitesDir, 'docs', 'pages', 'guide', 'index.md');
      const source = await readFile(file, 'utf8');
      await writeFile(file, `${source}\n\nA sentence added by the test.\n`);
      await waitFor(async () => (await get(second.port, 'docs.example', '/guide')).body.includes('A sentence added by the test.'), 3000);
      expect(await counter(second.port, 'amt_markdown_cache_misses_total')).toBe(1);
    } finally {
      await second.stop();
    }
  }, 60_000);

  it('refuses a cache folder others can write to, says so, and still serves every page', async () => {
    const shared = join(cacheDir, 'shared');
    await mkdir(shared);
    await chmod(shared, 0o777);
    const server = await startServer(sitesDir, { MARKDOWN_CACHE_DIR: shared });
    try {
      expect((await get(server.port, 'acme.example', '/products')).status).toBe(200);
      expect(server.logs.some((line) => line.includes('Markdown cache folder refused') && line.includes('writable by group or others'))).toBe(true);
      expect(await readdir(shared)).toEqual([]);
    } finally {
      await server.stop();
    }
  }, 30_000);
});

describe('rendered pages on disk (RENDER_CACHE_DIR)', () => {
  let sitesDir: string;
  let pagesDir: string;

  beforeAll(async () => {
    sitesDir = await copySites();
    pagesDir = join(await mkdtemp(join(tmpdir(), 'amt-rendered-')), 'pages');
  });

  afterAll(async () => {
    await removeDir(sitesDir);
    await removeDir(join(pagesDir, '..'));
  });

  const settings = () => ({ RENDER_CACHE_DIR: pagesDir, MARKDOWN_CACHE_DIR: 'off', CONTENT_CHECK_MS: '200' });

  it('serves a restarted server\'s first request for a page from disk, the same bytes, never another site\'s, and renders an edit afresh', async () => {
    const first = await startServer(sitesDir, settings());
    let acme: string;
    let docs: string;
    try {
      const rendered = await get(first.port, 'acme.example', '/products');
      expect(rendered.headers['x-render-cache']).toBe('miss');
      acme = rendered.body;
      docs = (await get(first.port, 'docs.example', '/guide')).body;
      expect(docs).not.toBe(acme);
      // Written in the background: wait until both pages are on disk.
      await waitFor(async () => (await readdir(pagesDir, { recursive: true })).filter((name) => name.endsWith('.html')).length === 2, 5000);
      expect(await counter(first.port, 'amt_render_cache_disk_misses_total')).toBe(2);
    } finally {
      await first.stop();
    }

    // A new process (on another port: a placement setting, not part of what shapes a page).
    const second = await startServer(sitesDir, settings());
    try {
      const fromDisk = await get(second.port, 'acme.example', '/products');
      expect(fromDisk.status).toBe(200);
      expect(fromDisk.headers['x-render-cache']).toBe('disk');
      expect(fromDisk.body).toBe(acme);
      const docsAgain = await get(second.port, 'docs.example', '/guide');
      expect(docsAgain.headers['x-render-cache']).toBe('disk');
      expect(docsAgain.body).toBe(docs);
      expect(docsAgain.body).not.toBe(acme);
      // Then from memory, as any cached page.
      expect((await get(second.port, 'acme.example', '/products')).headers['x-render-cache']).toBe('hit');
      expect(await counter(second.port, 'amt_render_cache_disk_hits_total')).toBe(2);

      // An edit changes the page's ETag: the page on disk is never found again.
      const file = join(sitesDir, 'acme', 'pages', 'products', 'index.md');
      await writeFile(file, `${await readFile(file, 'utf8')}\n\nAdded after the first render.\n`);
      await waitFor(async () => (await get(second.port, 'acme.example', '/products')).body.includes('Added after the first render.'), 3000);
    } finally {
      await second.stop();
    }
  }, 60_000);

  it('never serves pages a server with other settings rendered (another platform domain renders other links)', async () => {
    const first = await startServer(sitesDir, settings());
    try {
      await get(first.port, 'docs.example', '/');
    } finally {
      await first.stop();
    }
    const other = await startServer(sitesDir, { ...settings(), PLATFORM_DOMAIN: 'elsewhere.test' });
    try {
      const res = await get(other.port, 'docs.example', '/');
      expect(res.status).toBe(200);
      expect(res.headers['x-render-cache']).toBe('miss');
    } finally {
      await other.stop();
    }
  }, 60_000);

  it('gives a signed-in visitor (session cookie) a render, never a page from disk', async () => {
    const server = await startServer(sitesDir, settings());
    try {
      await get(server.port, 'acme.example', '/');
      const res = await get(server.port, 'acme.example', '/', { cookie: 'amt_session=someone' });
      expect(res.status).toBe(200);
      expect(res.headers['x-render-cache']).toBeUndefined();
    } finally {
      await server.stop();
    }
  }, 30_000);

  it('refuses a folder others can write to (what it holds is served), says so, and still serves every page', async () => {
    const shared = join(pagesDir, '..', 'shared');
    await mkdir(shared);
    await chmod(shared, 0o777);
    const server = await startServer(sitesDir, { ...settings(), RENDER_CACHE_DIR: shared });
    try {
      expect((await get(server.port, 'acme.example', '/products')).status).toBe(200);
      await waitFor(async () => server.logs.some((line) => line.includes('rendered-pages folder refused') && line.includes('writable by group or others')), 3000);
      expect(await readdir(shared)).toEqual([]);
    } finally {
      await server.stop();
    }
  }, 30_000);

  const counter = async (port: number, name: string) => metricSum((await get(port, 'localhost', '/_platform/metrics')).body, name);
});
