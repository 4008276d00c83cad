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
 * Pure host → tenant resolution. `<site-id>.<platform domain>` of an existing site is that site's
 * alone, whatever the index holds (no site may list a name under the platform domain, see
 * host-rules.ts; this holds even for an index built from unchecked input). Other hosts, in the
 * documented order: a site's exact domains, then its aliases (redirect to the primary domain).
 * `siteExists` is asked only for the platform subdomain, so a brand-new folder is reachable before
 * any index refresh.
 */
export function resolveHost(
  hostname: string,
  index: HostIndex,
  platformDomain: string,
  siteExists: (id: string) => boolean,
): HostResolution {
  const suffix = `.${platformDomain}`;
  if (hostname.endsWith(suffix)) {
    const label = hostname.slice(0, -suffix.length);
    if (isValidSiteId(label) && siteExists(label)) return { kind: 'site', siteId: label, via: 'platform' };
  }
  const entry = index.entries.get(hostname);
  if (entry?.kind === 'domain') return { kind: 'site', siteId: entry.siteId, via: 'domain' };
  if (entry?.kind === 'alias') {
    // A site with aliases but no custom domain redirects to its platform subdomain.
    const primary = index.primaries.get(entry.siteId) ?? `${entry.siteId}.${platformDomain}`;
    if (primary !== hostname) return { kind: 'redirect', siteId: entry.siteId, toHost: primary };
  }
  return { kind: 'unknown' };
}
