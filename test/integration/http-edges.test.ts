import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { STATUS_CODES } from 'node:http';
import { connect } from 'node:net';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { copySites, get, removeDir, ROOT, startServer, type RunningServer } from '../helpers/server.ts';
import { redisForTests } from '../helpers/redis.ts';

/**
 * HTTP at the edges of what a client may send: Host bytes, Host lines, request-target forms,
 * status lines, content types, well-known URIs and the platform's own pages, against the real
 * built server over raw sockets (Node's client would normalise most of these away).
 */

interface RawResponse {
  statusLine: string;
  status: number;
  reason: string;
  headers: Record<string, string>;
  body: string;
}

/** Sends exact request bytes on a fresh connection and reads the whole response (Connection: close). */
function raw(port: number, request: Buffer | string): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    socket.setTimeout(10_000, () => socket.destroy(new Error('no response within 10 s')));
    socket.on('data', (c) => chunks.push(c));
    socket.on('error', reject);
    socket.on('close', () => {
      const text = Buffer.concat(chunks).toString('latin1');
      const end = text.indexOf('\r\n\r\n');
      const [statusLine = '', ...lines] = text.slice(0, end === -1 ? text.length : end).split('\r\n');
      const match = /^HTTP\/1\.1 (\d{3}) ?(.*)$/.exec(statusLine);
      if (!match) return reject(new Error(`not an HTTP response: ${JSON.stringify(text.slice(0, 200))}`));
      const headers: Record<string, string> = {};
      for (const line of lines) {
        const colon = line.indexOf(':');
        headers[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim();
      }
      resolve({ statusLine, status: Number(match[1]), reason: match[2]!, headers, body: end === -1 ? '' : Buffer.from(text.slice(end + 4), 'latin1').toString('utf8') });
    });
    // write, not end: a half-closed connection may be dropped before the answer is written.
    socket.write(request);
  });
}

/** A GET with the given Host value as raw bytes (so non-ASCII goes on the wire as it is). */
function getWithHostBytes(port: number, host: Buffer, path = '/'): Promise<RawResponse> {
  return raw(port, Buffer.concat([Buffer.from(`GET ${path} HTTP/1.1\r\nHost: `), host, Buffer.from('\r\nConnection: close\r\n\r\n')]));
}

let server: RunningServer;
let sitesDir: string;

beforeAll(async () => {
  sitesDir = await copySites([join(ROOT, 'test/fixtures/broken-sites/broken')]);
  await mkdir(join(sitesDir, 'acme/public/.well-known/acme-challenge'), { recursive: true });
  await writeFile(join(sitesDir, 'acme/public/.well-known/acme-challenge/tok-123_abc'), 'tok-123_abc.thumbprint');
  await writeFile(join(sitesDir, 'acme/public/.well-known/security.txt'), 'Contact: mailto:security@acme.example\n');
  await writeFile(join(sitesDir, 'acme/public/.hidden'), 'not for visitors');
  await mkdir(join(sitesDir, 'acme/public/docs/.well-known'), { recursive: true });
  await writeFile(join(sitesDir, 'acme/public/docs/.well-known/x.txt'), 'nested well-known is not a well-known URI');
  await writeFile(join(sitesDir, 'bakery/public/favicon.ico'), 'bakery-own-icon');
  server = await startServer(sitesDir);
});

afterAll(async () => {
  await server?.stop();
  await removeDir(sitesDir);
});

describe('Host header bytes', () => {
  it('answers acme.e×ample sent as UTF-8 bytes with the platform 404, not a 500', async () => {
    const res = await getWithHostBytes(server.port, Buffer.from('acme.e×ample', 'utf8'));
    expect(res.status).toBe(404);
    expect(res.body).toContain('Site not found');
  });

  it('serves the site a Unicode host names when its punycode form is configured, whatever the bytes', async () => {
    for (const host of ['bäckerei.example', 'BÄCKEREI.example', 'bäckerei.example.']) {
      const res = await getWithHostBytes(server.port, Buffer.from(host, 'utf8'));
      expect(res.status, host).toBe(200);
      expect(res.body, host).toContain('data-site="bakery"');
      expect(res.body, host).toContain('Sweet Crumbs Bakery');
    }
  });

  it('never answers 5xx for any Host made of a label and non-ASCII bytes (fuzz, seeded)', async () => {
    let seed = 20261130;
    const next = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff), seed);
    const unicode = ['×', 'ä', 'é', 'ß', 'ı', 'İ', '\u200d', '\ufeff', '😀', '\u0301', 'ｅ', '。', '\u00ad', 'ﬀ', '\u2028'];
    const samples: Buffer[] = [];
    for (let i = 0; i < 120; i++) {
      const parts: Buffer[] = [Buffer.from(['acme', 'docs', 'blog', 'x'][next() % 4]!)];
      const count = 1 + (next() % 3);
      for (let j = 0; j < count; j++) {
        const kind = next() % 3;
        if (kind === 0) parts.push(Buffer.from([0x80 + (next() % 0x80)])); // a lone high byte: invalid UTF-8
        else if (kind === 1) parts.push(Buffer.from(unicode[next() % unicode.length]!, 'utf8'));
        else parts.push(Buffer.from(['.', '-', 'a', '.example', '.localhost'][next() % 5]!));
      }
      samples.push(Buffer.concat(parts));
    }
    const seen = new Map<number, number>();
    for (const host of samples) {
      const res = await getWithHostBytes(server.port, host);
      seen.set(res.status, (seen.get(res.status) ?? 0) + 1);
      expect([200, 301, 400, 404], `Host ${host.toString('hex')} answered ${res.statusLine}: ${res.body.slice(0, 200)}`).toContain(res.status);
      if (res.status === 400) expect(res.body).toMatch(/^Bad Request: /);
    }
    // The corpus reaches both sides of the parser: some hosts are refused, some are routed.
    expect(seen.get(400) ?? 0).toBeGreaterThan(0);
    expect((seen.get(404) ?? 0) + (seen.get(200) ?? 0)).toBeGreaterThan(0);
  });
});

describe('Host lines and request-target forms (RFC 9112 §3.2)', () => {
  it.each([
    ['two different hosts', 'Host: acme.example\r\nHost: docs.example'],
    ['the same host twice', 'Host: acme.example\r\nHost: acme.example'],
    ['two hosts in other cases', 'host: acme.example\r\nHOST: docs.example'],
    ['a second host after other headers', 'Host: docs.example\r\nAccept: text/html\r\nhOsT: acme.example'],
  ])('refuses a request with more than one Host line (%s) with 400', async (_name, hostLines) => {
    const res = await raw(server.port, `GET / HTTP/1.1\r\n${hostLines}\r\nConnection: close\r\n\r\n`);
    expect(res.status).toBe(400);
    expect(res.body).toContain('more than one Host');
    expect(res.body).not.toContain('data-site');
  });

  it.each([
    ['http://docs.example/', 'docs', 'Acme Docs'],
    ['HTTP://DOCS.EXAMPLE/', 'docs', 'Acme Docs'],
    ['http://docs.example', 'docs', 'Acme Docs'],
    ['http://docs.example:8080/guide/getting-started', 'docs', 'Getting started'],
    ['https://acme.example/about?x=1', 'acme', 'About Acme'],
  ])('routes an absolute-form target %s by its authority, not by the Host header', async (target, id, text) => {
    const res = await raw(server.port, `GET ${target} HTTP/1.1\r\nHost: sweet-crumbs.example\r\nConnection: close\r\n\r\n`);
    expect(res.status).toBe(200);
    expect(res.body).toContain(`data-site="${id}"`);
    expect(res.body).toContain(text);
    expect(res.body).not.toContain('data-site="bakery"');
  });

  it('answers an absolute-form target for an unknown authority with the platform 404, whatever Host says', async () => {
    const res = await raw(server.port, 'GET http://nobody.example/ HTTP/1.1\r\nHost: acme.example\r\nConnection: close\r\n\r\n');
    expect(res.status).toBe(404);
    expect(res.body).toContain('Site not found');
    expect(res.body).not.toContain('data-site="acme"');
  });

  it('refuses an absolute-form target whose authority carries user information', async () => {
    const res = await raw(server.port, 'GET http://acme.example@docs.example/ HTTP/1.1\r\nHost: acme.example\r\nConnection: close\r\n\r\n');
    expect(res.status).toBe(400);
    expect(res.body).not.toContain('data-site');
  });

  it('answers platform endpoints in absolute form too', async () => {
    const res = await raw(server.port, 'GET http://anything.example/_platform/healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    expect(res.status).toBe(200);
    expect(res.body).toBe('ok\n');
  });
});

describe('status lines', () => {
  const cases: [string, string][] = [
    ['a page', 'GET / HTTP/1.1\r\nHost: acme.example'],
    ['a site\'s own 404', 'GET /no-such-page HTTP/1.1\r\nHost: acme.example'],
    ['the unknown-host 404', 'GET / HTTP/1.1\r\nHost: nobody.example'],
    ['an invalid site\'s 503', 'GET / HTTP/1.1\r\nHost: broken.localhost'],
    ['an alias redirect', 'GET / HTTP/1.1\r\nHost: www.acme.example'],
    ['a trailing-slash redirect', 'GET /about/ HTTP/1.1\r\nHost: acme.example'],
    ['a members page for an anonymous visitor', 'GET /members HTTP/1.1\r\nHost: docs.example'],
    ['a malformed Host', 'GET / HTTP/1.1\r\nHost: a b'],
    ['a refused path', 'GET /../site.json HTTP/1.1\r\nHost: acme.example'],
    ['a refused method', 'DELETE / HTTP/1.1\r\nHost: acme.example'],
    ['a static file', 'GET /logo.svg HTTP/1.1\r\nHost: acme.example'],
    ['a sitemap', 'GET /sitemap.xml HTTP/1.1\r\nHost: acme.example'],
    ['a platform path', 'GET /_platform/nothing HTTP/1.1\r\nHost: acme.example'],
    ['the platform home', 'GET / HTTP/1.1\r\nHost: localhost'],
  ];
  it.each(cases)('carry the reason phrase of their own status: %s', async (_name, head) => {
    const res = await raw(server.port, `${head}\r\nConnection: close\r\n\r\n`);
    expect(res.reason, res.statusLine).toBe(STATUS_CODES[res.status]);
  });

  it('carry the reason phrase on a 304 from a rendered page', async () => {
    const first = await get(server.port, 'acme.example', '/about');
    const res = await raw(server.port, `GET /about HTTP/1.1\r\nHost: acme.example\r\nIf-None-Match: ${first.headers.etag}\r\nConnection: close\r\n\r\n`);
    expect(res.statusLine).toBe('HTTP/1.1 304 Not Modified');
  });

  it('a broken-site 503 says "Service Unavailable", not "OK"', async () => {
    const res = await raw(server.port, 'GET / HTTP/1.1\r\nHost: broken.localhost\r\nConnection: close\r\n\r\n');
    expect(res.statusLine).toBe('HTTP/1.1 503 Service Unavailable');
  });
});

describe('content types', () => {
  it.each([
    ['a page', 'acme.example', '/about'],
    ['a site\'s 404 page', 'acme.example', '/nothing-here'],
    ['the unknown-host page', 'nobody.example', '/'],
    ['the platform home page', 'localhost', '/'],
    ['the sign-in page', 'docs.example', '/_platform/session/sign-in'],
  ])('sends %s as text/html; charset=utf-8', async (_name, host, path) => {
    const res = await get(server.port, host, path);
    expect(res.headers['content-type']).toBe('text/html; charset=utf-8');
  });

  it('keeps charset=utf-8 on a page answered from the render cache', async () => {
    await get(server.port, 'docs.example', '/guide');
    const again = await get(server.port, 'docs.example', '/guide');
    expect(again.headers['x-render-cache']).toBe('hit');
    expect(again.headers['content-type']).toBe('text/html; charset=utf-8');
  });
});

describe('sitemap lastmod', () => {
  it('dates each URL by its page\'s date, else by its file\'s modification time', async () => {
    const res = await get(server.port, 'blog.localhost', '/sitemap.xml');
    expect(res.body).toContain('<loc>http://blog.localhost/posts/2026/hello-world</loc><lastmod>2026-03-14</lastmod>');
    const home = /<loc>http:\/\/blog\.localhost\/<\/loc><lastmod>([^<]+)<\/lastmod>/.exec(res.body);
    expect(home?.[1]).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/);
  });
});

describe('/.well-known/', () => {
  it('serves an ACME HTTP-01 token from the site\'s public/.well-known/, on each of its hosts', async () => {
    for (const host of ['acme.example', 'acme.localhost']) {
      const res = await get(server.port, host, '/.well-known/acme-challenge/tok-123_abc');
      expect(res.status, host).toBe(200);
      expect(res.body).toBe('tok-123_abc.thumbprint');
    }
  });

  it('serves security.txt, and a missing well-known file is the site\'s 404', async () => {
    expect((await get(server.port, 'acme.example', '/.well-known/security.txt')).body).toContain('Contact: mailto:security@acme.example');
    const missing = await get(server.port, 'acme.example', '/.well-known/acme-challenge/unknown-token');
    expect(missing.status).toBe(404);
    expect(missing.body).toContain('data-site="acme"');
  });

  it('never serves one site\'s well-known file on another site\'s host', async () => {
    const res = await get(server.port, 'docs.example', '/.well-known/acme-challenge/tok-123_abc');
    expect(res.status).toBe(404);
    expect(res.body).not.toContain('thumbprint');
  });

  it.each(['/.hidden', '/docs/.well-known/x.txt', '/.well-known/../site.json', '/.well-known/.%2e/site.json', '/.git/config', '/.well-known/%2e%2e/%2e%2e/site.json'])(
    'still refuses other dot-segments: %s',
    async (path) => {
      const res = await get(server.port, 'acme.example', path);
      expect([400, 404]).toContain(res.status);
      expect(res.body).not.toContain('not for visitors');
      expect(res.body).not.toContain('nested well-known');
      expect(res.body).not.toContain('"domains"');
    },
  );
});

describe('platform pages look like the product', () => {
  async function stylesheetOf(host: string): Promise<string> {
    const res = await get(server.port, host, '/');
    const href = /<link rel="stylesheet" href="([^"]+)"/.exec(res.body)?.[1];
    expect(href, `a stylesheet link on ${host}`).toMatch(/^\/_platform\/css\/_base\/site\.[a-f0-9]+\.css$/);
    return href!;
  }

  it.each([
    ['an unknown host', 'nobody.example'],
    ['a site whose site.json is invalid', 'broken.localhost'],
    ['the bare platform domain', 'localhost'],
  ])('serves the stylesheet its platform page links on %s', async (_name, host) => {
    const href = await stylesheetOf(host);
    const css = await get(server.port, host, href);
    expect(css.status).toBe(200);
    expect(css.headers['content-type']).toMatch(/^text\/css/);
    expect(css.body.length).toBeGreaterThan(1000);
  });

  it('serves the platform favicon the platform pages link, on any host', async () => {
    const page = await get(server.port, 'nobody.example', '/');
    expect(page.body).toContain('href="/_platform/favicon.ico"');
    for (const host of ['nobody.example', 'acme.example', 'localhost']) {
      const icon = await get(server.port, host, '/_platform/favicon.ico');
      expect(icon.status, host).toBe(200);
      expect(icon.headers['content-type']).toBe('image/x-icon');
    }
  });

  it('lists the local sites with their links on the bare platform domain (embedded mode)', async () => {
    const res = await get(server.port, 'localhost', '/');
    expect(res.status).toBe(200);
    for (const id of ['acme', 'bakery', 'blog', 'docs']) expect(res.body).toContain(`href="http://${id}.localhost/"`);
    const withPort = await get(server.port, `localhost:${server.port}`, '/');
    expect(withPort.body).toContain(`href="http://acme.localhost:${server.port}/"`);
    expect(res.body).not.toContain('Site not found');
  });
});

describe('favicon', () => {
  it('answers /favicon.ico with the platform icon on a site that has none of its own', async () => {
    const res = await raw(server.port, 'GET /favicon.ico HTTP/1.1\r\nHost: acme.example\r\nConnection: close\r\n\r\n');
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toBe('image/x-icon');
  });

  it('serves the site\'s own public/favicon.ico when it has one', async () => {
    const res = await get(server.port, 'sweet-crumbs.example', '/favicon.ico');
    expect(res.status).toBe(200);
    expect(res.body).toBe('bakery-own-icon');
  });
});

describe('the bare platform domain', () => {
  it.each(['/nothing', '/about', '/sitemap.xml', '/.well-known/acme-challenge/x', '/index'])('answers %s with the platform 404, not a soft 200', async (path) => {
    const res = await get(server.port, 'localhost', path);
    expect(res.status).toBe(404);
    expect(res.body).not.toContain('data-platform-sites');
  });

  it('answers its robots.txt (disallow everything) and its favicon, never the home page', async () => {
    const robots = await get(server.port, 'localhost', '/robots.txt');
    expect(robots.status).toBe(200);
    expect(robots.headers['content-type']).toMatch(/^text\/plain/);
    expect(robots.body).toBe('User-agent: *\nDisallow: /\n');
    const icon = await get(server.port, 'localhost', '/favicon.ico');
    expect(icon.headers['content-type']).toBe('image/x-icon');
  });

  it('lists the local sites only to operators (ADMIN_ALLOW), never to other visitors', async () => {
    const other = await startServer(sitesDir, { ADMIN_ALLOW: '192.0.2.0/24' });
    try {
      const res = await get(other.port, 'localhost', '/');
      expect(res.status).toBe(200);
      expect(res.body).not.toContain('data-platform-sites');
      for (const id of ['acme', 'bakery', 'blog', 'docs', 'broken']) expect(res.body).not.toContain(`${id}.localhost`);
    } finally {
      await other.stop();
    }
  });
});

describe('methods', () => {
  it.each([
    ['POST', '/_platform/healthz'],
    ['TRACE', '/_platform/healthz'],
    ['POST', '/_platform/readyz'],
    ['PUT', '/_platform/favicon.ico'],
    ['DELETE', '/_platform/css/_base/site.0123456789abcdef.css'],
    ['PATCH', '/'],
    ['OPTIONS', '/about'],
  ])('refuses %s %s with 405 and Allow: GET, HEAD before anything answers', async (method, path) => {
    const res = await raw(server.port, `${method} ${path} HTTP/1.1\r\nHost: acme.example\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`);
    expect(res.status).toBe(405);
    expect(res.headers.allow).toBe('GET, HEAD');
  });
});

describe('session endpoints', () => {
  it.each([
    ['POST', '/_platform/session/whoami', 'GET, HEAD'],
    ['GET', '/_platform/session/sign-out', 'POST'],
    ['GET', '/_platform/session/sign-out-everywhere', 'POST'],
    ['HEAD', '/_platform/session/token', 'POST'],
  ])('answers %s %s with 405 and the Allow header it takes', async (method, path, allow) => {
    const res = await raw(server.port, `${method} ${path} HTTP/1.1\r\nHost: docs.example\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}`);
    expect(res.status).toBe(405);
    expect(res.headers.allow).toBe(allow);
  });

  it.each(['/_platform/session/nothing', '/_platform/session/__proto__', '/_platform/session/constructor', '/_platform/session/toString'])('answers an unknown endpoint %s with 404, never a 500', async (path) => {
    const res = await get(server.port, 'docs.example', path);
    expect(res.status).toBe(404);
  });
});

describe('the CSS folder', () => {
  it.each([
    ['acme.example', '/_platform/css/_base/manifest.json'],
    ['nobody.example', '/_platform/css/_base/manifest.json'],
    ['acme.example', '/_platform/css/acme/manifest.json'],
    ['acme.example', '/_platform/css/acme/site.css'],
  ])('never serves anything but a hashed stylesheet: %s %s', async (host, path) => {
    const res = await get(server.port, host, path);
    expect(res.status).toBe(404);
    expect(res.body).not.toContain('builtAt');
    expect(res.headers['cache-control']).toBe('no-store');
  });
});

describe('request-line and header errors', () => {
  it('answers a target longer than we route with 414', async () => {
    const res = await raw(server.port, `GET /${'a'.repeat(2100)} HTTP/1.1\r\nHost: acme.example\r\nConnection: close\r\n\r\n`);
    expect(res.statusLine).toBe('HTTP/1.1 414 URI Too Long');
  });

  it.each(['*', 'ftp://docs.example/', 'about'])('answers the request target %s with 400', async (target) => {
    const res = await raw(server.port, `GET ${target} HTTP/1.1\r\nHost: acme.example\r\nConnection: close\r\n\r\n`);
    expect(res.status).toBe(400);
  });

  it('answers a Host with an empty port (acme.example:) as acme.example', async () => {
    const res = await raw(server.port, 'GET / HTTP/1.1\r\nHost: acme.example:\r\nConnection: close\r\n\r\n');
    expect(res.status).toBe(200);
    expect(res.body).toContain('data-site="acme"');
  });

  it('redirects /robots.txt/ and /sitemap.xml/ to their names, like any trailing slash', async () => {
    for (const name of ['robots.txt', 'sitemap.xml']) {
      const res = await get(server.port, 'acme.example', `/${name}/`);
      expect(res.status).toBe(301);
      expect(res.headers.location).toBe(`/${name}`);
    }
  });

  it('answers oversized request headers with 431', async () => {
    const res = await raw(server.port, `GET / HTTP/1.1\r\nHost: acme.example\r\nX-Big: ${'a'.repeat(20_000)}\r\nConnection: close\r\n\r\n`);
    expect(res.status).toBe(431);
  });

  it('answers a valid request in full when the next one on the connection is malformed', async () => {
    const text = await new Promise<string>((resolve, reject) => {
      const socket = connect(server.port, '127.0.0.1');
      const chunks: Buffer[] = [];
      socket.on('data', (c) => chunks.push(c));
      socket.on('error', reject);
      socket.on('close', () => resolve(Buffer.concat(chunks).toString('latin1')));
      socket.write('GET /about HTTP/1.1\r\nHost: acme.example\r\n\r\nGET / HTTP/1.1\r\nHost: acme.example\r\nBad Header\r\n\r\n');
      setTimeout(() => socket.destroy(), 5000);
    });
    expect(text.startsWith('HTTP/1.1 200 OK')).toBe(true);
    const length = Number(/content-length: (\d+)/i.exec(text)?.[1]);
    const bodyStart = text.indexOf('\r\n\r\n') + 4;
    expect(Buffer.byteLength(text.slice(bodyStart, bodyStart + length), 'latin1')).toBe(length);
    expect(text.slice(bodyStart, bodyStart + length)).toContain('About Acme');
    expect(text.slice(bodyStart, bodyStart + length)).not.toContain('HTTP/1.1 400');
  });
});

describe('the bare platform domain with a shared store (Redis)', () => {
  it('answers a neutral page that names no tenant', async () => {
    const redis = await redisForTests();
    let shared: RunningServer | undefined;
    try {
      shared = await startServer(sitesDir, { REDIS_URL: redis.url, SESSION_KEYS: 'k1:a-signing-secret-for-tests-0123456789abcdef' });
      const res = await get(shared.port, 'localhost', '/');
      expect(res.status).toBe(200);
      expect(res.headers['content-type']).toBe('text/html; charset=utf-8');
      for (const id of ['acme', 'bakery', 'blog', 'docs']) expect(res.body).not.toContain(`${id}.localhost`);
      expect(res.body).not.toContain('data-platform-sites');
    } finally {
      await shared?.stop();
      await redis.stop();
    }
  });
});
