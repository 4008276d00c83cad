import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { copySites, get, removeDir, startServer, waitFor, type Response, type RunningServer } from '../helpers/server.ts';
import { startNginx, type RunningNginx } from '../helpers/nginx.ts';
import { freePort } from '../helpers/cluster.ts';

/**
 * Static files and /.well-known through a real nginx in front of the real server. The app decides
 * every file (for any host, including one added after nginx's config was written) and nginx sends
 * it from disk (X-Accel-Redirect); /.well-known/ files come from the app itself.
 */
const run = promisify(execFile);

/** 5,000 bytes, "abc…xyzabc…", so any byte range is easy to predict. */
const FIVE_K = Array.from({ length: 5000 }, (_, i) => String.fromCharCode(97 + (i % 26))).join('');
const TOKEN = 'LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0';
/** A site whose custom domain is added after nginx started. */
const LATE_HOST = 'late-shop.example';

let sitesDir: string;
let app: RunningServer;
let edge: RunningNginx;

beforeAll(async () => {
  sitesDir = await copySites();
  const pub = join(sitesDir, 'acme/public');
  await mkdir(join(pub, 'media'), { recursive: true });
  await writeFile(join(pub, 'media/clip.mp4'), FIVE_K);
  await writeFile(join(pub, 'media/100% a?b#c é.txt'), 'odd name');
  await mkdir(join(pub, '.well-known/acme-challenge'), { recursive: true });
  await writeFile(join(pub, `.well-known/acme-challenge/${TOKEN}`), `${TOKEN}.acme-key`);
  await writeFile(join(pub, '.well-known/security.txt'), 'Contact: mailto:security@acme.example\n');
  await writeFile(join(pub, '.well-known/.secret'), 'TOP SECRET well-known');
  await writeFile(join(pub, '.env'), 'TOP SECRET env');
  await writeFile(join(pub, 'media/.hidden.txt'), 'TOP SECRET hidden');
  await symlink(join(sitesDir, 'docs/site.json'), join(pub, 'docs-config.json'));
  await symlink(join(sitesDir, 'docs'), join(pub, 'docs-folder'));
  await symlink(join(pub, 'media'), join(pub, 'media-link'));
  // A longer edge TTL than production's 1 s so MISS-then-HIT cannot race the expiry.
  app = await startServer(sitesDir, { EDGE_CACHE_S: '30' });
  edge = await startNginx(app.port, sitesDir);

  // Only now the late site: its domain is in no map nginx has read.
  const late = join(sitesDir, 'late');
  await mkdir(join(late, 'pages'), { recursive: true });
  await mkdir(join(late, 'public/media'), { recursive: true });
  await writeFile(join(late, 'pages/index.md'), '---\ntitle: Late Shop\n---\nOpened after the edge config was written.');
  for (const name of ['a', 'b', 'c', 'd', 'e']) await writeFile(join(late, `public/media/${name}.mp4`), FIVE_K);
  await writeFile(join(late, 'site.json'), JSON.stringify({ name: 'Late Shop', domains: [LATE_HOST] }));
  await waitFor(async () => (await get(edge.port, LATE_HOST, '/')).status === 200, 10_000, 50);
}, 60_000);

afterAll(async () => {
  await edge?.stop();
  await app?.stop();
  await removeDir(sitesDir);
});

const fromDisk = (res: Response) => res.headers['x-served-by'] === 'nginx-static';

describe('byte ranges from disk (a host known when nginx started)', () => {
  const clip = (headers: Record<string, string> = {}, method = 'GET') => get(edge.port, 'acme.example', '/media/clip.mp4', headers, method);

  it.each([
    ['bytes=0-1', 0, 1],
    ['bytes=-10', 4990, 4999],
    ['bytes=100-', 100, 4999],
  ])('serves Range: %s with 206 and only bytes %i-%i', async (range, start, end) => {
    const res = await clip({ Range: range });
    expect(fromDisk(res)).toBe(true);
    expect(res.status).toBe(206);
    expect(res.headers['content-range']).toBe(`bytes ${start}-${end}/5000`);
    expect(res.body).toBe(FIVE_K.slice(start, end + 1));
  });

  it('advertises ranges, answers 416 past the end, and several ranges as multipart/byteranges', async () => {
    const full = await clip();
    expect(full.headers['accept-ranges']).toBe('bytes');
    expect(full.body).toBe(FIVE_K);
    const unsatisfiable = await clip({ Range: 'bytes=9000-' });
    expect(unsatisfiable.status).toBe(416);
    expect(unsatisfiable.headers['content-range']).toBe('bytes */5000');
    const multi = await clip({ Range: 'bytes=0-1,10-11' });
    expect(multi.status).toBe(206);
    expect(multi.headers['content-type']).toMatch(/^multipart\/byteranges; boundary=/);
    expect(multi.body).toContain('Content-Range: bytes 0-1/5000\r\n\r\nab');
    expect(multi.body).toContain('Content-Range: bytes 10-11/5000\r\n\r\nkl');
  });

  it('honours If-Range, If-Modified-Since (equal, newer: 304; older: 200), If-None-Match and HEAD', async () => {
    const { headers } = await clip();
    expect((await clip({ Range: 'bytes=0-1', 'If-Range': headers.etag! })).status).toBe(206);
    expect((await clip({ Range: 'bytes=0-1', 'If-Range': headers['last-modified']! })).status).toBe(206);
    expect((await clip({ Range: 'bytes=0-1', 'If-Range': '"0-0"' })).status).toBe(200);
    const shifted = (ms: number) => new Date(Date.parse(headers['last-modified']!) + ms).toUTCString();
    expect((await clip({ 'If-Modified-Since': headers['last-modified']! })).status).toBe(304);
    expect((await clip({ 'If-Modified-Since': shifted(86_400_000) })).status).toBe(304);
    expect((await clip({ 'If-Modified-Since': shifted(-86_400_000) })).status).toBe(200);
    expect((await clip({ 'If-None-Match': headers.etag! })).status).toBe(304);
    const head = await clip({}, 'HEAD');
    expect(head.status).toBe(200);
    expect(head.body).toBe('');
    for (const name of ['content-length', 'content-type', 'etag', 'last-modified', 'accept-ranges', 'cache-control']) expect(head.headers[name]).toBe(headers[name]);
  });
});

it('sends a file whose name needs encoding (%, ?, #, space, non-ASCII) from disk', async () => {
  const res = await get(edge.port, 'acme.example', `/media/${encodeURIComponent('100% a?b#c é.txt')}`);
  expect(res.status).toBe(200);
  expect(res.body).toBe('odd name');
  expect(fromDisk(res)).toBe(true);
});

describe('byte ranges from disk (a host added after nginx started)', () => {
  const media = (name: string, headers: Record<string, string> = {}, method = 'GET') => get(edge.port, LATE_HOST, `/media/${name}.mp4`, headers, method);

  it('serves a Range request with 206 from disk, decided by the app (no map of hosts to keep in step)', async () => {
    const first = await media('a', { Range: 'bytes=0-1' });
    expect(fromDisk(first)).toBe(true);
    expect(first.headers['x-cache-status']).toBeUndefined();
    expect(first.status).toBe(206);
    expect(first.headers['content-range']).toBe('bytes 0-1/5000');
    expect(first.body).toBe('ab');
    const tail = await media('a', { Range: 'bytes=-10' });
    expect(tail.status).toBe(206);
    expect(tail.headers['content-range']).toBe('bytes 4990-4999/5000');
    expect(tail.body).toBe(FIVE_K.slice(4990));
  });

  it.each([
    ['bytes=0-1', 0, 1],
    ['bytes=-10', 4990, 4999],
    ['bytes=100-', 100, 4999],
  ])('serves Range: %s with 206, anonymous or signed in', async (range, start, end) => {
    await media('b');
    for (const headers of [{ Range: range }, { Range: range, Cookie: 'amt_session=abc' }] as Record<string, string>[]) {
      const res = await media('b', headers);
      expect(res.status).toBe(206);
      expect(res.headers['content-range']).toBe(`bytes ${start}-${end}/5000`);
      expect(res.body).toBe(FIVE_K.slice(start, end + 1));
    }
  });

  it('advertises ranges and answers 416 past the end', async () => {
    expect((await media('c')).headers['accept-ranges']).toBe('bytes');
    for (const name of ['c', 'd']) {
      const res = await media(name, { Range: 'bytes=9000-' });
      expect(res.status).toBe(416);
      expect(res.headers['content-range']).toBe('bytes */5000');
    }
  });

  it('honours If-Range and If-Modified-Since (equal, newer: 304; older: 200)', async () => {
    const { headers } = await media('e');
    expect((await media('e', { Range: 'bytes=0-1', 'If-Range': headers.etag! })).status).toBe(206);
    const stale = await media('e', { Range: 'bytes=0-1', 'If-Range': 'W/"1388-0"' });
    expect(stale.status).toBe(200);
    expect(stale.body).toBe(FIVE_K);
    const shifted = (ms: number) => new Date(Date.parse(headers['last-modified']!) + ms).toUTCString();
    expect((await media('e', { 'If-Modified-Since': headers['last-modified']! })).status).toBe(304);
    expect((await media('e', { 'If-Modified-Since': shifted(86_400_000) })).status).toBe(304);
    expect((await media('e', { 'If-Modified-Since': shifted(-86_400_000) })).status).toBe(200);
    expect((await media('e', { 'If-None-Match': headers.etag! })).status).toBe(304);
  });
});

describe('ACME HTTP-01 and /.well-known through nginx', () => {
  it.each([['acme.localhost'], ['acme.example']])('answers a token on %s with 200, uncached and unredirected', async (host) => {
    const res = await get(edge.port, host, `/.well-known/acme-challenge/${TOKEN}`);
    expect(res.status).toBe(200);
    expect(res.body).toBe(`${TOKEN}.acme-key`);
    expect(res.headers['x-cache-status']).toBeUndefined();
    expect(res.headers['cache-control']).toBe('no-store');
    expect(res.headers.location).toBeUndefined();
  });

  it('answers a token for a custom domain added after the config was written, through the app and never from a cache', async () => {
    const token = 'late_Token-0123456789abcdefghij';
    const path = `/.well-known/acme-challenge/${token}`;
    // Asked before the ACME client wrote it: a 404 that must not be remembered.
    expect((await get(edge.port, LATE_HOST, path)).status).toBe(404);
    const dir = join(sitesDir, 'late/public/.well-known/acme-challenge');
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, token), `${token}.first`);
    const first = await get(edge.port, LATE_HOST, path);
    expect(first.status).toBe(200);
    expect(first.body).toBe(`${token}.first`);
    expect(fromDisk(first)).toBe(false);
    expect(first.headers['x-cache-status']).toBeUndefined();
    expect(first.headers['cache-control']).toBe('no-store');
    expect(first.headers.location).toBeUndefined();
    // A retried challenge with a new key authorisation is answered with the new one at once.
    await writeFile(join(dir, token), `${token}.second`);
    expect((await get(edge.port, LATE_HOST, path)).body).toBe(`${token}.second`);
  });

  it("never answers one site's token on another site's host", async () => {
    const res = await get(edge.port, 'docs.example', `/.well-known/acme-challenge/${TOKEN}`);
    expect(res.status).toBe(404);
    expect(res.body).not.toContain('acme-key');
  });

  it('serves security.txt from public/.well-known/ and refuses every other hidden name', async () => {
    const security = await get(edge.port, 'acme.example', '/.well-known/security.txt');
    expect(security.status).toBe(200);
    expect(security.body).toContain('Contact: mailto:security@acme.example');
    for (const path of ['/.well-known/.secret', '/.env', '/media/.hidden.txt', '/.well-known/../.env', '/.well-known/acme-challenge/.secret']) {
      const res = await get(edge.port, 'acme.example', path);
      expect(res.status, path).toBe(404);
      expect(res.body).not.toContain('TOP SECRET');
    }
  });

  it('never follows a symlink out of public/, to a file or a folder of another site', async () => {
    for (const path of ['/docs-config.json', '/docs-folder/site.json', '/docs-folder/public/favicon.svg']) {
      const res = await get(edge.port, 'acme.example', path);
      expect(res.status, path).toBe(404);
      expect(res.body, path).not.toContain('Acme Docs');
    }
    // A link that stays inside public/ is the site's own file: sent from disk by its real name.
    const inside = await get(edge.port, 'acme.example', '/media-link/clip.mp4');
    expect(inside.status).toBe(200);
    expect(inside.body).toBe(FIVE_K);
    expect(fromDisk(inside)).toBe(true);
  });

  it.each([
    '/..%2fsite.json',
    '/%2e%2e/site.json',
    '/%2E%2E%2Fsite.json',
    '/media/..%2f..%2fsite.json',
    '/media/%2e%2e/%2e%2e/docs/site.json',
    '/media/%252e%252e/%252e%252e/site.json',
    '/..%5csite.json',
    '/media/..;/../site.json',
    '/%2e%2e%2f%2e%2e%2fdocs%2fsite.json',
    '/_amt_files/acme/site.json',
    '/_amt_files/docs/public/../site.json',
  ])('refuses the traversal %s without reading a site.json', async (path) => {
    const res = await get(edge.port, 'acme.example', path);
    expect([400, 404]).toContain(res.status);
    expect(res.body).not.toContain('"domains"');
    expect(res.body).not.toContain('Acme Docs');
  });

  it('with TLS configured, answers a token on plain HTTP instead of redirecting it to HTTPS', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'amt-acme-tls-'));
    let tlsEdge: RunningNginx | undefined;
    try {
      await run('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=*.localhost', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')]);
      const tlsPort = await freePort();
      tlsEdge = await startNginx(app.port, sitesDir, { TLS_CERT: join(dir, 'cert.pem'), TLS_KEY: join(dir, 'key.pem'), NGINX_TLS_LISTEN: `127.0.0.1:${tlsPort}` });
      for (const host of ['acme.example', 'acme.localhost']) {
        const res = await get(tlsEdge.port, host, `/.well-known/acme-challenge/${TOKEN}`);
        expect(res.status).toBe(200);
        expect(res.body).toBe(`${TOKEN}.acme-key`);
      }
      // Through the app for a host nginx has no folder for; other paths of a host the wildcard
      // covers go to HTTPS (a custom domain it does not cover stays on plain HTTP).
      expect((await get(tlsEdge.port, LATE_HOST, '/.well-known/acme-challenge/late_Token-0123456789abcdefghij')).status).toBe(200);
      const page = await get(tlsEdge.port, 'acme.localhost', '/about');
      expect(page.status).toBe(308);
      expect(page.headers.location).toBe(`https://acme.localhost:${tlsPort}/about`);
      expect((await get(tlsEdge.port, 'acme.example', '/about')).status).toBe(200);
    } finally {
      await tlsEdge?.stop();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
