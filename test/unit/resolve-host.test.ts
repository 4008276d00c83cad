import { describe, it, expect } from 'vitest';
import { buildHostIndex, createHostIndex, type SiteHosts } from '../../astro-multi-tenant/server/tenant/host-index.ts';
import { isValidSiteId, resolveHost } from '../../astro-multi-tenant/server/tenant/resolve-host.ts';

const PLATFORM = 'sites.example';

const SITES: SiteHosts[] = [
  { id: 'acme', domains: ['acme.example', 'acme.test'], aliases: ['www.acme.example', 'acme-tools.example'] },
  { id: 'blog', domains: [], aliases: ['old-blog.example'] },
  { id: 'docs', domains: ['docs.example'], aliases: [] },
];

function resolver(sites: SiteHosts[], existing: Iterable<string> = sites.map((s) => s.id)) {
  const index = buildHostIndex(sites);
  const ids = new Set(existing);
  return (host: string) => resolveHost(host, index, PLATFORM, (id) => ids.has(id));
}

describe('resolveHost', () => {
  const resolve = resolver(SITES);

  it('serves a site on its exact custom domain', () => {
    expect(resolve('acme.example')).toEqual({ kind: 'site', siteId: 'acme', via: 'domain' });
    expect(resolve('docs.example')).toEqual({ kind: 'site', siteId: 'docs', via: 'domain' });
  });

  it('serves a site on every one of its domains, not only the primary', () => {
    expect(resolve('acme.test')).toEqual({ kind: 'site', siteId: 'acme', via: 'domain' });
  });

  it('maps an alias to a redirect to the primary domain, keeping nothing else', () => {
    expect(resolve('www.acme.example')).toEqual({ kind: 'redirect', siteId: 'acme', toHost: 'acme.example' });
    expect(resolve('acme-tools.example')).toEqual({ kind: 'redirect', siteId: 'acme', toHost: 'acme.example' });
  });

  it('redirects the alias of a wildcard-only site to its platform subdomain', () => {
    expect(resolve('old-blog.example')).toEqual({ kind: 'redirect', siteId: 'blog', toHost: `blog.${PLATFORM}` });
  });

  it('serves every site at <site-id>.<platform domain>', () => {
    expect(resolve(`blog.${PLATFORM}`)).toEqual({ kind: 'site', siteId: 'blog', via: 'platform' });
    expect(resolve(`acme.${PLATFORM}`)).toEqual({ kind: 'site', siteId: 'acme', via: 'platform' });
  });

  it('answers unknown for a host no site claims', () => {
    expect(resolve('nobody.example')).toEqual({ kind: 'unknown' });
  });

  it('answers unknown for a platform subdomain whose site does not exist', () => {
    expect(resolve(`ghost.${PLATFORM}`)).toEqual({ kind: 'unknown' });
  });

  it('answers unknown for the bare platform domain', () => {
    expect(resolve(PLATFORM)).toEqual({ kind: 'unknown' });
  });

  it('never treats a deeper subdomain of the platform domain as a site id', () => {
    expect(resolve(`x.blog.${PLATFORM}`)).toEqual({ kind: 'unknown' });
  });

  it('does not match a host that merely ends with the platform domain text', () => {
    expect(resolve(`blog${PLATFORM}`)).toEqual({ kind: 'unknown' });
    expect(resolve(`blog.evil-${PLATFORM}`)).toEqual({ kind: 'unknown' });
  });

  it('serves <id>.<platform domain> to site <id> alone, even from an index in which another site lists it', () => {
    for (const victim of ['blog', 'acme', 'docs']) {
      for (const list of ['domains', 'aliases'] as const) {
        const takeover = { id: 'aaa-takeover', domains: [] as string[], aliases: [] as string[], [list]: [`${victim}.${PLATFORM}`] };
        const resolveWithClaim = resolver([...SITES, takeover]);
        expect(resolveWithClaim(`${victim}.${PLATFORM}`), `${victim} via ${list}`).toEqual({ kind: 'site', siteId: victim, via: 'platform' });
      }
    }
  });

  it('asks whether a site folder exists only for the wildcard case', () => {
    const asked: string[] = [];
    const index = buildHostIndex(SITES);
    const exists = (id: string) => {
      asked.push(id);
      return id === 'brand-new';
    };
    expect(resolveHost('acme.example', index, PLATFORM, exists).kind).toBe('site');
    expect(resolveHost('www.acme.example', index, PLATFORM, exists).kind).toBe('redirect');
    expect(asked).toEqual([]);
    // A brand-new folder is reachable before the index knows about it.
    expect(resolveHost(`brand-new.${PLATFORM}`, index, PLATFORM, exists)).toEqual({ kind: 'site', siteId: 'brand-new', via: 'platform' });
    expect(asked).toEqual(['brand-new']);
  });

  it('serves, rather than redirecting to itself, an alias that names the site\'s own platform subdomain', () => {
    const resolveSelf = resolver([{ id: 'blog', domains: [], aliases: [`blog.${PLATFORM}`] }]);
    expect(resolveSelf(`blog.${PLATFORM}`)).toEqual({ kind: 'site', siteId: 'blog', via: 'platform' });
  });

  it('serves a host a site lists both as a domain and as an alias instead of redirecting it', () => {
    const index = buildHostIndex([{ id: 'acme', domains: ['acme.example', 'shop.example'], aliases: ['shop.example'] }]);
    expect(index.conflicts).toEqual([]);
    expect(resolveHost('shop.example', index, PLATFORM, () => false)).toEqual({ kind: 'site', siteId: 'acme', via: 'domain' });
  });
});

describe('buildHostIndex', () => {
  it('records the first domain of each site as its primary', () => {
    const index = buildHostIndex(SITES);
    expect(index.primaries.get('acme')).toBe('acme.example');
    expect(index.primaries.get('docs')).toBe('docs.example');
    expect(index.primaries.has('blog')).toBe(false);
  });

  it('gives a host claimed by two sites to the first by id, whatever the listing order, and reports the conflict', () => {
    const zeta: SiteHosts = { id: 'zeta', domains: ['shared.example'], aliases: [] };
    const alpha: SiteHosts = { id: 'alpha', domains: ['shared.example'], aliases: [] };
    for (const order of [[zeta, alpha], [alpha, zeta]]) {
      const index = buildHostIndex(order);
      expect(index.entries.get('shared.example')).toEqual({ siteId: 'alpha', kind: 'domain' });
      expect(index.conflicts).toEqual([{ host: 'shared.example', winner: 'alpha', loser: 'zeta' }]);
    }
  });

  it('does not let a later site steal a host that an earlier site uses as an alias', () => {
    const index = buildHostIndex([
      { id: 'b-site', domains: ['www.a.example'], aliases: [] },
      { id: 'a-site', domains: ['a.example'], aliases: ['www.a.example'] },
    ]);
    expect(index.entries.get('www.a.example')).toEqual({ siteId: 'a-site', kind: 'alias' });
    expect(index.conflicts).toEqual([{ host: 'www.a.example', winner: 'a-site', loser: 'b-site' }]);
  });

  it('reports no conflicts when every host has one owner', () => {
    expect(buildHostIndex(SITES).conflicts).toEqual([]);
  });
});

describe('createHostIndex: changing one site at a time', () => {
  const alpha: SiteHosts = { id: 'alpha', domains: ['shared.example'], aliases: [] };
  const zeta: SiteHosts = { id: 'zeta', domains: ['zeta.example', 'shared.example'], aliases: [] };

  it('ends in the same index as building it at once, whatever order the sites are set in', () => {
    const built = buildHostIndex(SITES);
    for (const order of [SITES, [...SITES].reverse()]) {
      const index = createHostIndex();
      for (const site of order) index.set(site);
      expect([...index.entries].sort()).toEqual([...built.entries].sort());
      expect([...index.primaries].sort()).toEqual([...built.primaries].sort());
    }
  });

  it('gives a contested host to the next claimant by id when its owner drops it or is removed', () => {
    for (const drop of ['edit', 'remove'] as const) {
      const index = createHostIndex([zeta, alpha]);
      expect(index.entries.get('shared.example')?.siteId).toBe('alpha');
      expect(index.conflicts).toEqual([{ host: 'shared.example', winner: 'alpha', loser: 'zeta' }]);
      if (drop === 'edit') index.set({ id: 'alpha', domains: ['alpha.example'], aliases: [] });
      else index.remove('alpha');
      expect(index.entries.get('shared.example')).toEqual({ siteId: 'zeta', kind: 'domain' });
      expect(index.conflicts).toEqual([]);
    }
  });

  it('turns a domain into an alias (and back) in place when a site swaps them', () => {
    const index = createHostIndex([{ id: 'qa', domains: ['qa.example'], aliases: ['www.qa.example'] }]);
    index.set({ id: 'qa', domains: ['www.qa.example'], aliases: ['qa.example'] });
    expect(index.entries.get('www.qa.example')).toEqual({ siteId: 'qa', kind: 'domain' });
    expect(index.entries.get('qa.example')).toEqual({ siteId: 'qa', kind: 'alias' });
    expect(index.primaries.get('qa')).toBe('www.qa.example');
  });

  it('forgets every host and the primary of a removed site, and says when nothing changed', () => {
    const index = createHostIndex(SITES);
    expect(index.set({ ...SITES[0]! })).toBe(false);
    expect(index.remove('acme')).toBe(true);
    expect(index.remove('acme')).toBe(false);
    for (const host of ['acme.example', 'acme.test', 'www.acme.example', 'acme-tools.example']) expect(index.entries.has(host)).toBe(false);
    expect(index.primaries.has('acme')).toBe(false);
    expect(index.entries.get('docs.example')?.siteId).toBe('docs');
  });
});

describe('isValidSiteId', () => {
  it.each(['a', 'acme', 'my-site', 'site2', 'a'.repeat(63)])('accepts %j as a site id', (id) => {
    expect(isValidSiteId(id)).toBe(true);
  });

  it.each(['', 'Acme', '-site', 'site-', 'my_site', 'a.b', 'a'.repeat(64), 'café'])('refuses %j as a site id', (id) => {
    expect(isValidSiteId(id)).toBe(false);
  });
});

describe('an index of 10,000 sites', () => {
  const COUNT = 10_000;
  const sites: SiteHosts[] = Array.from({ length: COUNT }, (_, i) => ({
    id: `site-${i}`,
    domains: i % 3 === 0 ? [] : [`shop-${i}.example`, `shop-${i}.test`],
    aliases: [`www.shop-${i}.example`],
  }));
  const index = buildHostIndex(sites);
  const ids = new Set(sites.map((s) => s.id));
  const exists = (id: string) => ids.has(id);

  it('indexes every domain and alias without conflicts', () => {
    const wildcardOnly = Math.ceil(COUNT / 3);
    expect(index.conflicts).toEqual([]);
    expect(index.entries.size).toBe((COUNT - wildcardOnly) * 2 + COUNT);
    expect(index.primaries.size).toBe(COUNT - wildcardOnly);
  });

  it('resolves every site\'s domains, alias and platform subdomain to that site and no other', () => {
    const wrong: string[] = [];
    for (const site of sites) {
      const primary = site.domains[0] ?? `${site.id}.${PLATFORM}`;
      for (const domain of site.domains) {
        const r = resolveHost(domain, index, PLATFORM, exists);
        if (r.kind !== 'site' || r.siteId !== site.id || r.via !== 'domain') wrong.push(domain);
      }
      for (const alias of site.aliases) {
        const r = resolveHost(alias, index, PLATFORM, exists);
        if (r.kind !== 'redirect' || r.siteId !== site.id || r.toHost !== primary) wrong.push(alias);
      }
      const sub = `${site.id}.${PLATFORM}`;
      const r = resolveHost(sub, index, PLATFORM, exists);
      if (r.kind !== 'site' || r.siteId !== site.id || r.via !== 'platform') wrong.push(sub);
    }
    expect(wrong).toEqual([]);
  });

  it('still answers unknown for hosts just outside the generated range', () => {
    expect(resolveHost(`shop-${COUNT}.example`, index, PLATFORM, exists)).toEqual({ kind: 'unknown' });
    expect(resolveHost(`site-${COUNT}.${PLATFORM}`, index, PLATFORM, exists)).toEqual({ kind: 'unknown' });
  });
});
