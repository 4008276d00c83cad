import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chmod, mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { copySites, removeDir, startServer, waitFor, type RunningServer } from '../helpers/server.ts';
import { startRedis, type RunningRedis } from '../helpers/redis.ts';
import { freePort } from '../helpers/cluster.ts';
import { startAll } from '../helpers/processes.ts';
import { DEMO, cookiesFrom, formHeaders, openForm, send, signIn, type Client } from '../helpers/sessions.ts';

/**
 * Every other integration test talks from 127.0.0.1, which the default TRUSTED_PROXIES and
 * ADMIN_ALLOW trust. Here the client binds to 127.0.0.2 (loopback, so no network is needed, but
 * outside both lists) and is a visitor like any other on the internet; or the server trusts a whole
 * range (TRUSTED_PROXIES=127.0.0.0/8, as a pod range would) that an attacker is inside.
 */
const UNTRUSTED = '127.0.0.2';
const SESSION_KEYS = 'k1:untrusted-peers-test-secret-0123456789abcdef';
const ADMIN_PATHS = ['/_platform/status.json', '/_platform/status', '/_platform/metrics'];
const FORGED_LOOPBACK = ['127.0.0.1', '::1', '::ffff:127.0.0.1', '127.0.0.1, 127.0.0.1', '10.0.0.1, 127.0.0.1'];

describe('an untrusted peer (127.0.0.2, default TRUSTED_PROXIES and ADMIN_ALLOW), sessions in a real Redis', () => {
  let redis: RunningRedis;
  let sitesDir: string;
  let server: RunningServer;
  let visitor: (host: string) => Client;
  let local: (host: string) => Client;

  beforeAll(async () => {
    redis = await startRedis();
    sitesDir = await copySites();
    server = await startServer(sitesDir, { REDIS_URL: redis.url, SESSION_KEYS, SIGNIN_MAX_FAILURES: '3' });
    visitor = (host) => ({ port: server.port, host, from: UNTRUSTED });
    local = (host) => ({ port: server.port, host, from: '127.0.0.1' });
  }, 60_000);

  afterAll(async () => {
    await server?.stop();
    await redis?.stop();
    await removeDir(sitesDir);
  });

  it('ignores X-Forwarded-Host: the Host header picks the site', async () => {
    const page = await send(visitor('acme.example'), 'GET', '/', { 'x-forwarded-host': 'docs.example' });
    expect(page.status).toBe(200);
    const acme = await send(local('acme.example'), 'GET', '/');
    const docs = await send(local('docs.example'), 'GET', '/');
    expect(page.body).toBe(acme.body);
    expect(page.body).not.toBe(docs.body);
    // The same header from the trusted proxy does pick the site.
    expect((await send(local('acme.example'), 'GET', '/', { 'x-forwarded-host': 'docs.example' })).body).toBe(docs.body);
  });

  it('ignores X-Forwarded-Proto: cookies stay plain-http ones (no Secure, no __Host- prefix)', async () => {
    const { res } = await signIn(visitor('docs.example'), DEMO.email, DEMO.password, { 'x-forwarded-proto': 'https' });
    expect(res.status).toBe(303);
    const session = res.headers['set-cookie']!.find((c) => c.startsWith('amt_session='))!;
    expect(session).toBeDefined();
    expect(session).not.toMatch(/Secure/);
    expect(res.headers['set-cookie']!.some((c) => c.startsWith('__Host-'))).toBe(false);
    const form = await openForm(visitor('docs.example'), { 'x-forwarded-proto': 'https' });
    expect(form.page.headers['set-cookie']!.find((c) => c.startsWith('amt_csrf='))).not.toMatch(/Secure/);
    // The https origin a forged X-Forwarded-Proto claims is not this request's origin.
    const body = new URLSearchParams({ csrf: form.token, ...DEMO }).toString();
    const forged = await send(visitor('docs.example'), 'POST', '/_platform/session/sign-in', formHeaders(form, 'https://docs.example', { 'x-forwarded-proto': 'https' }), body);
    expect(forged.status).toBe(403);
  });

  it('sets Secure and __Host- only for https as a trusted proxy reports it', async () => {
    const { res } = await signIn(local('docs.example'), DEMO.email, DEMO.password, { 'x-forwarded-proto': 'https' }, 'https://docs.example');
    expect(res.status).toBe(303);
    const session = res.headers['set-cookie']!.find((c) => c.startsWith('__Host-amt_session='))!;
    expect(session).toMatch(/; Secure/);
    expect(session).toMatch(/Path=\//);
    expect(session).not.toMatch(/Domain=/i);
  });

  it.each(ADMIN_PATHS)('refuses %s, whatever X-Forwarded-For claims', async (path) => {
    expect((await send(visitor('localhost'), 'GET', path)).status).toBe(403);
    for (const forged of FORGED_LOOPBACK) {
      const res = await send(visitor('localhost'), 'GET', path, { 'x-forwarded-for': forged });
      expect(res.status, forged).toBe(403);
      expect(res.body, forged).toContain(UNTRUSTED);
    }
    // The operator on the socket's own loopback gets in.
    expect((await send(local('localhost'), 'GET', path)).status).toBe(200);
  });

  it('does not let rotating X-Forwarded-For values evade the sign-in limit', async () => {
    // Its own address (SIGNIN_MAX_FAILURES=3), so the other tests' attempts do not count here.
    const client: Client = { port: server.port, host: 'docs.example', from: '127.0.0.5' };
    const attempt = (i: number, password: string) => signIn(client, DEMO.email, password, { 'x-forwarded-for': `203.0.113.${i}` }).then((r) => r.res.status);
    const statuses: number[] = [];
    for (let i = 0; i < 3; i++) statuses.push(await attempt(i, `wrong-${i}`));
    expect(statuses).toEqual([401, 401, 401]);
    // A fourth guess under yet another forged address, and then even the right password: refused.
    expect(await attempt(3, 'wrong-3')).toBe(429);
    expect(await attempt(4, DEMO.password)).toBe(429);
  });
});

describe('readyz for an untrusted peer, with Redis unreachable', () => {
  let sitesDir: string;
  let server: RunningServer;

  beforeAll(async () => {
    sitesDir = await copySites();
    const deadRedis = `redis://127.0.0.1:${await freePort()}`;
    server = await startServer(sitesDir, { REDIS_URL: deadRedis, SESSION_KEYS });
  }, 60_000);

  afterAll(async () => {
    await server?.stop();
    await removeDir(sitesDir);
  });

  it('says which check failed but not why; the operator on loopback sees why', async () => {
    const visitor = await send({ port: server.port, host: 'localhost', from: UNTRUSTED }, 'GET', '/_platform/readyz', { 'x-forwarded-for': '127.0.0.1' });
    const operator = await send({ port: server.port, host: 'localhost', from: '127.0.0.1' }, 'GET', '/_platform/readyz');
    const redisCheck = (body: string) => JSON.parse(body).checks.find((c: { name: string }) => c.name === 'redis');
    expect(visitor.status).toBe(operator.status);
    expect(redisCheck(visitor.body)).toEqual({ name: 'redis', ok: false });
    expect(visitor.body).not.toMatch(/127\.0\.0\.1|ECONNREFUSED|error/);
    expect(redisCheck(operator.body)).toMatchObject({ name: 'redis', ok: false, error: expect.any(String) });
  });
});

describe('a trusted range with an attacker inside it (TRUSTED_PROXIES=127.0.0.0/8)', () => {
  let sitesDir: string;
  let server: RunningServer;

  beforeAll(async () => {
    sitesDir = await copySites();
    server = await startServer(sitesDir, { TRUSTED_PROXIES: '127.0.0.0/8', ADMIN_ALLOW: '127.0.0.0/8,::1', SESSION_KEYS });
  }, 60_000);

  afterAll(async () => {
    await server?.stop();
    await removeDir(sitesDir);
  });

  it.each(ADMIN_PATHS)('refuses %s to a peer of the range that forwards a loopback address', async (path) => {
    for (const forged of [...FORGED_LOOPBACK, '127.0.0.2', '127.1.2.3']) {
      const res = await send({ port: server.port, host: 'localhost', from: UNTRUSTED }, 'GET', path, { 'x-forwarded-for': forged });
      expect(res.status, forged).toBe(403);
      expect(res.body, forged).toMatch(/loopback|not in ADMIN_ALLOW/);
    }
    // The same peer without a forwarded address is itself loopback, on its own socket, and allowed.
    expect((await send({ port: server.port, host: 'localhost', from: UNTRUSTED }, 'GET', path)).status).toBe(200);
  });
});

describe('a peer folder another local user could write to (PEER_DIR)', () => {
  let base: string;
  let sitesDir: string;

  beforeAll(async () => {
    base = await mkdtemp(join(tmpdir(), 'amt-peerdir-'));
    sitesDir = await copySites();
  });

  afterAll(async () => {
    await rm(base, { recursive: true, force: true });
    await removeDir(sitesDir);
  });

  it('is refused with a clear log line, and the status page shows this worker alone', async () => {
    const dir = join(base, 'shared');
    await mkdir(dir);
    await chmod(dir, 0o777);
    // What another local user would plant there: a "worker" socket answering with made-up numbers.
    let asked = 0;
    const fake = createServer((_req, res) => {
      asked++;
      res.writeHead(200, { 'Content-Type': 'application/json' }).end('{}');
    });
    await new Promise<void>((resolve) => fake.listen(join(dir, '999999.sock'), resolve));
    const [server] = await startAll([startServer(sitesDir, { PEER_DIR: dir, SESSION_KEYS })]);
    try {
      // The log line travels through a pipe: it may arrive a moment after the answer.
      await waitFor(async () => server.logs.some((l) => l.includes('cannot open the peer socket') && l.includes(`PEER_DIR: ${dir} is writable by group and others`)), 3000);
      const status = await send({ port: server.port, host: 'localhost', from: '127.0.0.1' }, 'GET', '/_platform/status.json');
      expect(status.status).toBe(200);
      expect(JSON.parse(status.body).workers).toHaveLength(1);
      expect((await send({ port: server.port, host: 'localhost', from: '127.0.0.1' }, 'GET', '/_platform/metrics')).status).toBe(200);
      expect(asked).toBe(0);
      expect(await readdir(dir)).toEqual(['999999.sock']);
    } finally {
      await server.stop();
      fake.close();
    }
  });
});
