/**
 * The host index: hostname → site, built from every site's `domains` and `aliases`. A Map keeps a
 * lookup O(1) whether there are four sites or a hundred thousand, and a change to one site touches
 * only that site's hosts (and the sites contesting them), never the whole index.
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
  /**
   * The site that keeps the host: its recorded owner (tenant/host-claims.ts), or the first by id
   * while no owner is recorded. A recorded owner keeps the host even while this index does not see
   * it claiming (a worker that has not read its latest edit yet): then nobody is served there.
   */
  winner: string;
  /** A site whose claim is refused. */
  loser: string;
}

export interface HostIndex {
  readonly entries: ReadonlyMap<string, HostEntry>;
  readonly primaries: ReadonlyMap<string, string>;
  readonly conflicts: readonly HostConflict[];
}

export interface MutableHostIndex extends HostIndex {
  /** What the index holds for a site, if anything. */
  site(id: string): SiteHosts | undefined;
  readonly sites: ReadonlyMap<string, SiteHosts>;
  /**
   * Replaces what a site claims. Cost: O(hosts it claimed before and now, times the sites claiming
   * each of those hosts). Returns false when nothing changed.
   */
  set(site: SiteHosts): boolean;
  /** Drops a site and every claim it made; a host it shared passes to the next claimant by id. */
  remove(id: string): boolean;
  /** Every site claiming a host, with how; undefined when none does. */
  claimants(host: string): ReadonlyMap<string, HostEntry['kind']> | undefined;
  /** Decides a host again (after its recorded owner changed). */
  resettle(host: string): void;
  /**
   * Hosts whose claimants changed since the last call, each with the sites that claimed it before
   * the first of those changes; clears the list. The registry settles ownership records from it.
   */
  drainTouched(): Map<string, ReadonlySet<string>>;
}

export interface HostIndexOptions {
  /**
   * The site recorded as the owner of a host, if any (tenant/host-claims.ts). Default: none, and
   * the first claimant by id keeps a contested host.
   */
  ownerOf?: (host: string) => string | undefined;
}

const byId = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

function sameHosts(a: SiteHosts, b: SiteHosts): boolean {
  const eq = (x: readonly string[], y: readonly string[]) => x.length === y.length && x.every((h, i) => h === y[i]);
  return eq(a.domains, b.domains) && eq(a.aliases, b.aliases);
}

/**
 * An index that can change one site at a time. When two sites claim one host, the recorded owner
 * keeps it (`ownerOf`: the site that already served it, see tenant/host-claims.ts); with no owner
 * recorded, the first by id, whatever order they were added in, so the outcome never depends on
 * directory listing or edit order. The conflict is reported rather than silently resolved. A site
 * that lists a host both as a domain and as an alias is served there (domain wins within one site).
 */
export function createHostIndex(initial: Iterable<SiteHosts> = [], options: HostIndexOptions = {}): MutableHostIndex {
  const ownerOf = options.ownerOf ?? (() => undefined);
  const sites = new Map<string, SiteHosts>();
  /** host → every site claiming it, with how. */
  const claims = new Map<string, Map<string, HostEntry['kind']>>();
  const entries = new Map<string, HostEntry>();
  const primaries = new Map<string, string>();
  /** Hosts with a refused claimant: the only ones a conflict report has to look at. */
  const contested = new Map<string, string>();
  const touched = new Map<string, ReadonlySet<string>>();

  function touch(host: string) {
    if (!touched.has(host)) touched.set(host, new Set(claims.get(host)?.keys() ?? []));
  }

  function settle(host: string) {
    const claimants = claims.get(host);
    if (!claimants || claimants.size === 0) {
      claims.delete(host);
      entries.delete(host);
      contested.delete(host);
      return;
    }
    const owner = ownerOf(host);
    let winner: string | undefined;
    if (owner !== undefined) winner = owner;
    else for (const id of claimants.keys()) if (winner === undefined || id < winner) winner = id;
    const kind = claimants.get(winner!);
    if (kind) entries.set(host, { siteId: winner!, kind });
    else entries.delete(host);
    if (claimants.size > (kind ? 1 : 0)) contested.set(host, winner!);
    else contested.delete(host);
  }

  function claimsOf(site: SiteHosts): Map<string, HostEntry['kind']> {
    const out = new Map<string, HostEntry['kind']>();
    for (const host of site.aliases) out.set(host, 'alias');
    for (const host of site.domains) out.set(host, 'domain');
    return out;
  }

  function remove(id: string): boolean {
    const previous = sites.get(id);
    if (!previous) return false;
    sites.delete(id);
    primaries.delete(id);
    for (const host of claimsOf(previous).keys()) {
      touch(host);
      claims.get(host)?.delete(id);
      settle(host);
    }
    return true;
  }

  function set(site: SiteHosts): boolean {
    const previous = sites.get(site.id);
    if (previous && sameHosts(previous, site)) return false;
    const copy: SiteHosts = { id: site.id, domains: [...site.domains], aliases: [...site.aliases] };
    if (previous) remove(site.id);
    sites.set(site.id, copy);
    if (copy.domains[0]) primaries.set(site.id, copy.domains[0]);
    for (const [host, kind] of claimsOf(copy)) {
      touch(host);
      let claimants = claims.get(host);
      if (!claimants) claims.set(host, (claimants = new Map()));
      claimants.set(site.id, kind);
      settle(host);
    }
    return true;
  }

  for (const site of initial) set(site);

  return {
    entries,
    primaries,
    sites,
    site: (id) => sites.get(id),
    set,
    remove,
    claimants: (host) => claims.get(host),
    resettle: settle,
    drainTouched() {
      const out = new Map(touched);
      touched.clear();
      return out;
    },
    get conflicts(): HostConflict[] {
      const out: HostConflict[] = [];
      for (const [host, winner] of contested) {
        for (const loser of claims.get(host)!.keys()) if (loser !== winner) out.push({ host, winner, loser });
      }
      return out.sort((a, b) => byId(a.loser, b.loser) || byId(a.host, b.host));
    },
  };
}

/** A whole index at once (for `sites check` and tests); the same rules as `createHostIndex`. */
export function buildHostIndex(sites: Iterable<SiteHosts>, options: HostIndexOptions = {}): HostIndex {
  return createHostIndex(sites, options);
}
