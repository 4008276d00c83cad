import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, readFile, readdir, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createCertificateManager, type CertificateManagerOptions } from '../../astro-multi-tenant/server/tls/certificate-manager.ts';
import { createMemoryCertificateStore, type CertificateStore } from '../../astro-multi-tenant/server/tls/certificate-store.ts';
import { createCertsDir } from '../../astro-multi-tenant/server/tls/certs-dir.ts';
import { AcmeAttemptError } from '../../astro-multi-tenant/server/tls/acme-problem.ts';
import type { AcmeIssuer, IssuedCertificate } from '../../astro-multi-tenant/server/tls/acme-issuer.ts';
import type { AttemptFailure } from '../../astro-multi-tenant/server/tls/renewal-schedule.ts';

const DAY = 86_400_000;
let root: string;
let dirCount = 0;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'amt-certmgr-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

/** A CA stand-in: 90-day certificates with serials S1, S2 …, or the failure queued for a host. */
function fakeIssuer(clock: { now: number }, delayMs = 0) {
  const calls: string[] = [];
  const failures = new Map<string, AttemptFailure>();
  let serial = 0;
  const issuer: AcmeIssuer = {
    async revoke() {},
    async issue(host): Promise<IssuedCertificate> {
      calls.push(host);
      if (delayMs) await new Promise((r) => setTimeout(r, delayMs));
      const failure = failures.get(host);
      if (failure) throw new AcmeAttemptError(failure);
      serial++;
      return { serial: `S${serial}`, notBefore: clock.now, notAfter: clock.now + 90 * DAY, chainPem: `CHAIN ${host} S${serial}\n`, keyPem: `KEY ${host} S${serial}\n` };
    },
  };
  return { issuer, calls, failures };
}

function setup(overrides: Partial<CertificateManagerOptions> & { wanted?: () => Map<string, string> | undefined } = {}) {
  const clock = { now: 1_000 * DAY };
  const store: CertificateStore = overrides.store ?? createMemoryCertificateStore(() => clock.now);
  const ca = fakeIssuer(clock);
  const certsDir = join(root, `certs-${++dirCount}`);
  const events: string[] = [];
  let wanted = new Map([['shop.test', 'shop'], ['www.shop.test', 'shop']]);
  const manager = createCertificateManager({
    store,
    issuer: ca.issuer,
    wanted: () => wanted,
    renewBeforeMs: 30 * DAY,
    now: () => clock.now,
    certsDir: createCertsDir({ dir: certsDir, getBundle: (h) => store.getBundle(h) }),
    onIssued: (host, _site, cert, renewal) => events.push(`${renewal ? 'renewed' : 'issued'} ${host} ${cert.serial}`),
    onFailure: (host, _site, failure) => events.push(`failed ${host} ${failure.kind}`),
    onRemoved: (host) => events.push(`removed ${host}`),
    ...overrides,
  });
  return { clock, store, ca, certsDir, events, manager, setWanted: (w: Map<string, string>) => (wanted = w) };
}

describe('the certificate manager', () => {
  it('orders a certificate for each wanted host once, writes CERTS_DIR, and renews only inside the renewal window', async () => {
    const { clock, ca, certsDir, events, manager } = setup();
    await manager.tick();
    expect(ca.calls.sort()).toEqual(['shop.test', 'www.shop.test']);
    expect((await readdir(certsDir)).sort()).toEqual(['shop.test.crt', 'shop.test.key', 'www.shop.test.crt', 'www.shop.test.key']);
    expect(await readFile(join(certsDir, 'shop.test.key'), 'utf8')).toMatch(/^KEY shop.test S\d\n$/);
    expect((await stat(join(certsDir, 'shop.test.key'))).mode & 0o777).toBe(0o640);
    expect((await stat(join(certsDir, 'shop.test.crt'))).mode & 0o777).toBe(0o644);
    await manager.tick();
    clock.now += 59 * DAY;
    await manager.tick();
    expect(ca.calls).toHaveLength(2);
    clock.now += 1 * DAY;
    await manager.tick();
    expect(ca.calls).toHaveLength(4);
    expect(events.filter((e) => e.startsWith('renewed'))).toHaveLength(2);
    expect(await readFile(join(certsDir, 'shop.test.crt'), 'utf8')).toMatch(/S[34]\n$/);
    expect(manager.statuses().map((s) => s.state)).toEqual(['valid', 'valid']);
  });

  it('one site\'s backlog of 200 new domains never holds back another site\'s renewal or first certificate: each site gets its turn in the first tick', async () => {
    let wanted = new Map([['shop.test', 'shop']]);
    const { clock, ca, manager } = setup({ wanted: () => wanted, maxIssuesPerTick: 5 });
    await manager.tick();
    clock.now += 61 * DAY;
    // The squatter's 200 names come first in the host index, and have no certificate yet.
    wanted = new Map([...Array.from({ length: 200 }, (_, i) => [`n${i}.evil.test`, 'evil'] as [string, string]), ['shop.test', 'shop'], ['blog.test', 'blog']]);
    ca.calls.length = 0;
    await manager.tick();
    expect(ca.calls).toHaveLength(5);
    expect(ca.calls).toContain('shop.test');
    expect(ca.calls).toContain('blog.test');
    expect(ca.calls.filter((h) => h.endsWith('.evil.test'))).toHaveLength(3);
  });

  it('two processes sharing the store order a host once: the second finds it locked, then already issued', async () => {
    const clock = { now: 1_000 * DAY };
    const store = createMemoryCertificateStore(() => clock.now);
    const ca = fakeIssuer(clock, 50);
    const wanted = () => new Map([['shop.test', 'shop']]);
    const common = { store, issuer: ca.issuer, wanted, renewBeforeMs: 30 * DAY, now: () => clock.now };
    const one = createCertificateManager(common);
    const two = createCertificateManager(common);
    await Promise.all([one.tick(), two.tick()]);
    await two.tick();
    expect(ca.calls).toEqual(['shop.test']);
    expect(two.describe(['shop.test'])[0]).toMatchObject({ state: 'valid', serial: 'S1' });
  });

  it('backs off after a failure and records why, keeping the host failed until the retry succeeds', async () => {
    const { clock, ca, events, manager } = setup({ wanted: () => new Map([['shop.test', 'shop']]) });
    ca.failures.set('shop.test', { kind: 'validation', message: 'connection: refused' });
    await manager.tick();
    expect(manager.describe(['shop.test'])[0]).toMatchObject({ state: 'failed', failures: 1, lastError: 'connection: refused', nextAttemptAt: clock.now + 2 * 60_000 });
    clock.now += 60_000;
    await manager.tick();
    expect(ca.calls).toHaveLength(1);
    clock.now += 60_000;
    ca.failures.delete('shop.test');
    await manager.tick();
    expect(ca.calls).toHaveLength(2);
    expect(manager.describe(['shop.test'])[0]).toMatchObject({ state: 'valid', failures: 0 });
    expect(events).toEqual(['failed shop.test validation', 'issued shop.test S1']);
  });

  it('a rate limit on one host\'s own name (its registered domain, its exact name) backs off that host only: another site\'s certificate is ordered in the same tick', async () => {
    const { ca, manager } = setup({ wanted: () => new Map([['n1.evil.test', 'evil'], ['shop.test', 'shop']]) });
    ca.failures.set('n1.evil.test', { kind: 'rate_limited', message: 'rate limited by the CA: too many certificates (50) already issued for "evil.test" in the last 168h0m0s', retryAfterMs: 7 * DAY, scope: 'host' });
    await manager.tick();
    expect(ca.calls).toEqual(['n1.evil.test', 'shop.test']);
    expect(manager.describe(['n1.evil.test', 'shop.test']).map((s) => s.state)).toEqual(['failed', 'valid']);
    expect(manager.describe(['n1.evil.test'])[0]!.nextAttemptAt).toBeGreaterThanOrEqual(1_000 * DAY + 7 * DAY);
  });

  it('a rate limit pauses every order of the account until the CA\'s Retry-After', async () => {
    const { clock, ca, manager } = setup();
    ca.failures.set('shop.test', { kind: 'rate_limited', message: 'too many', retryAfterMs: 3_600_000 });
    ca.failures.set('www.shop.test', { kind: 'rate_limited', message: 'too many', retryAfterMs: 3_600_000 });
    await manager.tick();
    expect(ca.calls).toHaveLength(1);
    clock.now += 3_599_000;
    await manager.tick();
    expect(ca.calls).toHaveLength(1);
    ca.failures.clear();
    clock.now += 2_000;
    await manager.tick();
    expect(ca.calls).toHaveLength(3);
  });

  it('keeps the certificate of a host no site wants any more for the removal delay, then drops it and its files', async () => {
    const { clock, certsDir, events, manager, setWanted } = setup({ removeAfterMs: 3_600_000 });
    await manager.tick();
    setWanted(new Map([['shop.test', 'shop']]));
    clock.now += 1000;
    await manager.tick();
    expect(await readdir(certsDir)).toContain('www.shop.test.crt');
    // Wanted again within the delay: nothing is lost.
    setWanted(new Map([['shop.test', 'shop'], ['www.shop.test', 'shop']]));
    await manager.tick();
    setWanted(new Map([['shop.test', 'shop']]));
    clock.now += 1000;
    await manager.tick();
    clock.now += 3_600_000;
    // Files written in the same instant as a store read are kept (another worker may have just written them).
    await new Promise((r) => setTimeout(r, 20));
    await manager.tick();
    expect(events).toContain('removed www.shop.test');
    expect((await readdir(certsDir)).sort()).toEqual(['shop.test.crt', 'shop.test.key']);
  });

  it('writes nothing while two processes briefly disagree about a host (one has not yet learnt of it): no mark to flip back and forth', async () => {
    const clock = { now: 1_000 * DAY };
    const store = createMemoryCertificateStore(() => clock.now);
    const ca = fakeIssuer(clock);
    const common = { store, issuer: ca.issuer, renewBeforeMs: 30 * DAY, now: () => clock.now };
    const knows = createCertificateManager({ ...common, wanted: () => new Map([['shop.test', 'shop']]) });
    const lags = createCertificateManager({ ...common, wanted: () => new Map() });
    await knows.tick();
    const version = await store.version();
    for (let i = 0; i < 10; i++) {
      clock.now += 10_000;
      await lags.tick();
      await knows.tick();
    }
    expect(await store.version()).toBe(version);
    // Past the grace, a process that still does not want the host marks it (the removal delay starts).
    clock.now += 60_000;
    await lags.tick();
    expect((await store.get('shop.test'))?.unwantedSince).toBe(1_000 * DAY + 10_000);
  });

  it('a CERTS_DIR it cannot write is reported apart from the store, and the certificate is kept in the store', async () => {
    const blocker = join(root, 'a-file');
    await writeFile(blocker, 'not a folder');
    const syncErrors: string[] = [];
    const storeErrors: unknown[] = [];
    const { store, manager } = setup({
      wanted: () => new Map([['shop.test', 'shop']]),
      certsDir: createCertsDir({ dir: join(blocker, 'certs'), getBundle: async () => undefined }),
      onSyncError: (error) => syncErrors.push((error as NodeJS.ErrnoException).code ?? ''),
      onError: (error) => storeErrors.push(error),
    });
    await manager.tick();
    expect(syncErrors).toEqual(['ENOTDIR']);
    expect(storeErrors).toEqual([]);
    expect((await store.get('shop.test'))?.serial).toBe('S1');
  });

  it('orders and removes nothing while the wanted names are unknown, nor for a host the resolver would not serve', async () => {
    const unknown = setup({ wanted: () => undefined });
    await unknown.manager.tick();
    expect(unknown.ca.calls).toEqual([]);
    const refused = setup({ serves: async (host) => host !== 'www.shop.test' });
    await refused.manager.tick();
    expect(refused.ca.calls).toEqual(['shop.test']);
  });
});

describe('the certificate manager, started', () => {
  it('brings a certificate another process issued into this machine\'s CERTS_DIR at the next poll, not the next full tick', async () => {
    const clock = { now: 1_000 * DAY };
    const store = createMemoryCertificateStore(() => clock.now);
    const ca = fakeIssuer(clock);
    const issuing = createCertificateManager({ store, issuer: ca.issuer, wanted: () => new Map([['shop.test', 'shop']]), renewBeforeMs: 30 * DAY, now: () => clock.now });
    const dir = join(root, 'polled');
    // This one never orders (its names are unknown): it only follows the store.
    const following = createCertificateManager({ store, issuer: ca.issuer, wanted: () => undefined, renewBeforeMs: 30 * DAY, now: () => clock.now, certsDir: createCertsDir({ dir, getBundle: (h) => store.getBundle(h) }) });
    following.start(3_600_000, 50);
    try {
      await new Promise((r) => setTimeout(r, 100));
      await issuing.tick();
      const started = Date.now();
      while (!(await readdir(dir).catch(() => [] as string[])).includes('shop.test.crt') && Date.now() - started < 2000) await new Promise((r) => setTimeout(r, 20));
      expect(await readFile(join(dir, 'shop.test.crt'), 'utf8')).toBe('CHAIN shop.test S1\n');
    } finally {
      following.stop();
    }
  });
});

describe('CERTS_DIR', () => {
  it('writes every other host\'s certificate when one host\'s files cannot be written (a 252-character name is too long for a file name), then reports that host', async () => {
    const dir = join(root, 'one-bad');
    const store = createMemoryCertificateStore();
    const long = `${'a'.repeat(63)}.${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(60)}`;
    for (const host of [long, 'shop.test']) {
      await store.put(host, { site: 's', serial: 'AB', notBefore: 0, notAfter: 1, failures: 0 }, { serial: 'AB', chainPem: `CHAIN ${host}\n`, keyPem: `KEY ${host}\n` });
    }
    const certs = createCertsDir({ dir, getBundle: (h) => store.getBundle(h) });
    const error = await certs.sync(await store.list(), Date.now()).catch((e: unknown) => e);
    expect(await readFile(join(dir, 'shop.test.crt'), 'utf8')).toBe('CHAIN shop.test\n');
    expect((error as NodeJS.ErrnoException).code).toBe('ENAMETOOLONG');
    expect((error as Error).message).toMatch(new RegExp(`^CERTS_DIR: cannot write the certificate of ${long}: ENAMETOOLONG`));
    // No temp file left behind with a key in it.
    expect((await readdir(dir)).sort()).toEqual(['shop.test.crt', 'shop.test.key']);
  });

  it('leaves files it does not manage alone, and never removes a file newer than the records it was given', async () => {
    const dir = join(root, 'manual');
    const store = createMemoryCertificateStore();
    const certs = createCertsDir({ dir, getBundle: (h) => store.getBundle(h) });
    await certs.sync(new Map(), Date.now());
    await writeFile(join(dir, '_default.crt'), 'operator');
    await writeFile(join(dir, 'README'), 'operator');
    await writeFile(join(dir, 'gone.test.crt'), 'old');
    await writeFile(join(dir, 'fresh.test.crt'), 'new');
    const loadedAt = Date.now();
    await utimes(join(dir, 'gone.test.crt'), new Date(loadedAt - 10_000), new Date(loadedAt - 10_000));
    await utimes(join(dir, 'fresh.test.crt'), new Date(loadedAt + 10_000), new Date(loadedAt + 10_000));
    const result = await certs.sync(new Map(), loadedAt);
    expect(result.removed).toEqual(['gone.test']);
    expect((await readdir(dir)).sort()).toEqual(['README', '_default.crt', 'fresh.test.crt']);
  });

  it('writes nothing for a host whose record and certificate disagree (the store is mid-write) or whose name is not a plain domain', async () => {
    const dir = join(root, 'mid-write');
    const store = createMemoryCertificateStore();
    await store.put('shop.test', { site: 'shop', serial: 'NEW', notBefore: 0, notAfter: 1, failures: 0 }, { serial: 'OLD', chainPem: 'c', keyPem: 'k' });
    await store.put('../evil.test', { site: 'x', serial: 'A', notBefore: 0, notAfter: 1, failures: 0 }, { serial: 'A', chainPem: 'c', keyPem: 'k' });
    const certs = createCertsDir({ dir, getBundle: (h) => store.getBundle(h) });
    expect(await certs.sync(await store.list(), Date.now())).toEqual({ written: [], removed: [] });
    expect(await readdir(dir)).toEqual([]);
  });
});
