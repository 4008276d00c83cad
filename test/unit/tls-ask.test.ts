import { describe, expect, it } from 'vitest';
import { createTlsAsk } from '../../astro-multi-tenant/server/ops/tls-ask.ts';
import type { TenantResolution } from '../../astro-multi-tenant/server/tenant/tenant-resolver.ts';
import type { SiteState } from '../../astro-multi-tenant/server/sites/loader.ts';

const valid = { ok: true } as SiteState;
const broken = { ok: false } as SiteState;

/** An ask over a fixed table of what the resolver says, recording the names it was asked. */
function askWith(table: Record<string, TenantResolution>) {
  const asked: string[] = [];
  const ask = createTlsAsk({
    resolveTenant: async (hostname) => {
      asked.push(hostname);
      return table[hostname] ?? { kind: 'unknown' };
    },
  });
  return { ask, asked };
}

describe('the TLS ask (Caddy on_demand_tls)', () => {
  it('says yes for a name a valid site is served on, and for an alias that redirects to one', async () => {
    const { ask } = askWith({
      'shop.test': { kind: 'site', siteId: 'shop', state: valid, loadMs: 0 },
      'www.shop.test': { kind: 'redirect', siteId: 'shop', toHost: 'shop.test' },
    });
    expect(await ask('domain=shop.test')).toEqual({ status: 200, message: 'shop.test is served here' });
    expect((await ask('domain=www.shop.test')).status).toBe(200);
  });

  it('says no for unknown names and for the hosts of a site whose site.json does not validate', async () => {
    const { ask } = askWith({ 'broken.test': { kind: 'site', siteId: 'broken', state: broken, loadMs: 0 } });
    expect(await ask('domain=nobody.test')).toEqual({ status: 404, message: 'nobody.test is not served here' });
    expect((await ask('domain=broken.test')).status).toBe(404);
  });

  it('asks about the normalised name (case, trailing dot, IDN), as a request would', async () => {
    const { ask, asked } = askWith({ 'xn--bckerei-5wa.test': { kind: 'site', siteId: 'b', state: valid, loadMs: 0 } });
    expect((await ask('domain=Shop.Test.')).status).toBe(404);
    expect((await ask(`domain=${encodeURIComponent('bäckerei.test')}`)).status).toBe(200);
    expect(asked).toEqual(['shop.test', 'xn--bckerei-5wa.test']);
  });

  it('answers 400, without asking the resolver, for a missing, repeated, empty or malformed domain or one with a port', async () => {
    const { ask, asked } = askWith({});
    for (const query of ['', 'name=shop.test', 'domain=', 'domain=a.test&domain=b.test', 'domain=a%2Fb.test', 'domain=shop.test:443', `domain=${'a'.repeat(300)}`]) {
      const answer = await ask(query);
      expect(answer.status, query).toBe(400);
      expect(answer.message, query).toMatch(/domain/);
    }
    expect(asked).toEqual([]);
  });
});
