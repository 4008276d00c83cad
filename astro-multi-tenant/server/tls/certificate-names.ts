import { hostClaimProblem } from '../tenant/host-rules.ts';

/**
 * A-label host names a public CA can issue for: LDH labels of 1..63, at least two labels, and at
 * most 251 characters (DNS allows 253, but `<host>.crt` must fit a 255-byte file name in CERTS_DIR,
 * where nginx reads it: a longer name's certificate could never be served).
 */
const ISSUABLE = /^(?=.{1,251}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

/** Whether ACME may be asked for `host` at all: a plain domain name (no wildcard, IP, port or single label) that no rule reserves. Pure. */
export function isIssuableName(host: string, platformDomain: string): boolean {
  return ISSUABLE.test(host) && hostClaimProblem(host, platformDomain) === undefined;
}

export interface CertificateNamesInput {
  /** Every host in the host index with the site it routes to: `[host, siteId]` (domains and aliases; platform subdomains may be included and are skipped). */
  hosts: Iterable<readonly [string, string]>;
  platformDomain: string;
  /**
   * DOMAIN_VERIFICATION=dns: whether `site` is served on `host` now (verified, or failing within its
   * grace period). Undefined when verification is off: the operator wrote every site.json, so every
   * listed host is wanted.
   */
  isServed?: (site: string, host: string) => boolean;
}

/**
 * Which hosts get a certificate, each with its site: the custom domains and aliases (aliases too,
 * so their redirect works over HTTPS) that are served, never `<id>.PLATFORM_DOMAIN` or anything
 * under the platform domain (the operator's wildcard certificate covers those, by DNS-01), nor
 * loopback names and IP literals. Pure.
 */
export function certificateNames(input: CertificateNamesInput): Map<string, string> {
  const out = new Map<string, string>();
  for (const [host, site] of input.hosts) {
    if (!isIssuableName(host, input.platformDomain)) continue;
    if (input.isServed && !input.isServed(site, host)) continue;
    out.set(host, site);
  }
  return out;
}
