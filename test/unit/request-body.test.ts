import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { createServer, request, validateHeaderValue, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { BodyError, readFormBody, safeNext } from '../../astro-multi-tenant/server/session/request-body.ts';

describe('safeNext', () => {
  it('keeps local paths with their query and fragment', () => {
    for (const path of ['/', '/members', '/blog/post-1?page=2#top', '/a/b/c/', '/search?q=a%2Fb', '/@user', '/%2F%2Fevil.example']) {
      expect(safeNext(path), path).toBe(path);
    }
  });

  it('turns a protocol-relative //host into /', () => {
    expect(safeNext('//evil.example')).toBe('/');
    expect(safeNext('//evil.example/path')).toBe('/');
    expect(safeNext('///evil.example')).toBe('/');
  });

  it('turns absolute URLs with a scheme into /', () => {
    for (const value of ['https://evil', 'http://evil.example/', 'javascript:alert(1)', 'data:text/html,x', 'evil.example', 'members']) {
      expect(safeNext(value), value).toBe('/');
    }
  });

  it('turns backslash tricks browsers read as // into /', () => {
    for (const value of ['/\\evil', '/\\\\evil.example', '\\\\evil', '/x\\y']) {
      expect(safeNext(value), JSON.stringify(value)).toBe('/');
    }
  });

  it('turns paths with control characters into /', () => {
    for (const value of ['/\t/evil.example', '/\n/evil', '/a\r\nSet-Cookie: x=y', '/\0', '/x\x1f']) {
      expect(safeNext(value), JSON.stringify(value)).toBe('/');
    }
  });

  it('turns empty, missing and overlong values into /', () => {
    expect(safeNext('')).toBe('/');
    expect(safeNext(undefined)).toBe('/');
    expect(safeNext(null)).toBe('/');
    expect(safeNext(`/${'a'.repeat(1000)}`)).toBe('/');
    expect(safeNext(`/${'a'.repeat(998)}`)).toBe(`/${'a'.repeat(998)}`);
  });

  // BUG (request-body.ts:42): DEL (\x7f) and characters above U+00FF pass safeNext, but Node refuses
  // them in a header value, so `res.setHeader('Location', form.next)` in sessions.ts seeOther()
  // throws ERR_INVALID_CHAR and the sign-in answers 500. A form field `next=%E6%97%A5` is enough.
  // Flip to it() once safeNext rejects /[^\x20-\x7e]/ (or percent-encodes with encodeURI).
  it('returns only values that Node accepts in a Location header', () => {
    for (const value of ['/\x7f', '/日本語', '/emoji-🔑']) {
      expect(() => validateHeaderValue('Location', safeNext(value)), JSON.stringify(value)).not.toThrow();
    }
  });
});

describe('readFormBody over a real HTTP server', () => {
  const LIMIT = 1024;
  let server: Server;
  let base: string;

  beforeAll(async () => {
    server = createServer(async (req, res) => {
      try {
        const body = await readFormBody(req, LIMIT);
        res.writeHead(200, { 'Content-Type': 'application/json' });
        res.end(JSON.stringify({ body, proto: Object.getPrototypeOf(body) === Object.prototype }));
      } catch (error) {
        const status = error instanceof BodyError ? error.status : 500;
        res.writeHead(status, { 'Content-Type': 'application/json', Connection: 'close' });
        res.end(JSON.stringify({ error: (error as Error).message }));
      }
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  });

  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  async function post(contentType: string, body: string) {
    const res = await fetch(base, { method: 'POST', headers: { 'content-type': contentType }, body });
    return { status: res.status, json: (await res.json()) as { body?: Record<string, string>; proto?: boolean; error?: string } };
  }

  /** Sends the body in chunks without a Content-Length, so only the streaming check can stop it. */
  function postChunked(contentType: string, chunks: string[]): Promise<number> {
    return new Promise((resolve, reject) => {
      const req = request(base, { method: 'POST', headers: { 'content-type': contentType, 'transfer-encoding': 'chunked' } }, (res) => {
        res.resume();
        resolve(res.statusCode!);
      });
      req.on('error', reject);
      for (const chunk of chunks) req.write(chunk);
      req.end();
    });
  }

  it('parses a urlencoded form', async () => {
    const { status, json } = await post('application/x-www-form-urlencoded', 'email=a%40example.com&password=p+w%26d&next=%2Fmembers');
    expect(status).toBe(200);
    expect(json.body).toEqual({ email: 'a@example.com', password: 'p w&d', next: '/members' });
  });

  it('accepts a content type with parameters and in any case', async () => {
    const { status, json } = await post('Application/X-WWW-Form-Urlencoded; charset=UTF-8', 'a=1');
    expect(status).toBe(200);
    expect(json.body).toEqual({ a: '1' });
  });

  it('parses a JSON object and keeps only its string fields', async () => {
    const { status, json } = await post('application/json; charset=utf-8', JSON.stringify({ token: 'abc', csrf: 'x', n: 1, nested: { a: 'b' }, list: ['c'], flag: true }));
    expect(status).toBe(200);
    expect(json.body).toEqual({ token: 'abc', csrf: 'x' });
  });

  it('treats an empty JSON body as an empty object', async () => {
    const { status, json } = await post('application/json', '');
    expect(status).toBe(200);
    expect(json.body).toEqual({});
  });

  it('does not let a __proto__ key change the result object prototype', async () => {
    const { status, json } = await post('application/json', '{"__proto__":"x","a":"b"}');
    expect(status).toBe(200);
    expect(json.proto).toBe(true);
    expect(json.body).toMatchObject({ a: 'b' });
  });

  it('answers 415 for other content types', async () => {
    for (const type of ['text/plain', 'multipart/form-data; boundary=x', 'application/jsonp', 'application/xml']) {
      const { status, json } = await post(type, 'a=1');
      expect(status, type).toBe(415);
      expect(json.error).toContain('Content-Type');
    }
  });

  it('answers 415 when there is no content type', async () => {
    // fetch would label a string body text/plain, so send one without any Content-Type.
    const status = await new Promise<number>((resolve, reject) => {
      const req = request(base, { method: 'POST', headers: { 'content-length': '3' } }, (res) => {
        res.resume();
        resolve(res.statusCode!);
      });
      req.on('error', reject);
      req.end('a=1');
    });
    expect(status).toBe(415);
  });

  it('answers 413 when the declared length is above the limit', async () => {
    const { status, json } = await post('application/x-www-form-urlencoded', `a=${'x'.repeat(LIMIT)}`);
    expect(status).toBe(413);
    expect(json.error).toContain(String(LIMIT));
  });

  it('accepts a body of exactly the limit', async () => {
    const { status, json } = await post('application/x-www-form-urlencoded', `a=${'x'.repeat(LIMIT - 2)}`);
    expect(status).toBe(200);
    expect(json.body?.a).toHaveLength(LIMIT - 2);
  });

  it('answers 413 when a chunked body without Content-Length grows past the limit', async () => {
    expect(await postChunked('application/x-www-form-urlencoded', ['a=', 'x'.repeat(600), 'x'.repeat(600)])).toBe(413);
  });

  it('reads a chunked body below the limit', async () => {
    expect(await postChunked('application/json', ['{"a":', '"b"}'])).toBe(200);
  });

  it('answers 400 for JSON that does not parse', async () => {
    const { status, json } = await post('application/json', '{"a":');
    expect(status).toBe(400);
    expect(json.error).toContain('not valid JSON');
  });

  it('answers 400 for JSON that is an array, null or a scalar', async () => {
    for (const body of ['["a"]', 'null', '"text"', '42', 'true']) {
      const { status, json } = await post('application/json', body);
      expect(status, body).toBe(400);
      expect(json.error).toContain('JSON object');
    }
  });
});
