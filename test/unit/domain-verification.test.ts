import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { chmod, mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { verificationRecordName, verificationToken } from '../../astro-multi-tenant/server/tenant/domain-token.ts';
import { createDomainVerifier, type DomainVerifierOptions } from '../../astro-multi-tenant/server/tenant/domain-verifier.ts';
import { createMemoryDomainStateStore, type DomainStateStore } from '../../astro-multi-tenant/server/tenant/domain-state.ts';
import { createFileDomainStateStore } from '../../astro-multi-tenant/server/tenant/domain-state-file.ts';
import { parseDnsServers } from '../../astro-multi-tenant/server/tenant/domain-dns.ts';
import { loadConfig } from '../../astro-multi-tenant/server/config.ts';
import { formatDomainReport, trafficRecords } from '../../astro-multi-tenant/server/tenant/domain-report.ts';

const SECRET = 'test-secret-of-at-least-32-characters!!';
const MINUTE = 60_000;
const HOUR = 60 * MINUTE;

/** A DNS zone the test edits, and a clock it moves. */
function world() {
  const txt = new Map<string, string[]>();
  let failing: string | undefined;
  let now = Date.parse('2026-01-01T00:00:00Z');
  return {
    txt,
    lookups: [] as string[],
    clock: { now: () => now, advance: (ms: number) => (now += ms) },
    breakDns: (code: string | undefined) => (failing = code),
    lookup(this: { lookups: string[] }, name: string) {
      this.lookups.push(name);
      if (failing) return Promise.reject(Object.assign(new Error(failing), { code: failing }));
      return Promise.resolve(txt.get(name) ?? []);
    },
  };
}

function verifier(w: ReturnType<typeof world>, hosts: Array<[string, string]>, store: DomainStateStore = createMemoryDomainStateStore(), extra: Partial<DomainVerifierOptions> = {}) {
  return createDomainVerifier({
    store,
    secret: SECRET,
    lookupTxt: (name) => w.lookup(name),
    hosts: () => hosts,
    now: w.clock.now,
    recheckMs: HOUR,
    retryMs: MINUTE,
    graceMs: 24 * HOUR,
    ...extra,
  });
}

describe('verification tokens', () => {
  it('are the same for the same site and domain on every process, and differ for any other site, domain or secret', () => {
    const token = verificationToken(SECRET, 'acme', 'shop.example');
    expect(token).toMatch(/^amt-verify=[A-Za-z0-9_-]{32}$/);
    expect(verificationToken(SECRET, 'acme', 'shop.example')).toBe(token);
    const others = [
      verificationToken(SECRET, 'acme2', 'shop.example'),
      verificationToken(SECRET, 'acme', 'shop.example.org'),
      verificationToken(`${SECRET}x`, 'acme', 'shop.example'),
      // The separator keeps "a" + "b.c" apart from "a\nb" + "c".
      verificationToken(SECRET, 'acme\nshop', 'example'),
    ];
    expect(new Set([token, ...others]).size).toBe(5);
  });

  it('are published at _amt-verify.<domain>', () => {
    expect(verificationRecordName('shop.example')).toBe('_amt-verify.shop.example');
    expect(verificationRecordName('www.a.b.example')).toBe('_amt-verify.www.a.b.example');
  });
});

describe('the domain lifecycle', () => {
  it('keeps a domain pending (not served) until its TXT record carries the site token, then serves it', async () => {
    const w = world();
    const v = verifier(w, [['shop.example', 'acme']]);
    expect(v.allows('acme', 'shop.example')).toBe(false);
    await v.tick();
    expect(v.describe('acme', ['shop.example'])[0]).toMatchObject({ state: 'pending', detail: 'no TXT record at _amt-verify.shop.example' });
    expect(v.allows('acme', 'shop.example')).toBe(false);

    // A record with someone else's token does not verify.
    w.txt.set('_amt-verify.shop.example', [verificationToken(SECRET, 'intruder', 'shop.example')]);
    w.clock.advance(MINUTE);
    await v.tick();
    expect(v.describe('acme', ['shop.example'])[0]).toMatchObject({ state: 'pending', detail: expect.stringContaining("does not carry this site's token") });

    w.txt.set('_amt-verify.shop.example', ['v=spf1 -all', verificationToken(SECRET, 'acme', 'shop.example')]);
    w.clock.advance(MINUTE);
    await v.tick();
    expect(v.allows('acme', 'shop.example')).toBe(true);
    expect(v.allows('intruder', 'shop.example')).toBe(false);
  });

  it('re-checks a verified domain only every recheck interval, and pending ones every retry interval', async () => {
    const w = world();
    w.txt.set('_amt-verify.a.example', [verificationToken(SECRET, 'a', 'a.example')]);
    const v = verifier(w, [['a.example', 'a'], ['b.example', 'b']]);
    await v.tick();
    expect(w.lookups.sort()).toEqual(['_amt-verify.a.example', '_amt-verify.b.example']);
    w.lookups.length = 0;
    w.clock.advance(MINUTE);
    await v.tick();
    expect(w.lookups).toEqual(['_amt-verify.b.example']);
    w.lookups.length = 0;
    w.clock.advance(HOUR);
    await v.tick();
    expect(w.lookups.sort()).toEqual(['_amt-verify.a.example', '_amt-verify.b.example']);
  });

  for (const [why, breakIt] of [
    ['the TXT record is removed', (w: ReturnType<typeof world>) => w.txt.delete('_amt-verify.shop.example')],
    ['the DNS server times out', (w: ReturnType<typeof world>) => w.breakDns('ETIMEOUT')],
    ['the TXT record is replaced by another token', (w: ReturnType<typeof world>) => w.txt.set('_amt-verify.shop.example', ['amt-verify=other'])],
  ] as const) {
    it(`keeps serving a verified domain through the grace period when ${why}, then stops (failed), and serves again once the record is back`, async () => {
      const w = world();
      w.txt.set('_amt-verify.shop.example', [verificationToken(SECRET, 'acme', 'shop.example')]);
      const changes: string[] = [];
      const v = verifier(w, [['shop.example', 'acme']], createMemoryDomainStateStore(), { onChange: (d, s, from, to) => changes.push(`${d}:${from}->${to}`) });
      await v.tick();
      expect(v.allows('acme', 'shop.example')).toBe(true);

      breakIt(w);
      w.clock.advance(HOUR);
      await v.tick();
      const failing = v.describe('acme', ['shop.example'])[0]!;
      expect(failing).toMatchObject({ state: 'failing', failingSince: w.clock.now(), graceEndsAt: w.clock.now() + 24 * HOUR });
      expect(v.allows('acme', 'shop.example')).toBe(true);

      w.clock.advance(23 * HOUR);
      await v.tick();
      expect(v.allows('acme', 'shop.example')).toBe(true);
      // The grace period ends on the clock, without waiting for the next check.
      w.clock.advance(HOUR);
      expect(v.allows('acme', 'shop.example')).toBe(false);
      await v.tick();
      expect(v.describe('acme', ['shop.example'])[0]!.state).toBe('failed');

      w.breakDns(undefined);
      w.txt.set('_amt-verify.shop.example', [verificationToken(SECRET, 'acme', 'shop.example')]);
      w.clock.advance(MINUTE);
      await v.tick();
      expect(v.allows('acme', 'shop.example')).toBe(true);
      expect(changes).toEqual(['shop.example:pending->verified', 'shop.example:verified->failing', 'shop.example:failing->failed', 'shop.example:failed->verified']);
    });
  }

  it('a failing domain whose record comes back within the grace period is verified again, with no gap', async () => {
    const w = world();
    w.txt.set('_amt-verify.shop.example', [verificationToken(SECRET, 'acme', 'shop.example')]);
    const v = verifier(w, [['shop.example', 'acme']]);
    await v.tick();
    w.breakDns('ESERVFAIL');
    w.clock.advance(HOUR);
    await v.tick();
    w.breakDns(undefined);
    w.clock.advance(MINUTE);
    await v.tick();
    expect(v.describe('acme', ['shop.example'])[0]).toMatchObject({ state: 'verified', failingSince: undefined });
  });

  it('checks a domain first seen on a request at once, in the background, without waiting for the next interval', async () => {
    const w = world();
    const hosts: Array<[string, string]> = [];
    const v = verifier(w, hosts);
    v.start(3_600_000);
    await v.tick();
    hosts.push(['new.example', 'acme']);
    w.txt.set('_amt-verify.new.example', [verificationToken(SECRET, 'acme', 'new.example')]);
    // The request itself is answered from memory: not served yet.
    expect(v.allows('acme', 'new.example')).toBe(false);
    const started = Date.now();
    while (!v.allows('acme', 'new.example') && Date.now() - started < 2000) await new Promise((r) => setTimeout(r, 5));
    v.stop();
    expect(v.allows('acme', 'new.example')).toBe(true);
    expect(w.lookups).toEqual(['_amt-verify.new.example']);
  });

  it('spreads a backlog over ticks: at most maxChecksPerTick lookups each', async () => {
    const w = world();
    const hosts = Array.from({ length: 25 }, (_, i) => [`d${i}.example`, `s${i}`] as [string, string]);
    const v = verifier(w, hosts, createMemoryDomainStateStore(), { maxChecksPerTick: 10 });
    await v.tick();
    expect(w.lookups).toHaveLength(10);
    await v.tick();
    await v.tick();
    expect(new Set(w.lookups).size).toBe(25);
  });
});

describe('the domain state file', () => {
  let root: string;
  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'amt-domains-'));
  });
  afterEach(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('is private (0700 folder, 0600 file) and shared: a domain verified by one process is served by another that never looked it up', async () => {
    const dir = join(root, 'state');
    const w = world();
    w.txt.set('_amt-verify.shop.example', [verificationToken(SECRET, 'acme', 'shop.example')]);
    const one = verifier(w, [['shop.example', 'acme']], createFileDomainStateStore({ dir, sitesDir: '/srv/sites' }));
    const otherWorld = world();
    const two = verifier(otherWorld, [['shop.example', 'acme']], createFileDomainStateStore({ dir, sitesDir: '/srv/sites' }));
    await one.tick();
    await two.tick();
    expect(otherWorld.lookups).toEqual([]);
    expect(two.allows('acme', 'shop.example')).toBe(true);
    expect((await stat(dir)).mode & 0o777).toBe(0o700);
    expect((await stat(createFileDomainStateStore({ dir, sitesDir: '/srv/sites' }).location)).mode & 0o777).toBe(0o600);
    // Another sites folder has its own records.
    expect(await createFileDomainStateStore({ dir, sitesDir: '/srv/other' }).load()).toEqual(new Map());
  });

  it('keeps the later check when two processes write the same domain', async () => {
    const store = createFileDomainStateStore({ dir: join(root, 'state'), sitesDir: '/srv/sites' });
    await store.put(new Map([['a.example', { site: 'a', state: 'verified', checkedAt: 200 }]]));
    await store.put(new Map([['a.example', { site: 'a', state: 'pending', checkedAt: 100 }], ['b.example', { site: 'b', state: 'pending', checkedAt: 100 }]]));
    const records = await store.load();
    expect(records.get('a.example')).toMatchObject({ state: 'verified', checkedAt: 200 });
    expect(records.get('b.example')).toMatchObject({ state: 'pending' });
  });

  it('refuses a state folder other users can open, naming STATE_DIR', async () => {
    const dir = join(root, 'open');
    const store = createFileDomainStateStore({ dir, sitesDir: '/srv/sites' });
    await store.load();
    await chmod(dir, 0o755);
    await expect(createFileDomainStateStore({ dir, sitesDir: '/srv/sites' }).load()).rejects.toThrow(/STATE_DIR: .* has mode 755/);
  });
});

describe('domain verification settings', () => {
  const base = { DOMAIN_VERIFICATION: 'dns', DOMAIN_TOKEN_SECRET: SECRET };
  it('are off by default, and on with dns and a secret, with defaults for the intervals', () => {
    expect(loadConfig({}).domainVerification).toBeUndefined();
    expect(loadConfig({ DOMAIN_VERIFICATION: 'off' }).domainVerification).toBeUndefined();
    expect(loadConfig(base).domainVerification).toEqual({ secret: SECRET, dnsServers: [], recheckMs: 3_600_000, retryMs: 60_000, graceMs: 259_200_000 });
    expect(loadConfig({}).domainTarget).toBeUndefined();
    expect(loadConfig({ DOMAIN_TARGET: '203.0.113.7, 2001:db8::7' }).domainTarget).toEqual(['203.0.113.7', '2001:db8::7']);
    expect(loadConfig({ DOMAIN_TARGET: 'Edge.Example.net' }).domainTarget).toEqual(['edge.example.net']);
  });

  for (const [env, message] of [
    [{ DOMAIN_VERIFICATION: 'txt' }, /DOMAIN_VERIFICATION: "txt" is not one of off, dns/],
    [{ DOMAIN_VERIFICATION: 'dns' }, /DOMAIN_TOKEN_SECRET: required/],
    [{ ...base, DOMAIN_TOKEN_SECRET: 'short' }, /DOMAIN_TOKEN_SECRET: must be at least 32/],
    [{ ...base, DNS_SERVERS: 'dns.example:53' }, /DNS_SERVERS: "dns.example:53"/],
    [{ ...base, DNS_SERVERS: '127.0.0.1:99999' }, /DNS_SERVERS: "127.0.0.1:99999"/],
    [{ ...base, DOMAIN_RETRY_S: '0' }, /DOMAIN_RETRY_S: 0 is outside/],
    [{ DOMAIN_TARGET: 'not a host' }, /DOMAIN_TARGET: "not a host"/],
    [{ DOMAIN_TARGET: 'a.example,b.example' }, /DOMAIN_TARGET: give one host name/],
  ] as const) {
    it(`refuses ${JSON.stringify(env)} naming the variable`, () => {
      expect(() => loadConfig(env)).toThrow(message);
    });
  }

  it('accepts resolver addresses with and without ports, IPv4 and IPv6', () => {
    expect(parseDnsServers('127.0.0.1:5353, 10.0.0.2 ,[::1]:53,::1')).toEqual(['127.0.0.1:5353', '10.0.0.2', '[::1]:53', '::1']);
    expect(parseDnsServers(undefined)).toEqual([]);
  });
});

describe('the DNS records an operator is told to create', () => {
  it('point traffic at DOMAIN_TARGET: A/AAAA for addresses, a CNAME for a name, by default a CNAME to the site\'s platform address', () => {
    expect(trafficRecords('shop.example', 'acme', 'sites.test', undefined)).toEqual([{ name: 'shop.example', type: 'CNAME', value: 'acme.sites.test.' }]);
    expect(trafficRecords('shop.example', 'acme', 'sites.test', ['edge.example.net'])).toEqual([{ name: 'shop.example', type: 'CNAME', value: 'edge.example.net.' }]);
    expect(trafficRecords('shop.example', 'acme', 'sites.test', ['203.0.113.7', '2001:db8::7'])).toEqual([
      { name: 'shop.example', type: 'A', value: '203.0.113.7' },
      { name: 'shop.example', type: 'AAAA', value: '2001:db8::7' },
    ]);
  });

  it('list the TXT record with the token for every custom domain and alias, not for the platform address', () => {
    const statuses = ['shop.example', 'www.shop.example'].map((domain) => ({ domain, site: 'acme', state: 'pending' as const, txtName: `_amt-verify.${domain}`, token: verificationToken(SECRET, 'acme', domain) }));
    const text = formatDomainReport({ site: 'acme', platformDomain: 'sites.test', domains: ['shop.example'], aliases: ['www.shop.example', 'acme.sites.test'], statuses, target: ['203.0.113.7'], now: 0 });
    expect(text).toContain(`_amt-verify.shop.example.`.padEnd(40) + ` TXT   "${verificationToken(SECRET, 'acme', 'shop.example')}"`);
    expect(text).toContain(`_amt-verify.www.shop.example.`.padEnd(40) + ' TXT');
    expect(text).toContain(`${'shop.example.'.padEnd(40)} A     203.0.113.7`);
    expect(text).not.toContain('_amt-verify.acme.sites.test');
    expect(text).toMatch(/^www\.shop\.example \(alias\): pending$/m);
  });

  it('say so when verification is off, with only the traffic records', () => {
    const text = formatDomainReport({ site: 'acme', platformDomain: 'sites.test', domains: ['shop.example'], aliases: [], statuses: undefined, target: undefined, now: 0 });
    expect(text).toContain('DOMAIN_VERIFICATION is off');
    expect(text).not.toContain('TXT');
    expect(text).toContain('CNAME acme.sites.test.');
  });
});
