import type { HostIndex } from './host-index.ts';

/** What a normalised hostname means to the platform. */
export type HostResolution =
  | { kind: 'site'; siteId: string; via: 'domain' | 'platform' }
  | { kind: 'redirect'; siteId: string; toHost: string }
  | { kind: 'unknown' };

/** A site id is one DNS label, so that `<id>.<platform domain>` is always a valid host name. */
export const SITE_ID_PATTERN = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

export function isValidSiteId(id: string): boolean {
  return SITE_ID_PATTERN.test(id);
}

/**
 * Pure host → tenant resolution, in the documented order: a site's exact domains, then its aliases
 * (redirect to the primary domain), then `<site-id>.<platform domain>`. `siteExists` is asked only
 * for the wildcard case so a brand-new folder is reachable before any index refresh.
 */
export function resolveHost(
  hostname: string,
  index: HostIndex,
  platformDomain: string,
  siteExists: (id: string) => boolean,
): HostResolution {
  const entry = index.entries.get(hostname);
  if (entry?.kind === 'domain') return { kind: 'site', siteId: entry.siteId, via: 'domain' };
  if (entry?.kind === 'alias') {
    // A site with aliases but no custom domain redirects to its platform subdomain.
    const primary = index.primaries.get(entry.siteId) ?? `${entry.siteId}.${platformDomain}`;
    if (primary !== hostname) return { kind: 'redirect', siteId: entry.siteId, toHost: primary };
  }
  const suffix = `.${platformDomain}`;
  if (hostname.endsWith(suffix)) {
    const label = hostname.slice(0, -suffix.length);
    if (isValidSiteId(label) && siteExists(label)) return { kind: 'site', siteId: label, via: 'platform' };
  }
  return { kind: 'unknown' };
}
