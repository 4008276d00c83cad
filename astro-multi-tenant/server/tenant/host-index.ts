/**
 * The host index: hostname → site, built from every site's `domains` and `aliases`. A Map keeps a
 * lookup O(1) whether there are four sites or forty thousand.
 */
export interface SiteHosts {
  id: string;
  domains: readonly string[];
  aliases: readonly string[];
}

export interface HostEntry {
  siteId: string;
  /** `domain`: serve here. `alias`: redirect to the site's primary domain. */
  kind: 'domain' | 'alias';
}

export interface HostConflict {
  host: string;
  /** The site that keeps the host (first by id). */
  winner: string;
  loser: string;
}

export interface HostIndex {
  readonly entries: ReadonlyMap<string, HostEntry>;
  readonly primaries: ReadonlyMap<string, string>;
  readonly conflicts: readonly HostConflict[];
}

/**
 * Sites are applied in id order so that when two folders claim one host the outcome does not depend
 * on directory listing order; the conflict is reported rather than silently resolved.
 */
export function buildHostIndex(sites: Iterable<SiteHosts>): HostIndex {
  const entries = new Map<string, HostEntry>();
  const primaries = new Map<string, string>();
  const conflicts: HostConflict[] = [];
  const sorted = [...sites].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  for (const site of sorted) {
    if (site.domains[0]) primaries.set(site.id, site.domains[0]);
    const claim = (host: string, kind: HostEntry['kind']) => {
      const existing = entries.get(host);
      if (existing && existing.siteId !== site.id) {
        conflicts.push({ host, winner: existing.siteId, loser: site.id });
        return;
      }
      if (!existing || (existing.kind === 'alias' && kind === 'domain')) entries.set(host, { siteId: site.id, kind });
    };
    for (const host of site.domains) claim(host, 'domain');
    for (const host of site.aliases) claim(host, 'alias');
  }
  return { entries, primaries, conflicts };
}
