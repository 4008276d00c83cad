import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { serveStaticFile, locateStaticFile } from '../../astro-multi-tenant/server/http/static-file.ts';
import { get, type Response } from '../helpers/server.ts';

/** 5,000 bytes, "abc…xyzabc…", so any byte range is easy to predict. */
const FIVE_K = Array.from({ length: 5000 }, (_, i) => String.fromCharCode(97 + (i % 26))).join('');

let dir: string;
let root: string;
let server: Server;
let port: number;
/** What serveStaticFile answered for the last request: true, false or the error it threw. */
let outcome: boolean | { code: string } | undefined;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'amt-static-'));
  root = join(dir, 'public');
  await mkdir(join(root, 'media'), { recursive: true });
  await mkdir(join(root, '.well-known/acme-challenge'), { recursive: true });
  await writeFile(join(root, 'media/clip.mp4'), FIVE_K);
  await writeFile(join(root, 'logo.svg'), '<svg xmlns="http://www.w3.org/2000/svg"/>');
  await writeFile(join(root, 'site.css'), 'body{}');
  await writeFile(join(root, 'data.bin'), 'raw');
  await writeFile(join(root, '100%.txt'), 'percent');
  await writeFile(join(root, 'a b.txt'), 'space');
  await writeFile(join(root, '.env'), 'SECRET=1');
  await writeFile(join(root, '.well-known/acme-challenge/tok-123'), 'tok-123.thumbprint');
  await writeFile(join(dir, 'secret.txt'), 'TOP SECRET');
  await mkdir(join(dir, 'outside'));
  await writeFile(join(dir, 'outside/file.txt'), 'TOP SECRET TOO');
  await symlink(join(dir, 'secret.txt'), join(root, 'link-out.txt'));
  await symlink(join(dir, 'outside'), join(root, 'dir-out'));
  await symlink(join(root, 'logo.svg'), join(root, 'link-in.svg'));
  await promisify(execFile)('mkfifo', [join(root, 'pipe.txt')]);
  // A site folder whose public/ is itself a link out of the site (to the outside folder).
  await mkdir(join(dir, 'site'));
  await symlink(join(dir, 'outside'), join(dir, 'site', 'public'));

  server = createServer(async (req, res) => {
    const url = new URL(req.url!, 'http://test');
    const segments = url.pathname.split('/').slice(1).map(decodeURIComponent);
    const which = url.searchParams.get('root');
    const base = which === 'well-known' ? join(root, '.well-known') : which === 'linked-public' ? join(dir, 'site', 'public') : root;
    const within = url.searchParams.get('within') === 'site' ? join(dir, 'site') : undefined;
    const options = { ...(url.searchParams.has('immutable') ? { maxAgeSeconds: 0, immutable: true } : { maxAgeSeconds: 300 }), ...(within ? { within } : {}) };
    try {
      outcome = await serveStaticFile(req, res, base, segments, options);
      if (!outcome) {
        res.statusCode = 404;
        res.end('fell through');
      }
    } catch (error) {
      outcome = { code: (error as { code: string }).code };
      res.statusCode = 500;
      res.end('caller error page');
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as AddressInfo).port;
});

afterAll(async () => {
  await new Promise((r) => server?.close(r));
  await rm(dir, { recursive: true, force: true });
});

const fetchFile = (path: string, headers: Record<string, string> = {}, method = 'GET'): Promise<Response> => get(port, 'static.test', path, headers, method);

describe('serveStaticFile: byte ranges (RFC 9110 §14)', () => {
  it('advertises ranges and serves the whole file without a Range header', async () => {
    const res = await fetchFile('/media/clip.mp4');
    expect(res.status).toBe(200);
    expect(res.headers['accept-ranges']).toBe('bytes');
    expect(res.headers['content-length']).toBe('5000');
    expect(res.body).toBe(FIVE_K);
  });

  it.each([
    ['bytes=0-1', 0, 1],
    ['bytes=-10', 4990, 4999],
    ['bytes=100-', 100, 4999],
    ['bytes=4995-9999', 4995, 4999],
    ['bytes=26-51', 26, 51],
  ])('answers %s with 206 and exactly bytes %i-%i', async (range, start, end) => {
    const res = await fetchFile('/media/clip.mp4', { Range: range });
    expect(res.status).toBe(206);
    expect(res.headers['content-range']).toBe(`bytes ${start}-${end}/5000`);
    expect(res.headers['content-length']).toBe(String(end - start + 1));
    expect(res.headers['content-type']).toBe('video/mp4');
    expect(res.body).toBe(FIVE_K.slice(start, end + 1));
  });

  it.each(['bytes=9000-', 'bytes=5000-5001'])('answers the unsatisfiable %s with 416 and Content-Range: bytes */5000', async (range) => {
    const res = await fetchFile('/media/clip.mp4', { Range: range });
    expect(res.status).toBe(416);
    expect(res.headers['content-range']).toBe('bytes */5000');
    expect(res.body).toBe('Range Not Satisfiable\n');
    expect(res.headers.etag).toBeUndefined();
    expect(outcome).toBe(true);
  });

  it('merges overlapping ranges into one 206, and answers disjoint ranges with the whole file (§14.2 allows it)', async () => {
    const merged = await fetchFile('/media/clip.mp4', { Range: 'bytes=0-1,1-3' });
    expect(merged.status).toBe(206);
    expect(merged.headers['content-range']).toBe('bytes 0-3/5000');
    expect(merged.body).toBe('abcd');
    const disjoint = await fetchFile('/media/clip.mp4', { Range: 'bytes=0-1,10-11' });
    expect(disjoint.status).toBe(200);
    expect(disjoint.body).toBe(FIVE_K);
  });

  it.each(['bytes=abc', 'items=0-1', 'bytes=0-1;x'])('ignores the malformed or foreign range %s and sends the whole file', async (range) => {
    const res = await fetchFile('/media/clip.mp4', { Range: range });
    expect(res.status).toBe(200);
    expect(res.body).toBe(FIVE_K);
  });

  it('honours If-Range only while its ETag or date still matches the file', async () => {
    const { headers } = await fetchFile('/media/clip.mp4');
    const byTag = await fetchFile('/media/clip.mp4', { Range: 'bytes=0-1', 'If-Range': headers.etag! });
    expect(byTag.status).toBe(206);
    expect(byTag.body).toBe('ab');
    const byDate = await fetchFile('/media/clip.mp4', { Range: 'bytes=0-1', 'If-Range': headers['last-modified']! });
    expect(byDate.status).toBe(206);
    const staleTag = await fetchFile('/media/clip.mp4', { Range: 'bytes=0-1', 'If-Range': 'W/"1388-0"' });
    expect(staleTag.status).toBe(200);
    expect(staleTag.body).toBe(FIVE_K);
    const staleDate = await fetchFile('/media/clip.mp4', { Range: 'bytes=0-1', 'If-Range': new Date(Date.parse(headers['last-modified']!) - 3600_000).toUTCString() });
    expect(staleDate.status).toBe(200);
    expect(staleDate.body).toBe(FIVE_K);
  });
});

describe('serveStaticFile: conditional requests and HEAD (RFC 9110 §13, §9.3.2)', () => {
  it('answers If-None-Match with 304 for the current ETag (or *), 200 for another', async () => {
    const { headers } = await fetchFile('/logo.svg');
    for (const tag of [headers.etag!, '*', `"other", ${headers.etag}`]) {
      const res = await fetchFile('/logo.svg', { 'If-None-Match': tag });
      expect(res.status).toBe(304);
      expect(res.body).toBe('');
      expect(res.headers.etag).toBe(headers.etag);
      expect(res.headers['cache-control']).toBe('public, max-age=300');
    }
    expect((await fetchFile('/logo.svg', { 'If-None-Match': 'W/"something-else"' })).status).toBe(200);
  });

  it('answers If-Modified-Since equal or newer with 304, older with 200', async () => {
    const lastModified = (await fetchFile('/logo.svg')).headers['last-modified']!;
    const shifted = (ms: number) => new Date(Date.parse(lastModified) + ms).toUTCString();
    expect((await fetchFile('/logo.svg', { 'If-Modified-Since': lastModified })).status).toBe(304);
    expect((await fetchFile('/logo.svg', { 'If-Modified-Since': shifted(3600_000) })).status).toBe(304);
    const older = await fetchFile('/logo.svg', { 'If-Modified-Since': shifted(-3600_000) });
    expect(older.status).toBe(200);
    expect(older.body).toContain('<svg');
  });

  it('lets If-None-Match decide when both validators are sent (§13.2.2)', async () => {
    const lastModified = (await fetchFile('/logo.svg')).headers['last-modified']!;
    expect((await fetchFile('/logo.svg', { 'If-None-Match': '"changed"', 'If-Modified-Since': lastModified })).status).toBe(200);
  });

  it('answers a failed If-Match or If-Unmodified-Since with 412', async () => {
    expect((await fetchFile('/logo.svg', { 'If-Match': '"nope"' })).status).toBe(412);
    expect((await fetchFile('/logo.svg', { 'If-Unmodified-Since': new Date(0).toUTCString() })).status).toBe(412);
  });

  it('answers HEAD with the same headers as GET and no body, ranges included', async () => {
    const full = await fetchFile('/media/clip.mp4');
    const head = await fetchFile('/media/clip.mp4', {}, 'HEAD');
    expect(head.status).toBe(200);
    expect(head.body).toBe('');
    for (const name of ['content-length', 'content-type', 'etag', 'last-modified', 'accept-ranges', 'cache-control', 'x-content-type-options']) {
      expect(head.headers[name]).toBe(full.headers[name]);
    }
    const ranged = await fetchFile('/media/clip.mp4', { Range: 'bytes=-10' }, 'HEAD');
    expect(ranged.status).toBe(206);
    expect(ranged.headers['content-range']).toBe('bytes 4990-4999/5000');
    expect(ranged.body).toBe('');
  });
});

describe('serveStaticFile: our headers', () => {
  it.each([
    ['/logo.svg', 'image/svg+xml'],
    ['/site.css', 'text/css; charset=utf-8'],
    ['/media/clip.mp4', 'video/mp4'],
    ['/data.bin', 'application/octet-stream'],
  ])('types %s as %s, with nosniff', async (path, type) => {
    const res = await fetchFile(path);
    expect(res.headers['content-type']).toBe(type);
    expect(res.headers['x-content-type-options']).toBe('nosniff');
  });

  it('caches plain names for maxAgeSeconds and hashed ones for a year, immutable', async () => {
    expect((await fetchFile('/site.css')).headers['cache-control']).toBe('public, max-age=300');
    expect((await fetchFile('/site.css?immutable')).headers['cache-control']).toBe('public, max-age=31536000, immutable');
  });

  it('serves names that need percent-encoding', async () => {
    expect((await fetchFile('/100%25.txt')).body).toBe('percent');
    expect((await fetchFile('/a%20b.txt')).body).toBe('space');
  });
});

describe('serveStaticFile: what it refuses (returns false, writes nothing)', () => {
  it.each([
    ['a symlink to a file outside the root', '/link-out.txt'],
    ['a file below a symlinked folder outside the root', '/dir-out/file.txt'],
    ['a dot-file', '/.env'],
    ['a path through a dot-folder', '/.well-known/acme-challenge/tok-123'],
    ['a folder', '/media'],
    ['a FIFO', '/pipe.txt'],
    ['a missing file', '/nope.txt'],
    ['no path at all', '/'],
  ])('refuses %s', async (_, path) => {
    const res = await fetchFile(path);
    expect(outcome).toBe(false);
    expect(res.status).toBe(404);
    expect(res.body).toBe('fell through');
    expect(res.body).not.toContain('SECRET');
    expect(res.headers['accept-ranges']).toBeUndefined();
    expect(res.headers.etag).toBeUndefined();
  });

  it('refuses every file of a public/ that is itself a link out of the site folder it must lie in', async () => {
    const res = await fetchFile('/file.txt?root=linked-public&within=site');
    expect(outcome).toBe(false);
    expect(res.body).toBe('fell through');
    // The same folder as a root of its own (no `within`) is served: the refusal is the site rule.
    expect((await fetchFile('/file.txt?root=linked-public')).body).toBe('TOP SECRET TOO');
  });

  it('serves a symlink that stays inside the root', async () => {
    const res = await fetchFile('/link-in.svg');
    expect(res.status).toBe(200);
    expect(res.body).toContain('<svg');
  });

  it('serves from a .well-known folder given as the root (ACME HTTP-01), ranges and all', async () => {
    const res = await fetchFile('/acme-challenge/tok-123?root=well-known');
    expect(res.status).toBe(200);
    expect(res.body).toBe('tok-123.thumbprint');
    expect((await fetchFile('/acme-challenge/tok-123?root=well-known', { Range: 'bytes=0-2' })).body).toBe('tok');
  });

  it('locates only regular files inside the root, by real path', async () => {
    expect(await locateStaticFile(root, ['media', 'clip.mp4'])).toMatchObject({ size: 5000 });
    expect(await locateStaticFile(root, ['link-in.svg'])).toMatchObject({ size: (await stat(join(root, 'logo.svg'))).size });
    expect(await locateStaticFile(join(dir, 'missing-root'), ['logo.svg'])).toBeUndefined();
    expect(await locateStaticFile(root, ['..', 'secret.txt'])).toBeUndefined();
    expect(await locateStaticFile(root, ['media', '..', '..', 'secret.txt'])).toBeUndefined();
  });
});
