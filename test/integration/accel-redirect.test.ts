import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'node:http';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { copySites, removeDir, startServer, type Response, type RunningServer } from '../helpers/server.ts';

/**
 * The app answers a public file with X-Accel-Redirect only when nginx offers it: the
 * X-Amt-Edge-Files header from a peer in TRUSTED_PROXIES (the socket's address, never a forwarded
 * one). Anyone else talking to the app directly gets the file itself, never a header naming where
 * it lies on disk. Here the server trusts 127.0.0.1 only, and an untrusted client is 127.0.0.2.
 */
let sitesDir: string;
let app: RunningServer;

beforeAll(async () => {
  sitesDir = await copySites();
  await mkdir(join(sitesDir, 'acme/public/odd names'), { recursive: true });
  await writeFile(join(sitesDir, 'acme/public/odd names/100% a?b#c.txt'), 'odd');
  app = await startServer(sitesDir, { TRUSTED_PROXIES: '127.0.0.1' });
}, 60_000);

afterAll(async () => {
  await app?.stop();
  await removeDir(sitesDir);
});

function getFrom(from: string, path: string, headers: Record<string, string> = {}): Promise<Response> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: app.port, path, localAddress: from, headers: { host: 'acme.example', ...headers }, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', reject);
    req.end();
  });
}

const OFFER = { 'X-Amt-Edge-Files': '/_amt_files/' };

describe('X-Accel-Redirect for public files', () => {
  it('names the checked file to a trusted proxy that offers it, with the app’s type and caching', async () => {
    const res = await getFrom('127.0.0.1', '/logo.svg', OFFER);
    expect(res.status).toBe(200);
    expect(res.headers['x-accel-redirect']).toBe('/_amt_files/acme/public/logo.svg');
    expect(res.headers['content-type']).toContain('image/svg+xml');
    expect(res.headers['cache-control']).toBe('public, max-age=300');
    expect(res.body).toBe('');
  });

  it('encodes every name so nginx decodes it back to the file (%, ?, # and spaces)', async () => {
    const res = await getFrom('127.0.0.1', `/odd%20names/${encodeURIComponent('100% a?b#c.txt')}`, OFFER);
    expect(res.headers['x-accel-redirect']).toBe('/_amt_files/acme/public/odd%20names/100%25%20a%3Fb%23c.txt');
  });

  it.each([
    ['an untrusted peer', '127.0.0.2', OFFER],
    ['an untrusted peer claiming to be forwarded by a trusted one', '127.0.0.2', { ...OFFER, 'X-Forwarded-For': '127.0.0.1' }],
    ['a trusted peer with a malformed offer', '127.0.0.1', { 'X-Amt-Edge-Files': '/../etc/' }],
    ['a trusted peer that offers nothing', '127.0.0.1', {}],
  ] as const)('sends the file itself to %s, never a redirect', async (_name, from, headers) => {
    const res = await getFrom(from, '/logo.svg', headers);
    expect(res.status).toBe(200);
    expect(res.headers['x-accel-redirect']).toBeUndefined();
    expect(res.body).toContain('<svg');
  });

  it('offers nothing for what is not a file of the site: a missing file, a page, a hidden name', async () => {
    for (const path of ['/missing.svg', '/about', '/.env']) {
      const res = await getFrom('127.0.0.1', path, OFFER);
      expect(res.headers['x-accel-redirect'], path).toBeUndefined();
    }
  });
});
