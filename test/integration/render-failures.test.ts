import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { copySites, get, removeDir, ROOT, startServer, waitFor, type RunningServer } from '../helpers/server.ts';
import { startNginx, type RunningNginx } from '../helpers/nginx.ts';
import { eventually } from '../helpers/eventually.ts';

/**
 * Rule 4 of the threat model (docs/security.md): a page that cannot render is never a 200. Any
 * render failure, before or after Astro's first byte, is a 500 with `Cache-Control: no-store` that
 * neither the render cache nor nginx keeps; and site.json validation accepts only locales the
 * layouts can render with.
 */
const BREAKING_VIEWS = join(ROOT, 'test/fixtures/breaking-views/entry.mjs');
const FAILURES: Array<[string, string]> = [
  ['a component that throws after the head has streamed', 'mid-stream'],
  ['Astro answering its own 500 before the first byte', 'early'],
  ['a view that throws', 'throws'],
  ['a render that never ends its response', 'never-ends'],
];
/** Locales that pass validation, written into sites of their own: each must render a dated page. */
const GOOD_LOCALES = ['en', 'pt-BR', 'zh-Hant-TW', 'sr-Latn-RS', 'en-GB-oxendict', 'xx-XX'];
const run = promisify(execFile);

let server: RunningServer;
let edge: RunningNginx;
let sitesDir: string;

const article = (title: string) => `---\ntitle: "${title}"\ndate: 2024-05-01\nlayout: article\n---\n\nSome text of ${title}.\n`;

beforeAll(async () => {
  sitesDir = await copySites();
  const pages = join(sitesDir, 'acme/pages');
  await writeFile(join(pages, 'mid-stream.md'), article('break: mid-stream'));
  await writeFile(join(pages, 'early.md'), article('break: before the first byte'));
  await writeFile(join(pages, 'throws.md'), article('break: throws'));
  await writeFile(join(pages, 'never-ends.md'), article('break: never ends'));
  await writeFile(join(pages, 'dated.md'), article('A dated post'));
  // The locale of the report, and sites with locales that must keep working.
  for (const [id, locale] of [['badlocale', 'en-US-US'], ...GOOD_LOCALES.map((l, i) => [`loc${i}`, l])] as Array<[string, string]>) {
    await mkdir(join(sitesDir, id, 'pages'), { recursive: true });
    await writeFile(join(sitesDir, id, 'site.json'), JSON.stringify({ name: `Locale ${locale}`, locale, layout: 'article' }));
    await writeFile(join(sitesDir, id, 'pages/index.md'), article(`Written in ${locale}`));
  }
  server = await startServer(sitesDir, { ASTRO_ENTRY: BREAKING_VIEWS });
  edge = await startNginx(server.port, sitesDir);
});

afterAll(async () => {
  await edge?.stop();
  await server?.stop();
  await removeDir(sitesDir);
});

describe('a render failure is a 500 with no-store, never a 200 with an error body', () => {
  it.each(FAILURES)('answers %s (/%s) with 500 and no-store, the same the second time (no cache kept it)', async (_kind, path) => {
    for (const attempt of [1, 2]) {
      const reqId = `render-failure-${path}-${attempt}`;
      const res = await get(server.port, 'acme.example', `/${path}`, { 'X-Request-Id': reqId });
      expect(res.status, `attempt ${attempt}`).toBe(500);
      expect(res.headers['cache-control']).toBe('no-store');
      expect(res.body).toBe('Internal Server Error\n');
      expect(res.headers.etag).toBeUndefined();
      expect(res.headers['x-accel-expires']).toBeUndefined();
      expect(res.headers['x-render-cache']).toBeUndefined();
      // The operator learns why, in the log; the visitor does not.
      expect(res.body).not.toContain('secret-internal-detail');
      const failed = await eventually(async () => server.logs.find((l) => l.includes(`"reqId":"${reqId}"`) && l.includes('"msg":"request failed"')), (line) => line !== undefined, { what: `the failure of ${reqId} logged`, deadlineMs: 2000 });
      expect(JSON.parse(failed.value!)).toMatchObject({ level: 50, site: 'acme', code: 'INTERNAL' });
    }
  });

  it.each(FAILURES)('through nginx, answers %s (/%s) with 500 every time and never from its cache', async (_kind, path) => {
    for (const attempt of [1, 2, 3]) {
      const res = await get(edge.port, 'acme.example', `/${path}`);
      expect(res.status, `attempt ${attempt}`).toBe(500);
      expect(res.headers['x-cache-status'], `attempt ${attempt}`).not.toBe('HIT');
      expect(res.body).not.toContain('Internal server error');
    }
  });

  it('still caches a page that renders, at nginx and in the render cache (the control)', async () => {
    const first = await get(edge.port, 'acme.example', '/dated?control=1');
    const second = await get(edge.port, 'acme.example', '/dated?control=1');
    expect([first.status, second.status]).toEqual([200, 200]);
    expect(second.headers['x-cache-status']).toBe('HIT');
    await get(server.port, 'acme.example', '/dated');
    expect((await get(server.port, 'acme.example', '/dated')).headers['x-render-cache']).toBe('hit');
  });

  it('sends a page that renders whole, with its length, and the same head for HEAD', async () => {
    const res = await get(server.port, 'acme.example', '/dated', {}, 'GET');
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(res.headers['content-length']).toBe(String(Buffer.byteLength(res.body)));
    expect(res.body).toContain('May 1, 2024');
    expect(res.body.trimEnd()).toMatch(/<\/html>$/);
    const head = await get(server.port, 'acme.example', '/dated', {}, 'HEAD');
    expect(head.status).toBe(200);
    expect(head.body).toBe('');
    expect(head.headers['content-length']).toBe(res.headers['content-length']);
  });
});

describe('validation accepts only locales that render', () => {
  it('refuses the site with "locale": "en-US-US": its pages answer 503 with no-store, not a broken 200', async () => {
    const res = await get(server.port, 'badlocale.localhost', '/');
    expect(res.status).toBe(503);
    expect(res.headers['cache-control']).toBe('no-store');
    // The log line travels through a pipe: it may arrive a moment after the answer.
    await waitFor(async () => server.logs.some((l) => l.includes('sites/badlocale/site.json') && l.includes('locale')), 3000);
  });

  it('fails the same site in `sites check`, naming the file and the field', async () => {
    const result = await run(process.execPath, [join(ROOT, 'astro-multi-tenant/server/cli/sites.ts'), 'check'], { cwd: ROOT, env: { ...process.env, SITES_DIR: sitesDir } }).then(
      (r) => ({ code: 0, out: r.stdout }),
      (e: { code: number; stdout: string }) => ({ code: e.code, out: e.stdout }),
    );
    expect(result.code).toBe(1);
    expect(result.out).toContain('FAIL  badlocale');
    expect(result.out).toMatch(/sites\/badlocale\/site\.json: locale: is not a language tag dates can be written in/);
    for (let i = 0; i < GOOD_LOCALES.length; i++) expect(result.out).toContain(`ok    loc${i}`);
  });

  it.each(GOOD_LOCALES.map((locale, i) => [locale, `loc${i}`]))('renders a dated article page for the accepted locale %s', async (locale, id) => {
    const res = await get(server.port, `${id}.localhost`, '/');
    expect(res.status).toBe(200);
    expect(res.body).toContain(`lang="${locale}"`);
    expect(res.body).toMatch(/<time[^>]*datetime="2024-05-01"[^>]*>[^<]*2024[^<]*<\/time>/);
  });
});
