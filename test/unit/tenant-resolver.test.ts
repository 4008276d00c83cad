import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSiteRegistry } from '../../astro-multi-tenant/server/tenant/registry.ts';
import { createTenantResolver, type TenantResolution } from '../../astro-multi-tenant/server/tenant/tenant-resolver.ts';
import { createContentCache } from '../../astro-multi-tenant/server/sites/content-cache.ts';
import { createSiteLoader } from '../../astro-multi-tenant/server/sites/loader.ts';

const PLATFORM = 'sites.example';

let root: string;
let sitesDir: string;

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'amt-resolver-'));
  sitesDir = join(root, 'sites');
  await mkdir(sitesDir);
  await mkdir(join(root, 'css'));
});

afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

async function writeSite(id: string, hosts: { domains?: string[]; aliases?: string[] }) {
  await mkdir(join(sitesDir, id), { recursive: true });
  await writeFile(join(sitesDir, id, 'site.json'), JSON.stringify({ name: id, domains: hosts.domains ?? [], aliases: hosts.aliases ?? [] }));
}

/**
 * A resolver over real files whose follower never runs: whatever it gets right after an edit, it
 * got from the request itself. The content cache re-stats on every look (CONTENT_CHECK_MS = 0),
 * and the registry's clock has moved past its rescan gap, so no test waits.
 */
async function resolverFor() {
  let clock = 0;
  const registry = createSiteRegistry({ sitesDir, platformDomain: PLATFORM, rescanIntervalMs: 500, follow: false, now: () => clock });
  await registry.scan();
  clock += 10_000;
  const cache = createContentCache({ maxEntries: 100, maxBytes: 1 << 20, checkIntervalMs: 0 });
  const resolve = createTenantResolver({ registry, loadSite: createSiteLoader({ sitesDir, cssDir: join(root, 'css'), cache }) });
  return { registry, resolve };
}

function short(r: TenantResolution): string {
  if (r.kind === 'unknown') return 'unknown';
  if (r.kind === 'redirect') return `redirect:${r.siteId}->${r.toHost}`;
  return `${r.state.ok ? 'site' : 'unavailable'}:${r.siteId}`;
}

async function routes(resolve: (h: string) => Promise<TenantResolution>, hosts: string[]): Promise<Record<string, string>> {
  return Object.fromEntries(await Promise.all(hosts.map(async (h) => [h, short(await resolve(h))])));
}

describe('the tenant resolver decides from the site\'s current config, not from the index', () => {
  it('follows a domain↔alias swap on the very next request, in both directions', async () => {
    await writeSite('qa', { domains: ['qa.example'], aliases: ['www.qa.example'] });
    const { resolve } = await resolverFor();
    expect(await routes(resolve, ['qa.example', 'www.qa.example'])).toEqual({ 'qa.example': 'site:qa', 'www.qa.example': 'redirect:qa->qa.example' });
    await writeSite('qa', { domains: ['www.qa.example'], aliases: ['qa.example'] });
    expect(await routes(resolve, ['www.qa.example', 'qa.example'])).toEqual({ 'www.qa.example': 'site:qa', 'qa.example': 'redirect:qa->www.qa.example' });
  });

  it('redirects an alias to the current primary domain when the primary changes', async () => {
    await writeSite('a', { domains: ['one.example', 'two.example'], aliases: ['www.a.example'] });
    const { resolve } = await resolverFor();
    expect(short(await resolve('www.a.example'))).toBe('redirect:a->one.example');
    await writeSite('a', { domains: ['two.example', 'one.example'], aliases: ['www.a.example'] });
    expect(short(await resolve('www.a.example'))).toBe('redirect:a->two.example');
  });

  it('redirects an alias of a site without domains to its platform subdomain, and serves that subdomain', async () => {
    await writeSite('blog', { aliases: ['old-blog.example'] });
    const { resolve } = await resolverFor();
    expect(await routes(resolve, ['old-blog.example', `blog.${PLATFORM}`])).toEqual({ 'old-blog.example': `redirect:blog->blog.${PLATFORM}`, [`blog.${PLATFORM}`]: 'site:blog' });
  });

  it('answers unknown for a removed domain and a removed alias at once', async () => {
    await writeSite('a', { domains: ['a.example', 'old.example'], aliases: ['www.old.example'] });
    const { resolve } = await resolverFor();
    await writeSite('a', { domains: ['a.example'] });
    expect(await routes(resolve, ['old.example', 'www.old.example', 'a.example'])).toEqual({ 'old.example': 'unknown', 'www.old.example': 'unknown', 'a.example': 'site:a' });
  });

  it('stops sending a domain to site A on the first request after A dropped it, and sends it to B once the follower read B', async () => {
    await writeSite('a', { domains: ['a.example', 'shop.example'] });
    await writeSite('b', { domains: ['b.example'] });
    const { registry, resolve } = await resolverFor();
    expect(short(await resolve('shop.example'))).toBe('site:a');
    await writeSite('a', { domains: ['a.example'] });
    await writeSite('b', { domains: ['b.example', 'shop.example'] });
    // Learning that B claims it needs a stat of B's site.json: the follower's, not a pass per request.
    expect(short(await resolve('shop.example'))).not.toBe('site:a');
    await registry.tick();
    expect(short(await resolve('shop.example'))).toBe('site:b');
  });

  it('finds an alias added to an existing site on the next follower tick', async () => {
    await writeSite('a', { domains: ['a.example'] });
    const { registry, resolve } = await resolverFor();
    await writeSite('a', { domains: ['a.example'], aliases: ['www.a.example'] });
    await registry.tick();
    expect(short(await resolve('www.a.example'))).toBe('redirect:a->a.example');
  });

  it('answers a site whose site.json stops parsing as unavailable (503) on every host it had', async () => {
    await writeSite('a', { domains: ['a.example'], aliases: ['www.a.example'] });
    const { resolve } = await resolverFor();
    await writeFile(join(sitesDir, 'a', 'site.json'), '{ "name": "a", "domains": [');
    expect(await routes(resolve, ['a.example', 'www.a.example', `a.${PLATFORM}`])).toEqual({ 'a.example': 'unavailable:a', 'www.a.example': 'unavailable:a', [`a.${PLATFORM}`]: 'unavailable:a' });
  });

  it('answers unknown on every host of a site whose folder was deleted', async () => {
    await writeSite('a', { domains: ['a.example'], aliases: ['www.a.example'] });
    const { resolve } = await resolverFor();
    expect(short(await resolve('a.example'))).toBe('site:a');
    await rm(join(sitesDir, 'a'), { recursive: true });
    expect(await routes(resolve, ['a.example', 'www.a.example', `a.${PLATFORM}`])).toEqual({ 'a.example': 'unknown', 'www.a.example': 'unknown', [`a.${PLATFORM}`]: 'unknown' });
  });

  it('reports how long loading the site took, in milliseconds', async () => {
    await writeSite('a', { domains: ['a.example'] });
    const { resolve } = await resolverFor();
    const r = await resolve('a.example');
    expect(r.kind).toBe('site');
    if (r.kind === 'site') {
      expect(r.loadMs).toBeGreaterThanOrEqual(0);
      expect(r.loadMs).toBeLessThan(10_000);
    }
  });

  it('hands what it saw back to the index, so the index agrees with the config after one request', async () => {
    await writeSite('qa', { domains: ['qa.example'], aliases: ['www.qa.example'] });
    const { registry, resolve } = await resolverFor();
    await writeSite('qa', { domains: ['www.qa.example'], aliases: ['qa.example'] });
    await resolve('qa.example');
    expect(registry.index.entries.get('www.qa.example')).toEqual({ siteId: 'qa', kind: 'domain' });
    expect(registry.index.entries.get('qa.example')).toEqual({ siteId: 'qa', kind: 'alias' });
  });
});
