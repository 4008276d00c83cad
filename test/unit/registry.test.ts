import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdir, mkdtemp, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSiteRegistry, type SiteRegistry } from '../../astro-multi-tenant/server/tenant/registry.ts';
import type { SiteSource } from '../../astro-multi-tenant/server/sites/site-source.ts';
import { createFileClaimStore, createMemoryClaimStore } from '../../astro-multi-tenant/server/tenant/host-claims.ts';

const PLATFORM = 'sites.example';

let root: string;
let sitesDir: string;

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'amt-registry-'));
  sitesDir = join(root, 'sites');
  await mkdir(sitesDir);
});

afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

/** Writes site.json in place (no rename), as an editor that truncates and rewrites does. */
async function writeSite(id: string, hosts: { domains?: string[]; aliases?: string[] }, dir = sitesDir) {
  await mkdir(join(dir, id), { recursive: true });
  await writeFile(join(dir, id, 'site.json'), JSON.stringify({ name: id, domains: hosts.domains ?? [], aliases: hosts.aliases ?? [] }));
}

async function started(): Promise<SiteRegistry> {
  const registry = createSiteRegistry({ sitesDir, platformDomain: PLATFORM, rescanIntervalMs: 60_000, follow: false });
  await registry.scan();
  return registry;
}

/** What a host routes to, as one short string: `site:a`, `redirect:a->host`, `unknown`. */
async function route(registry: SiteRegistry, host: string): Promise<string> {
  const r = await registry.lookup(host);
  return r.kind === 'unknown' ? 'unknown' : r.kind === 'redirect' ? `redirect:${r.siteId}->${r.toHost}` : `site:${r.siteId}`;
}

interface Kind {
  name: string;
  setup: () => Promise<void>;
  edit: () => Promise<void>;
  before: Record<string, string>;
  after: Record<string, string>;
}

const KINDS: Kind[] = [
  {
    name: 'a domain and an alias swapped in place',
    setup: () => writeSite('qa', { domains: ['qa.example'], aliases: ['www.qa.example'] }),
    edit: () => writeSite('qa', { domains: ['www.qa.example'], aliases: ['qa.example'] }),
    before: { 'qa.example': 'site:qa', 'www.qa.example': 'redirect:qa->qa.example' },
    after: { 'www.qa.example': 'site:qa', 'qa.example': 'redirect:qa->www.qa.example' },
  },
  {
    name: 'a domain moved from site A to site B',
    setup: async () => {
      await writeSite('a', { domains: ['a.example', 'shop.example'] });
      await writeSite('b', { domains: ['b.example'] });
    },
    edit: async () => {
      await writeSite('a', { domains: ['a.example'] });
      await writeSite('b', { domains: ['b.example', 'shop.example'] });
    },
    before: { 'shop.example': 'site:a' },
    after: { 'shop.example': 'site:b', 'a.example': 'site:a', 'b.example': 'site:b' },
  },
  {
    name: 'a domain removed',
    setup: () => writeSite('a', { domains: ['a.example', 'old.example'] }),
    edit: () => writeSite('a', { domains: ['a.example'] }),
    before: { 'old.example': 'site:a' },
    after: { 'old.example': 'unknown', 'a.example': 'site:a' },
  },
  {
    name: 'an alias added',
    setup: () => writeSite('a', { domains: ['a.example'] }),
    edit: () => writeSite('a', { domains: ['a.example'], aliases: ['www.a.example'] }),
    before: { 'www.a.example': 'unknown' },
    after: { 'www.a.example': 'redirect:a->a.example' },
  },
  {
    name: 'a new site folder',
    setup: () => writeSite('a', { domains: ['a.example'] }),
    edit: () => writeSite('fresh', { domains: ['fresh.example'], aliases: ['www.fresh.example'] }),
    before: { 'fresh.example': 'unknown' },
    after: { 'fresh.example': 'site:fresh', 'www.fresh.example': 'redirect:fresh->fresh.example', [`fresh.${PLATFORM}`]: 'site:fresh' },
  },
  {
    name: 'a deleted site folder',
    setup: async () => {
      await writeSite('a', { domains: ['a.example'] });
      await writeSite('gone', { domains: ['gone.example'], aliases: ['www.gone.example'] });
    },
    edit: () => rm(join(sitesDir, 'gone'), { recursive: true }),
    before: { 'gone.example': 'site:gone' },
    after: { 'gone.example': 'unknown', 'www.gone.example': 'unknown', [`gone.${PLATFORM}`]: 'unknown', 'a.example': 'site:a' },
  },
  {
    name: 'a renamed site folder',
    setup: () => writeSite('old-name', { domains: ['moving.example'] }),
    edit: () => rename(join(sitesDir, 'old-name'), join(sitesDir, 'new-name')),
    before: { 'moving.example': 'site:old-name' },
    after: { 'moving.example': 'site:new-name', [`new-name.${PLATFORM}`]: 'site:new-name', [`old-name.${PLATFORM}`]: 'unknown' },
  },
  {
    name: 'a site.json that stops parsing (keeps its hosts, so the site answers 503 rather than 404)',
    setup: () => writeSite('a', { domains: ['a.example'], aliases: ['www.a.example'] }),
    edit: () => writeFile(join(sitesDir, 'a', 'site.json'), '{"name": "a", "domains": ['),
    before: { 'a.example': 'site:a' },
    after: { 'a.example': 'site:a', 'www.a.example': 'redirect:a->a.example' },
  },
  {
    name: 'a symlinked site folder added',
    setup: async () => {
      await writeSite('linked-src', { domains: ['linked.example'] }, join(root, 'elsewhere'));
    },
    edit: () => symlink(join(root, 'elsewhere', 'linked-src'), join(sitesDir, 'linked')),
    before: { 'linked.example': 'unknown' },
    after: { 'linked.example': 'site:linked', [`linked.${PLATFORM}`]: 'site:linked' },
  },
];

describe('the host index follows every kind of change to site hosts on its own (one follower tick, no request)', () => {
  it.each(KINDS.map((k) => [k.name, k] as const))('%s', async (_name, kind) => {
    await kind.setup();
    const registry = await started();
    for (const [host, expected] of Object.entries(kind.before)) expect(await route(registry, host), host).toBe(expected);
    await kind.edit();
    await registry.tick();
    const seen = Object.fromEntries(await Promise.all(Object.keys(kind.after).map(async (host) => [host, await route(registry, host)])));
    expect(seen).toEqual(kind.after);
  });
});

describe('the host index from what a request saw (observe)', () => {
  it('re-routes a site\'s hosts from its current config at once, without reading anything', async () => {
    await writeSite('qa', { domains: ['qa.example'], aliases: ['www.qa.example'] });
    const registry = await started();
    registry.observe('qa', { domains: ['www.qa.example'], aliases: ['qa.example'] });
    expect(await route(registry, 'www.qa.example')).toBe('site:qa');
    expect(await route(registry, 'qa.example')).toBe('redirect:qa->www.qa.example');
  });

  it('drops every host of a site that is gone', async () => {
    await writeSite('a', { domains: ['a.example'], aliases: ['www.a.example'] });
    const registry = await started();
    await rm(join(sitesDir, 'a'), { recursive: true });
    registry.observe('a', null);
    expect(await route(registry, 'a.example')).toBe('unknown');
    expect(await route(registry, 'www.a.example')).toBe('unknown');
  });
});

/**
 * A site source kept in memory: 100,000 sites without 100,000 folders, counting every call, so
 * the cost of following one change is measured in calls, not in (noisy) milliseconds.
 */
function countingSource(count: number) {
  const configs = new Map<string, { text: string; version: number }>();
  for (let i = 0; i < count; i++) {
    configs.set(`site-${i}`, { text: JSON.stringify({ domains: [`shop-${i}.example`], aliases: [`www.shop-${i}.example`] }), version: 1 });
  }
  let listing = 1;
  const calls = { listingVersion: 0, listSiteIds: 0, configVersion: 0, readConfig: 0 };
  const ids = () => [...configs.keys()].sort();
  const source: SiteSource = {
    location: 'memory',
    async listingVersion() {
      calls.listingVersion++;
      return String(listing);
    },
    async listEntries() {
      return ids();
    },
    async listSiteIds() {
      calls.listSiteIds++;
      return ids();
    },
    async configVersion(id) {
      calls.configVersion++;
      const c = configs.get(id);
      return c ? String(c.version) : null;
    },
    async readConfig(id) {
      calls.readConfig++;
      const c = configs.get(id);
      return c ? { text: c.text, version: String(c.version) } : null;
    },
    siteDir: (id) => `/memory/${id}`,
    realSiteDir: async (id) => `/memory/${id}`,
    siteProblem: async (id) => (configs.has(id) ? undefined : 'no such site'),
  };
  return {
    source,
    calls,
    edit(id: string, hosts: { domains: string[]; aliases: string[] }) {
      const c = configs.get(id)!;
      configs.set(id, { text: JSON.stringify(hosts), version: c.version + 1 });
    },
    add(id: string, hosts: { domains: string[]; aliases: string[] }) {
      configs.set(id, { text: JSON.stringify(hosts), version: 1 });
      listing++;
    },
    reset() {
      for (const key of Object.keys(calls) as Array<keyof typeof calls>) calls[key] = 0;
    },
  };
}

describe('with 100,000 sites, one change costs one read and touches only that site', () => {
  const COUNT = 100_000;
  const BUDGET = 2000;

  it('a follower tick costs one listing stat and the sweep budget of stats; nothing is read when nothing changed', async () => {
    const fake = countingSource(COUNT);
    const registry = createSiteRegistry({ source: fake.source, sitesDir: '/memory', platformDomain: PLATFORM, rescanIntervalMs: 500, follow: false, sweepBudget: BUDGET });
    await registry.scan();
    expect(fake.calls.readConfig).toBe(COUNT);
    await registry.tick(); // the listing is read once more after any change (coarse file times)
    fake.reset();
    await registry.tick();
    expect(fake.calls).toEqual({ listingVersion: 1, listSiteIds: 0, configVersion: BUDGET, readConfig: 0 });
  });

  it('an in-place edit is read once within one full sweep, and no other site\'s index entry is rebuilt', async () => {
    const fake = countingSource(COUNT);
    const registry = createSiteRegistry({ source: fake.source, sitesDir: '/memory', platformDomain: PLATFORM, rescanIntervalMs: 500, follow: false, sweepBudget: BUDGET });
    await registry.scan();
    await registry.tick();
    const untouched = ['shop-1.example', 'www.shop-99999.example', 'shop-50000.example'];
    const entriesBefore = untouched.map((h) => registry.index.entries.get(h));
    fake.reset();
    fake.edit('site-77777', { domains: ['www.shop-77777.example'], aliases: ['shop-77777.example', 'new-alias.example'] });
    for (let i = 0; i < COUNT / BUDGET; i++) await registry.tick();
    expect(fake.calls.readConfig).toBe(1);
    expect(fake.calls.listSiteIds).toBe(0);
    expect(fake.calls.configVersion).toBe(COUNT);
    expect(await route(registry, 'www.shop-77777.example')).toBe('site:site-77777');
    expect(await route(registry, 'new-alias.example')).toBe('redirect:site-77777->www.shop-77777.example');
    // The same entry objects: the index was changed in place for one site, not rebuilt.
    untouched.forEach((h, i) => expect(registry.index.entries.get(h)).toBe(entriesBefore[i]));
  });

  it('a new site folder is found on the next tick by one listing and one read, whatever the sweep position', async () => {
    const fake = countingSource(COUNT);
    const registry = createSiteRegistry({ source: fake.source, sitesDir: '/memory', platformDomain: PLATFORM, rescanIntervalMs: 500, follow: false, sweepBudget: BUDGET });
    await registry.scan();
    await registry.tick();
    fake.reset();
    fake.add('brand-new', { domains: ['brand-new.example'], aliases: [] });
    await registry.tick();
    expect(await route(registry, 'brand-new.example')).toBe('site:brand-new');
    expect(fake.calls.listSiteIds).toBe(1);
    expect(fake.calls.readConfig).toBe(1);
  });

  it('what a request saw updates one site without any file call', async () => {
    const fake = countingSource(COUNT);
    const registry = createSiteRegistry({ source: fake.source, sitesDir: '/memory', platformDomain: PLATFORM, rescanIntervalMs: 500, follow: false, sweepBudget: BUDGET });
    await registry.scan();
    fake.reset();
    registry.observe('site-5', { domains: ['www.shop-5.example'], aliases: ['shop-5.example'] });
    expect(await route(registry, 'shop-5.example')).toBe('redirect:site-5->www.shop-5.example');
    expect(fake.calls).toEqual({ listingVersion: 0, listSiteIds: 0, configVersion: 0, readConfig: 0 });
  });
});

describe('a request for a host nobody claims costs almost nothing (rule 12)', () => {
  const COUNT = 100_000;

  it('10,000 unknown hosts over 5 s cost at most one listing stat per rescan interval, and no site.json stat or read', async () => {
    const fake = countingSource(COUNT);
    let clock = 0;
    const registry = createSiteRegistry({ source: fake.source, sitesDir: '/memory', platformDomain: PLATFORM, rescanIntervalMs: 500, follow: false, now: () => clock });
    await registry.scan();
    await registry.tick();
    fake.reset();
    const answers = new Set<string>();
    for (let i = 0; i < 10_000; i++) {
      clock += 0.5;
      // Random custom names, random labels under the platform domain, invalid labels: every kind of miss.
      const host = [`junk-${i}.example`, `nosuch-${i}.${PLATFORM}`, `a.b.${i}.${PLATFORM}`][i % 3]!;
      answers.add((await registry.resolve(host)).kind);
    }
    expect([...answers]).toEqual(['unknown']);
    expect(fake.calls.configVersion).toBe(0);
    expect(fake.calls.readConfig).toBe(0);
    expect(fake.calls.listSiteIds).toBe(0);
    expect(fake.calls.listingVersion).toBeLessThanOrEqual(5000 / 500 + 1);
  });

  it('still finds a new folder on the first request after the rescan interval: one listing and one read', async () => {
    const fake = countingSource(COUNT);
    let clock = 0;
    const registry = createSiteRegistry({ source: fake.source, sitesDir: '/memory', platformDomain: PLATFORM, rescanIntervalMs: 500, follow: false, now: () => clock });
    await registry.scan();
    await registry.tick();
    fake.reset();
    fake.add('brand-new', { domains: ['brand-new.example'], aliases: [] });
    clock += 500;
    expect(await route(registry, 'brand-new.example')).toBe('unknown'); // lookup alone touches nothing
    expect(await registry.resolve('brand-new.example')).toEqual({ kind: 'site', siteId: 'brand-new', via: 'domain' });
    expect(await registry.resolve(`brand-new.${PLATFORM}`)).toEqual({ kind: 'site', siteId: 'brand-new', via: 'platform' });
    expect(fake.calls).toEqual({ listingVersion: 1, listSiteIds: 1, configVersion: 1, readConfig: 1 });
  });

  it('a new folder goes live within a second on the real follower while unknown hosts flood in', async () => {
    await writeSite('a', { domains: ['a.example'] });
    const registry = createSiteRegistry({ sitesDir, platformDomain: PLATFORM, rescanIntervalMs: 500, followIntervalMs: 500 });
    await registry.scan();
    let flooding = true;
    const flood = (async () => {
      // One request per turn of the event loop, as requests arrive on a server.
      for (let i = 0; flooding; i++) {
        await registry.resolve(`junk-${i}.example`);
        await new Promise((r) => setImmediate(r));
      }
    })();
    try {
      await new Promise((r) => setTimeout(r, 100));
      const started = performance.now();
      await mkdir(join(sitesDir, 'fresh'));
      await writeFile(join(sitesDir, 'fresh', 'site.json'), JSON.stringify({ name: 'fresh', domains: ['fresh.example'] }));
      while ((await registry.resolve('fresh.example')).kind !== 'site') {
        expect(performance.now() - started).toBeLessThan(1000);
        await new Promise((r) => setTimeout(r, 10));
      }
      // A folder created first and given its site.json later is found as fast.
      const second = performance.now();
      await mkdir(join(sitesDir, 'slow'));
      await new Promise((r) => setTimeout(r, 600));
      await writeFile(join(sitesDir, 'slow', 'site.json'), JSON.stringify({ name: 'slow', domains: ['slow.example'] }));
      const written = performance.now();
      while ((await registry.resolve('slow.example')).kind !== 'site') {
        expect(performance.now() - written, `since mkdir: ${Math.round(performance.now() - second)} ms`).toBeLessThan(1000);
        await new Promise((r) => setTimeout(r, 10));
      }
    } finally {
      flooding = false;
      await flood;
      registry.stop();
    }
  });
});

describe('host claims: a custom host stays with the site that already serves it (rule 1)', () => {
  const make = (claims = createMemoryClaimStore(), warnings: Array<Record<string, unknown>> = []) =>
    createSiteRegistry({ sitesDir, platformDomain: PLATFORM, rescanIntervalMs: 60_000, follow: false, claims, onWarning: (_m, d) => warnings.push(d) });

  it.each([
    ['the newcomer sorts first', 'owner-z', 'aaa'],
    ['the newcomer sorts last', 'owner-a', 'zzz'],
  ])('refuses a newcomer when %s, by domain and by alias, and reports it once', async (_name, owner, newcomer) => {
    await writeSite(owner, { domains: ['shop.example'], aliases: ['www.shop.example'] });
    const warnings: Array<Record<string, unknown>> = [];
    const registry = make(undefined, warnings);
    await registry.scan();
    await writeSite(newcomer, { domains: ['shop.example'], aliases: ['www.shop.example'] });
    await registry.tick();
    await registry.tick();
    expect(await route(registry, 'shop.example')).toBe(`site:${owner}`);
    expect(await route(registry, 'www.shop.example')).toBe(`redirect:${owner}->shop.example`);
    expect(registry.conflicts).toEqual([
      { host: 'shop.example', winner: owner, loser: newcomer },
      { host: 'www.shop.example', winner: owner, loser: newcomer },
    ]);
    expect(registry.sites.find((s) => s.id === newcomer)?.refused).toEqual([{ host: 'shop.example', owner }, { host: 'www.shop.example', owner }]);
    expect(warnings).toEqual([
      { host: 'shop.example', winner: owner, loser: newcomer },
      { host: 'www.shop.example', winner: owner, loser: newcomer },
    ]);
  });

  it('keeps the owner after a restart (a new registry over the same records) although both sites list the host at start', async () => {
    await writeSite('zz-owner', { domains: ['shop.example'] });
    const claims = createMemoryClaimStore();
    await make(claims).scan();
    await writeSite('aa-new', { domains: ['shop.example'] });
    const restarted = make(claims);
    await restarted.scan();
    expect(await route(restarted, 'shop.example')).toBe('site:zz-owner');
  });

  it('hands a host to the first newcomer by id on the tick that sees the owner drop it; the old owner is then the newcomer', async () => {
    await writeSite('mid', { domains: ['shop.example'] });
    const registry = make();
    await registry.scan();
    await writeSite('zz-new', { domains: ['shop.example'] });
    await writeSite('aa-new', { domains: ['shop.example'] });
    await registry.tick();
    expect(await route(registry, 'shop.example')).toBe('site:mid');
    await writeSite('mid', { domains: ['mid.example'] });
    await registry.tick();
    expect(await route(registry, 'shop.example')).toBe('site:aa-new');
    await writeSite('mid', { domains: ['mid.example', 'shop.example'] });
    await registry.tick();
    expect(await route(registry, 'shop.example')).toBe('site:aa-new');
    await rm(join(sitesDir, 'aa-new'), { recursive: true });
    await registry.tick();
    await registry.tick();
    // Deleted with its folder: the next claimant by id.
    expect(await route(registry, 'shop.example')).toBe('site:mid');
  });

  it('two registries sharing one file of records agree, whichever sees a claim first', async () => {
    const stateDir = join(root, 'state');
    const store = () => createFileClaimStore({ dir: stateDir, sitesDir });
    await writeSite('p-two', { domains: ['race.example'] });
    await writeSite('p-one', { domains: ['race.example'] });
    const a = make(store());
    const b = make(store());
    await Promise.all([a.scan(), b.scan()]);
    const winner = await route(a, 'race.example');
    expect(await route(b, 'race.example')).toBe(winner);
    // B sees the owner drop the host and hands it over; A learns it from the records on its next tick.
    const owner = winner.slice(5);
    await writeSite(owner, { domains: [] });
    await b.tick();
    await a.tick();
    const other = owner === 'p-one' ? 'p-two' : 'p-one';
    expect(await route(b, 'race.example')).toBe(`site:${other}`);
    expect(await route(a, 'race.example')).toBe(`site:${other}`);
  });

  it('never indexes a name no site may claim, even from a site.json that does not validate', async () => {
    await writeSite('victim', { domains: ['victim.example'] });
    await writeSite('aaa', { domains: [`victim.${PLATFORM}`, PLATFORM, 'localhost', 'x.localhost', '127.0.0.1', '[::1]', '2130706433', 'ok.example'], aliases: [`www.${PLATFORM}`] });
    await mkdir(join(sitesDir, 'broken'));
    await writeFile(join(sitesDir, 'broken', 'site.json'), JSON.stringify({ name: 7, domains: [`victim.${PLATFORM}`, '10.0.0.1'] }));
    const registry = make();
    await registry.scan();
    expect([...registry.index.entries.keys()].sort()).toEqual(['ok.example', 'victim.example']);
    expect(await route(registry, `victim.${PLATFORM}`)).toBe('site:victim');
    registry.observe('aaa', { domains: [`victim.${PLATFORM}`, 'ok.example'], aliases: ['127.0.0.1'] });
    expect(await route(registry, `victim.${PLATFORM}`)).toBe('site:victim');
    expect(registry.index.entries.has('127.0.0.1')).toBe(false);
  });
});
