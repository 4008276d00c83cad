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
  root = await mkdtemp(join(tmpdir(), 'amt-gate-'));
  sitesDir = join(root, 'sites');
  await mkdir(join(root, 'css'));
  await mkdir(join(sitesDir, 'shop'), { recursive: true });
  await writeFile(join(sitesDir, 'shop', 'site.json'), JSON.stringify({ name: 'shop', domains: ['shop.example', 'shop.example.org'], aliases: ['www.shop.example', `shop.${PLATFORM}`] }));
});

afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

/** A resolver with a verifier that allows exactly `verified` (host list). */
async function resolverWith(verified: string[]) {
  let clock = 0;
  const registry = createSiteRegistry({ sitesDir, platformDomain: PLATFORM, rescanIntervalMs: 500, follow: false, now: () => clock });
  await registry.scan();
  clock += 10_000;
  const cache = createContentCache({ maxEntries: 100, maxBytes: 1 << 20, checkIntervalMs: 0 });
  const asked: string[] = [];
  const resolve = createTenantResolver({
    registry,
    loadSite: createSiteLoader({ sitesDir, cssDir: join(root, 'css'), cache }),
    verifier: { allows: (site, host) => (asked.push(host), verified.includes(host) && site === 'shop') },
  });
  return { resolve, asked };
}

const short = (r: TenantResolution) => (r.kind === 'unknown' ? 'unknown' : r.kind === 'redirect' ? `redirect->${r.toHost}` : `site:${r.siteId}`);
const HOSTS = ['shop.example', 'shop.example.org', 'www.shop.example', `shop.${PLATFORM}`];

async function routes(verified: string[]) {
  const { resolve, asked } = await resolverWith(verified);
  const out: Record<string, string> = {};
  for (const h of HOSTS) out[h] = short(await resolve(h));
  return { out, asked };
}

describe('with domain verification, the resolver serves a custom host only once it is verified for the site', () => {
  it('answers pending domains and aliases like unknown hosts, and always serves the platform subdomain without asking', async () => {
    const { out, asked } = await routes([]);
    expect(out).toEqual({ 'shop.example': 'unknown', 'shop.example.org': 'unknown', 'www.shop.example': 'unknown', [`shop.${PLATFORM}`]: 'site:shop' });
    expect(asked).not.toContain(`shop.${PLATFORM}`);
  });

  it('serves a verified domain, and redirects a verified alias (and the platform subdomain listed as an alias) to the first verified domain', async () => {
    expect((await routes(['shop.example.org', 'www.shop.example'])).out).toEqual({
      'shop.example': 'unknown',
      'shop.example.org': 'site:shop',
      'www.shop.example': 'redirect->shop.example.org',
      [`shop.${PLATFORM}`]: 'redirect->shop.example.org',
    });
  });

  it('redirects a verified alias to the platform subdomain while no domain is verified', async () => {
    expect((await routes(['www.shop.example'])).out['www.shop.example']).toBe(`redirect->shop.${PLATFORM}`);
  });

  it('serves everything once all are verified, as without verification', async () => {
    expect((await routes(HOSTS)).out).toEqual({ 'shop.example': 'site:shop', 'shop.example.org': 'site:shop', 'www.shop.example': 'redirect->shop.example', [`shop.${PLATFORM}`]: 'redirect->shop.example' });
  });
});
