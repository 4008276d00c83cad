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
  registry: SiteRegistry;
  loadSite: SiteLoader;
}

/**
 * Resolves a normalised hostname (see tenant/normalize-host.ts) to the tenant that serves it now.
 * The index is a hint; the site's current config is the truth. If they disagree (a domain moved
 * or was removed), rescan once and resolve again.
 */
export function createTenantResolver(deps: TenantResolverDeps): (hostname: string) => Promise<TenantResolution> {
  return async function resolveTenant(hostname) {
    let resolution = await deps.registry.resolve(hostname);
    let started = performance.now();
    let loaded = resolution.kind === 'unknown' ? null : await deps.loadSite(resolution.siteId);
    let loadMs = performance.now() - started;
    if (isStale(resolution, loaded, hostname)) {
      await deps.registry.requestRescan();
      resolution = await deps.registry.resolve(hostname);
      started = performance.now();
      loaded = resolution.kind === 'unknown' ? null : await deps.loadSite(resolution.siteId);
      loadMs = performance.now() - started;
    }
    if (resolution.kind === 'unknown' || loaded === null) return { kind: 'unknown' };
    if (resolution.kind === 'redirect') return { kind: 'redirect', siteId: resolution.siteId, toHost: resolution.toHost };
    return { kind: 'site', siteId: resolution.siteId, state: loaded, loadMs };
  };
}

/** True when the index sent this host to a site whose current config no longer claims it. */
function isStale(resolution: HostResolution, loaded: SiteState | null, hostname: string): boolean {
  if (resolution.kind === 'unknown') return false;
  if (loaded === null) return true;
  if (!loaded.ok || (resolution.kind === 'site' && resolution.via === 'platform')) return false;
  const { domains, aliases } = loaded.site.config;
  return !domains.includes(hostname) && !aliases.includes(hostname);
}
