import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { redisForTests } from '../helpers/redis.ts';
import { createMemoryCertificateStore, type CertificateStore } from '../../astro-multi-tenant/server/tls/certificate-store.ts';
import { createFileCertificateStore } from '../../astro-multi-tenant/server/tls/certificate-store-file.ts';
import { createRedisCertificateStore } from '../../astro-multi-tenant/server/tls/certificate-store-redis.ts';

let redis: { url: string; stop(): Promise<void> };
const clients: Redis[] = [];
let stateRoot: string;
const prefix = `amt:acme:test:${process.pid}:${Date.now()}`;

beforeAll(async () => {
  redis = await redisForTests();
  stateRoot = await mkdtemp(join(tmpdir(), 'amt-certstore-'));
}, 30_000);

afterAll(async () => {
  if (clients[0]) {
    const keys = await clients[0].keys(`${prefix}*`);
    if (keys.length > 0) await clients[0].del(...keys);
  }
  await Promise.all(clients.map((c) => c.quit()));
  await redis?.stop();
  await rm(stateRoot, { recursive: true, force: true });
});

const redisClient = () => {
  const c = new Redis(redis.url);
  clients.push(c);
  return c;
};

/** Two handles on one store, as two machines (or two workers) would have; `name` picks a fresh namespace. */
const kinds: Array<[string, (name: string) => [CertificateStore, CertificateStore]]> = [
  ['memory', () => {
    const one = createMemoryCertificateStore();
    return [one, one];
  }],
  ['STATE_DIR file', (name) => {
    const opts = { dir: join(stateRoot, name), sitesDir: '/srv/sites' };
    return [createFileCertificateStore(opts), createFileCertificateStore(opts)];
  }],
  ['Redis', (name) => [createRedisCertificateStore(redisClient(), `${prefix}:${name}`), createRedisCertificateStore(redisClient(), `${prefix}:${name}`)]],
];

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const record = { site: 'shop', serial: 'AB01', notBefore: 1_000, notAfter: 2_000, issuedAt: 1_000, failures: 0 };
const bundle = { serial: 'AB01', chainPem: '-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----\n', keyPem: '-----BEGIN PRIVATE KEY-----\ny\n-----END PRIVATE KEY-----\n' };

describe.each(kinds)('the %s certificate store', (_kind, open) => {
  it('gives another handle the record and certificate one handle wrote, and forgets both on remove', async () => {
    const [one, two] = open('records');
    const v0 = await two.version();
    await one.put('shop.test', record, bundle);
    const v1 = await two.version();
    expect(v1).not.toBe(v0);
    expect(await two.get('shop.test')).toEqual(record);
    expect(await two.getBundle('shop.test')).toEqual(bundle);
    expect([...(await two.list())]).toEqual([['shop.test', record]]);
    // A record update without a bundle keeps the certificate.
    await two.put('shop.test', { ...record, failures: 2, lastError: 'x' });
    expect((await one.get('shop.test'))?.failures).toBe(2);
    expect(await one.getBundle('shop.test')).toEqual(bundle);
    await one.remove('shop.test');
    expect(await two.version()).not.toBe(v1);
    expect(await two.get('shop.test')).toBeUndefined();
    expect(await two.getBundle('shop.test')).toBeUndefined();
    expect((await two.list()).size).toBe(0);
  });

  it('keeps one account per CA directory', async () => {
    const [one, two] = open('accounts');
    expect(await one.getAccount('https://ca.test/dir')).toBeUndefined();
    const account = { directoryUrl: 'https://ca.test/dir', keyPem: 'KEY', url: 'https://ca.test/acct/1', createdAt: 5 };
    await one.putAccount(account);
    expect(await two.getAccount('https://ca.test/dir')).toEqual(account);
    expect(await two.getAccount('https://other-ca.test/dir')).toBeUndefined();
  });

  it('gives a lock to one owner at a time until it is released or expires', async () => {
    const [one, two] = open('locks');
    expect(await one.lock('cert:shop.test', 'a', 10_000)).toBe(true);
    expect(await two.lock('cert:shop.test', 'b', 10_000)).toBe(false);
    // Another name is another lock.
    expect(await two.lock('cert:other.test', 'b', 10_000)).toBe(true);
    await two.unlock('cert:shop.test', 'b');
    expect(await two.lock('cert:shop.test', 'b', 10_000)).toBe(false);
    await one.unlock('cert:shop.test', 'a');
    expect(await two.lock('cert:shop.test', 'b', 150)).toBe(true);
    // A holder that died: its lock expires by itself.
    await sleep(300);
    expect(await one.lock('cert:shop.test', 'a', 10_000)).toBe(true);
  });

  it('serves a challenge answer until it expires or is removed', async () => {
    const [one, two] = open('challenges');
    await one.putChallenge('tok_0123456789abcdef', { host: 'shop.test', keyAuthorization: 'tok.thumb', expiresAt: Date.now() + 10_000 });
    await one.putChallenge('old_0123456789abcdef', { host: 'shop.test', keyAuthorization: 'old.thumb', expiresAt: Date.now() + 150 });
    expect(await two.getChallenge('tok_0123456789abcdef')).toEqual({ host: 'shop.test', keyAuthorization: 'tok.thumb', expiresAt: expect.any(Number) });
    expect(await two.getChallenge('nope_0123456789abcdef')).toBeUndefined();
    await sleep(300);
    expect(await two.getChallenge('old_0123456789abcdef')).toBeUndefined();
    await two.removeChallenge('tok_0123456789abcdef');
    expect(await one.getChallenge('tok_0123456789abcdef')).toBeUndefined();
  });

  it('shares the rate-limit pause and lets it run out', async () => {
    const [one, two] = open('pause');
    expect(await two.getPause()).toBe(0);
    const until = Date.now() + 200;
    await one.setPause(until);
    expect(await two.getPause()).toBe(until);
    await sleep(350);
    expect(await two.getPause()).toBe(0);
  });

  it('keeps the later of two pauses: a shorter Retry-After seen by another worker never cuts a longer one short', async () => {
    const [one, two] = open('pause-max');
    const long = Date.now() + 60_000;
    await one.setPause(long);
    await two.setPause(Date.now() + 1_000);
    expect(await one.getPause()).toBe(long);
    expect(await two.getPause()).toBe(long);
  });
});

describe.each(kinds.filter(([kind]) => kind !== 'STATE_DIR file'))('the %s certificate store, quietly', (_kind, open) => {
  it('a quiet write (a schedule change, no new file) is read by the next list but does not move the version', async () => {
    const [one, two] = open('quiet');
    await one.put('shop.test', record, bundle);
    const version = await two.version();
    await one.put('shop.test', { ...record, renewAfter: 1_500, ariCheckAt: 1_600 }, undefined, { quiet: true });
    expect(await two.version()).toBe(version);
    expect((await two.list()).get('shop.test')).toMatchObject({ renewAfter: 1_500, ariCheckAt: 1_600 });
  });
});

describe('the STATE_DIR certificate store', () => {
  it('keeps keys in private files: folder 0700, files 0600', async () => {
    const dir = join(stateRoot, 'private');
    const store = createFileCertificateStore({ dir, sitesDir: '/srv/sites' });
    await store.put('shop.test', record, bundle);
    await store.putChallenge('tok_0123456789abcdef', { host: 'shop.test', keyAuthorization: 'k', expiresAt: Date.now() + 10_000 });
    expect((await stat(dir)).mode & 0o777).toBe(0o700);
    const files = (await readdir(dir)).filter((f) => f.endsWith('.json'));
    expect(files).toHaveLength(2);
    for (const f of files) expect((await stat(join(dir, f))).mode & 0o777, f).toBe(0o600);
  });
});

describe('the Redis certificate store', () => {
  it('skips a record this version cannot read (that host is issued for again)', async () => {
    const c = redisClient();
    const store = createRedisCertificateStore(c, `${prefix}:garbage`);
    await store.put('good.test', record);
    await c.hset(`${prefix}:garbage:certs`, 'bad.test', '{"site":42}', 'worse.test', 'not json');
    expect([...(await store.list()).keys()]).toEqual(['good.test']);
    expect(await store.get('bad.test')).toBeUndefined();
  });
});
