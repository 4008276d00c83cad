import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { copySites, get, removeDir, startServer, type RunningServer } from '../helpers/server.ts';

/** 5,000 bytes, "abc…xyzabc…", so any byte range is easy to predict. */
const FIVE_K = Array.from({ length: 5000 }, (_, i) => String.fromCharCode(97 + (i % 26))).join('');
const TOKEN = 'Xq3-evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr';

let server: RunningServer;
let sitesDir: string;

beforeAll(async () => {
  sitesDir = await copySites();
  const pub = join(sitesDir, 'acme/public');
  await mkdir(join(pub, 'media'), { recursive: true });
  await writeFile(join(pub, 'media/clip.mp4'), FIVE_K);
  await mkdir(join(pub, '.well-known/acme-challenge'), { recursive: true });
  await writeFile(join(pub, `.well-known/acme-challenge/${TOKEN}`), `${TOKEN}.thumbprint`);
  await writeFile(join(pub, '.well-known/.secret'), 'TOP SECRET well-known');
  await writeFile(join(pub, '.env'), 'TOP SECRET env');
  await mkdir(join(pub, '.git'));
  await writeFile(join(pub, '.git/config'), 'TOP SECRET git');
  await writeFile(join(pub, 'media/.hidden.txt'), 'TOP SECRET hidden');
  // Links out of public/: to another site's config, and to a folder outside every site.
  await symlink(join(sitesDir, 'docs/site.json'), join(pub, 'docs-config.json'));
  await mkdir(join(sitesDir, '..', `${sitesDir.split('/').at(-1)}-outside`), { recursive: true });
  await writeFile(join(sitesDir, '..', `${sitesDir.split('/').at(-1)}-outside`, 'leak.txt'), 'TOP SECRET outside');
  await symlink(join(sitesDir, '..', `${sitesDir.split('/').at(-1)}-outside`), join(pub, 'outside'));
  server = await startServer(sitesDir);
});

afterAll(async () => {
  await server?.stop();
  await removeDir(`${sitesDir}-outside`);
  await removeDir(sitesDir);
});

const clip = (headers: Record<string, string> = {}, method = 'GET') => get(server.port, 'acme.example', '/media/clip.mp4', headers, method);

describe('static files: byte ranges through the server', () => {
  it('advertises byte ranges on a public file', async () => {
    const res = await clip();
    expect(res.status).toBe(200);
    expect(res.headers['accept-ranges']).toBe('bytes');
    expect(res.headers['content-type']).toBe('video/mp4');
    expect(res.body).toBe(FIVE_K);
  });

  it.each([
    ['bytes=0-1', 0, 1],
    ['bytes=-10', 4990, 4999],
    ['bytes=100-', 100, 4999],
  ])('serves Range: %s with 206 and only bytes %i-%i', async (range, start, end) => {
    const res = await clip({ Range: range });
    expect(res.status).toBe(206);
    expect(res.headers['content-range']).toBe(`bytes ${start}-${end}/5000`);
    expect(res.headers['content-length']).toBe(String(end - start + 1));
    expect(res.body).toBe(FIVE_K.slice(start, end + 1));
  });

  it('answers an unsatisfiable range with 416 and Content-Range: bytes */5000', async () => {
    const res = await clip({ Range: 'bytes=9000-' });
    expect(res.status).toBe(416);
    expect(res.headers['content-range']).toBe('bytes */5000');
    expect(res.body).not.toMatch(/\n\s+at /); // no stack trace, whatever the words
  });

  it('answers disjoint ranges with the whole file (200), which RFC 9110 §14.2 allows', async () => {
    const res = await clip({ Range: 'bytes=0-1,10-11' });
    expect(res.status).toBe(200);
    expect(res.body).toBe(FIVE_K);
  });

  it('serves the range for a current If-Range validator and the whole file for a stale one', async () => {
    const { headers } = await clip();
    expect((await clip({ Range: 'bytes=0-1', 'If-Range': headers.etag! })).status).toBe(206);
    expect((await clip({ Range: 'bytes=0-1', 'If-Range': headers['last-modified']! })).status).toBe(206);
    const stale = await clip({ Range: 'bytes=0-1', 'If-Range': 'W/"1388-1"' });
    expect(stale.status).toBe(200);
    expect(stale.body).toBe(FIVE_K);
  });
});

describe('static files: conditional requests and HEAD through the server', () => {
  it('answers If-Modified-Since equal or newer with 304 and older with 200', async () => {
    const lastModified = (await clip()).headers['last-modified']!;
    const shifted = (ms: number) => new Date(Date.parse(lastModified) + ms).toUTCString();
    const equal = await clip({ 'If-Modified-Since': lastModified });
    expect(equal.status).toBe(304);
    expect(equal.body).toBe('');
    expect((await clip({ 'If-Modified-Since': shifted(86_400_000) })).status).toBe(304);
    expect((await clip({ 'If-Modified-Since': shifted(-86_400_000) })).status).toBe(200);
  });

  it('answers If-None-Match with 304 for the current ETag and 200 for another', async () => {
    const { headers } = await clip();
    expect((await clip({ 'If-None-Match': headers.etag! })).status).toBe(304);
    expect((await clip({ 'If-None-Match': 'W/"0-0"' })).status).toBe(200);
  });

  it('answers HEAD with the headers of GET and no body', async () => {
    const full = await clip();
    const head = await clip({}, 'HEAD');
    expect(head.status).toBe(200);
    expect(head.body).toBe('');
    for (const name of ['content-length', 'content-type', 'etag', 'last-modified', 'accept-ranges', 'cache-control', 'x-content-type-options']) {
      expect(head.headers[name]).toBe(full.headers[name]);
    }
  });

  it('keeps built CSS immutable for a year, with ranges and validators too', async () => {
    const page = await get(server.port, 'acme.example', '/');
    const href = /href="(\/_platform\/css\/acme\/[^"]+)"/.exec(page.body)?.[1];
    expect(href).toBeTruthy();
    const css = await get(server.port, 'acme.example', href!);
    expect(css.headers['cache-control']).toBe('public, max-age=31536000, immutable');
    expect(css.headers['content-type']).toBe('text/css; charset=utf-8');
    const ranged = await get(server.port, 'acme.example', href!, { Range: 'bytes=0-3' });
    expect(ranged.status).toBe(206);
    expect(ranged.body).toBe(css.body.slice(0, 4));
    expect((await get(server.port, 'acme.example', href!, { 'If-None-Match': css.headers.etag! })).status).toBe(304);
  });
});

describe('static files: what stays refused', () => {
  it.each([
    ['/.env'],
    ['/.git/config'],
    ['/media/.hidden.txt'],
    ['/.well-known/.secret'],
    ['/.well-known/../.env'],
    ['/%2eenv'],
  ])('never serves the dot-file %s', async (path) => {
    const res = await get(server.port, 'acme.example', path);
    expect(res.status).toBe(404);
    expect(res.body).not.toContain('TOP SECRET');
  });

  it.each([['/docs-config.json'], ['/outside/leak.txt']])('never follows the symlink %s out of public/', async (path) => {
    const res = await get(server.port, 'acme.example', path);
    expect(res.status).toBe(404);
    expect(res.body).not.toContain('TOP SECRET');
    expect(res.body).not.toContain('Acme Docs');
  });
});

describe('/.well-known/ from public/.well-known/', () => {
  it.each([['acme.example'], ['acme.localhost']])('answers an ACME HTTP-01 token on %s with 200 and the key authorisation, unredirected', async (host) => {
    const res = await get(server.port, host, `/.well-known/acme-challenge/${TOKEN}`);
    expect(res.status).toBe(200);
    expect(res.body).toBe(`${TOKEN}.thumbprint`);
    expect(res.headers.location).toBeUndefined();
  });

  it("never answers one site's token on another site's host", async () => {
    const res = await get(server.port, 'docs.example', `/.well-known/acme-challenge/${TOKEN}`);
    expect(res.status).toBe(404);
    expect(res.body).not.toContain('thumbprint');
  });
});
