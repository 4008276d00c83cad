import { describe, expect, it } from 'vitest';
import { verificationRecordName, verificationToken } from '../../astro-multi-tenant/server/tenant/domain-token.ts';
import { createDomainVerifier } from '../../astro-multi-tenant/server/tenant/domain-verifier.ts';
import { createMemoryDomainStateStore, type DomainStateStore } from '../../astro-multi-tenant/server/tenant/domain-state.ts';
import { createSiteRegistry } from '../../astro-multi-tenant/server/tenant/registry.ts';
import { createMemoryClaimStore } from '../../astro-multi-tenant/server/tenant/host-claims.ts';
import type { SiteSource } from '../../astro-multi-tenant/server/sites/site-source.ts';

const SECRET = 'test-secret-of-at-least-32-characters!!';
const MINUTE = 60_000;
const HOUR = 60 * MINUTE;

/** A DNS zone and a clock the test moves, and a verifier over them (as main.ts wires it). */
function setup(hosts: () => Array<readonly [string, string]>, store: DomainStateStore = createMemoryDomainStateStore()) {
  const txt = new Map<string, string[]>();
  const lookups: string[] = [];
  let now = Date.parse('2026-01-01T00:00:00Z');
  const changed: string[][] = [];
  const verifier = createDomainVerifier({
    store,
    secret: SECRET,
    lookupTxt: async (name) => {
      lookups.push(name);
      return txt.get(name) ?? [];
    },
    hosts,
    now: () => now,
    recheckMs: HOUR,
    retryMs: MINUTE,
    graceMs: 24 * HOUR,
    onOwnersChanged: (domains) => changed.push([...domains]),
  });
  const prove = (site: string, domain: string) => txt.set(verificationRecordName(domain), [verificationToken(SECRET, site, domain)]);
  return { verifier, txt, lookups, changed, prove, advance: (ms: number) => (now += ms), store };
}

describe('custom domain ownership with DOMAIN_VERIFICATION=dns', () => {
  it('a domain verified for one site is never taken by another that lists it later, and that site is told why', async () => {
    let hosts: Array<readonly [string, string]> = [['shop.test', 'shop']];
    const w = setup(() => hosts);
    w.prove('shop', 'shop.test');
    await w.verifier.tick();
    expect(w.verifier.ownerOf('shop.test')).toBe('shop');

    hosts = [['shop.test', 'shop'], ['shop.test', 'aaa']];
    w.lookups.length = 0;
    for (let i = 0; i < 3; i++) {
      w.advance(2 * MINUTE);
      await w.verifier.tick();
    }
    // The newcomer is not even checked while the owner still lists it: no lookup, no record change.
    expect(w.lookups).toEqual([]);
    expect(w.verifier.allows('aaa', 'shop.test')).toBe(false);
    expect(w.verifier.allows('shop', 'shop.test')).toBe(true);
    const [status] = w.verifier.describe('aaa', ['shop.test']);
    expect(status).toMatchObject({ state: 'pending' });
    expect(status!.detail).toContain('verified for site "shop"');
    expect((await w.store.load()).get('shop.test')).toMatchObject({ site: 'shop', state: 'verified' });
  });

  it('a squatter listing a domain first never keeps it from the site whose token is in DNS, and its misses never overwrite the record', async () => {
    const hosts: Array<readonly [string, string]> = [['shop.test', 'aaa']];
    const w = setup(() => hosts);
    await w.verifier.tick();
    expect((await w.store.load()).get('shop.test')).toMatchObject({ site: 'aaa', state: 'pending' });

    // The real owner lists it too, and puts its token in DNS.
    hosts.push(['shop.test', 'shop']);
    w.prove('shop', 'shop.test');
    w.advance(2 * MINUTE);
    await w.verifier.tick();
    expect(w.verifier.ownerOf('shop.test')).toBe('shop');
    expect(w.changed.flat()).toContain('shop.test');
    // From now on the squatter is not checked, and the record stays the owner's.
    w.lookups.length = 0;
    w.advance(2 * MINUTE);
    await w.verifier.tick();
    expect((await w.store.load()).get('shop.test')).toMatchObject({ site: 'shop', state: 'verified' });
    expect(w.verifier.allows('aaa', 'shop.test')).toBe(false);
  });

  it('a challenger without the token is checked at most every retry interval, and writes nothing', async () => {
    const hosts: Array<readonly [string, string]> = [['shop.test', 'aaa'], ['shop.test', 'bbb']];
    const w = setup(() => hosts);
    await w.verifier.tick();
    const first = (await w.store.load()).get('shop.test');
    w.lookups.length = 0;
    await w.verifier.tick();
    expect(w.lookups).toEqual([]);
    w.advance(2 * MINUTE);
    await w.verifier.tick();
    // Both checked again after the interval; the one record is still the first site's.
    expect(w.lookups).toHaveLength(2);
    expect((await w.store.load()).get('shop.test')?.site).toBe(first?.site);
  });

  it('a domain whose owner dropped it can be verified by another site', async () => {
    let hosts: Array<readonly [string, string]> = [['shop.test', 'shop']];
    const w = setup(() => hosts);
    w.prove('shop', 'shop.test');
    await w.verifier.tick();
    hosts = [['shop.test', 'other']];
    w.prove('other', 'shop.test');
    w.advance(2 * MINUTE);
    await w.verifier.tick();
    expect(w.verifier.ownerOf('shop.test')).toBe('other');
    expect(w.verifier.allows('other', 'shop.test')).toBe(true);
  });

  it('in the host index, the verified site owns the host over an older claim record, on a process that starts later too', async () => {
    const configs: Record<string, { domains: string[] }> = { aaa: { domains: ['shop.test'] }, shop: { domains: ['shop.test'] } };
    const source: SiteSource = {
      location: '(test)',
      listingVersion: async () => '1',
      listSiteIds: async () => Object.keys(configs),
      configVersion: async (id: string) => (configs[id] ? '1' : null),
      readConfig: async (id: string) => (configs[id] ? { text: JSON.stringify(configs[id]), version: '1' } : null),
    } as unknown as SiteSource;
    // The squatter holds the claim record (first by id), as a fresh machine would record it.
    const claims = createMemoryClaimStore([['shop.test', 'aaa']]);
    const registry = createSiteRegistry({ source, sitesDir: '/nowhere', platformDomain: 'sites.test', rescanIntervalMs: 0, claims, follow: false });
    await registry.scan();
    expect(registry.index.entries.get('shop.test')?.siteId).toBe('aaa');

    const store = createMemoryDomainStateStore();
    await store.put(new Map([['shop.test', { site: 'shop', state: 'verified' as const, checkedAt: Date.parse('2026-01-01T00:00:00Z'), verifiedAt: Date.parse('2026-01-01T00:00:00Z') }]]));
    const w = setup(() => registry.sites.flatMap((s) => s.domains.map((d) => [d, s.id] as const)), store);
    await w.verifier.refresh();
    registry.useVerifiedOwners((host) => w.verifier.ownerOf(host));
    expect(registry.index.entries.get('shop.test')?.siteId).toBe('shop');
    expect(registry.conflicts).toEqual([{ host: 'shop.test', winner: 'shop', loser: 'aaa' }]);
  });
});
