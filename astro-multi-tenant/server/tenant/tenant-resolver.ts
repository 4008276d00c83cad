import type { SiteLoader, SiteState } from '../sites/loader.ts';
import type { SiteRegistry } from './registry.ts';
import type { HostResolution } from './resolve-host.ts';

/** Which tenant answers a host now. */
export type TenantResolution =
  | { kind: 'unknown' }
  /** An alias: answer 301 to the site's primary domain. */
  | { kind: 'redirect'; siteId: string; toHost: string }
  /** `state` may be `!ok` (a site.json that does not validate): the site answers 503. */
  | { kind: 'site'; siteId: string; state: SiteState; loadMs: number };

export interface TenantResolverDeps {
  /** The host index (a hint) and the rescan for hosts nobody claims. */
  registry: Pick<SiteRegistry, 'resolve' | 'observe' | 'platformDomain'>;
  /** Loads a site through the content cache (its config re-stat'ed at most every CONTENT_CHECK_MS). */
  loadSite: SiteLoader;
  /**
   * DOMAIN_VERIFICATION=dns: whether a site may be served on a custom host (a memory lookup,
   * tenant/domain-verifier.ts). Absent = every listed host is trusted as written.
   */
  verifier?: { allows(siteId: string, host: string): boolean };
}

/** How many index candidates one request may try before answering unknown (each costs a site load). */
const MAX_CANDIDATES = 3;

/**
 * Resolves a normalised hostname (see tenant/normalize-host.ts) to the tenant that serves it now.
 *
 * The host index only proposes a site; the decision comes from that site's current config, which
 * the content cache revalidates at most every CONTENT_CHECK_MS on this worker, so it follows every
 * edit within that time without any rescan:
 * - the host is one of the site's `domains` → serve it;
 * - one of its `aliases` → 301 to its current primary (`domains[0]`, else `<id>.<platformDomain>`);
 * - `<id>.<platformDomain>` of an existing site → serve it (unless the site lists it as an alias
 *   and has a primary domain: then redirect there);
 * - a site.json that does not validate keeps the hosts it had: serve the `!ok` state (503);
 * - otherwise the index was stale for this site: the current config is handed back to the registry
 *   (which fixes that site's entries in place) and the index is asked again, so a domain that moved
 *   to another site is answered by that site, and a removed one by a 404.
 * A host the index does not know asks the registry for a rescan (rate-limited, see registry.ts).
 * With a `verifier`, a custom domain or alias not (yet) verified for the site answers like an
 * unknown host (404: it says nothing about which site lists it), and aliases redirect to the
 * first verified domain, else to the platform subdomain, which needs no check.
 */
export function createTenantResolver(deps: TenantResolverDeps): (hostname: string) => Promise<TenantResolution> {
  const { registry, loadSite, verifier } = deps;
  // `<id>.<platformDomain>` serves site `id`; also where an alias of a site without domains points.
  const suffix = `.${registry.platformDomain}`;

  return async function resolveTenant(hostname) {
    let candidate: HostResolution = await registry.resolve(hostname);
    const tried = new Set<string>();
    while (candidate.kind !== 'unknown' && !tried.has(candidate.siteId) && tried.size < MAX_CANDIDATES) {
      const siteId = candidate.siteId;
      tried.add(siteId);
      const started = performance.now();
      const state = await loadSite(siteId);
      const loadMs = performance.now() - started;
      if (state === null) {
        registry.observe(siteId, null);
      } else if (!state.ok) {
        // No current config to decide from: the hosts it had answer 503 until it is fixed.
        return { kind: 'site', siteId, state, loadMs };
      } else {
        const { domains, aliases } = state.site.config;
        registry.observe(siteId, { domains, aliases });
        const decided = decide(hostname, siteId, domains, aliases);
        if (decided === 'site') return { kind: 'site', siteId, state, loadMs };
        if (decided) return decided;
      }
      // The index pointed at a site that no longer claims this host; it has just been corrected.
      // Asking again may find the site the host moved to, or rescan for it.
      candidate = await registry.resolve(hostname);
    }
    return { kind: 'unknown' };
  };

  function decide(hostname: string, siteId: string, domains: readonly string[], aliases: readonly string[]): 'site' | TenantResolution | undefined {
    const platformHost = `${siteId}${suffix}`;
    const listed = domains.includes(hostname) || aliases.includes(hostname);
    if (verifier && listed && hostname !== platformHost && !verifier.allows(siteId, hostname)) return { kind: 'unknown' };
    if (domains.includes(hostname)) return 'site';
    const primary = (verifier ? domains.find((d) => d === platformHost || verifier.allows(siteId, d)) : domains[0]) ?? platformHost;
    if (aliases.includes(hostname) && primary !== hostname) return { kind: 'redirect', siteId, toHost: primary };
    if (hostname === platformHost) return 'site';
    return undefined;
  }
}
