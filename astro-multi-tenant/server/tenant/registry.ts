import { createHostIndex, type HostConflict, type HostIndex, type SiteHosts } from './host-index.ts';
import { isValidSiteId, resolveHost, type HostResolution } from './resolve-host.ts';
import { normalizeHost } from './normalize-host.ts';
import { hostClaimProblem } from './host-rules.ts';
import { createMemoryClaimStore, type ClaimStore } from './host-claims.ts';
import { createFolderSiteSource, mapBounded, type SiteSource } from '../sites/site-source.ts';

export interface RegistryOptions {
  /** Where sites come from; default: the folders under `sitesDir`. */
  source?: SiteSource;
  sitesDir: string;
  platformDomain: string;
  /**
   * Minimum time (ms) between two checks of the sites folder's listing triggered by requests for
   * hosts nobody claims (SITES_RESCAN_MS). Such a check is one stat; it never stats every site.
   */
  rescanIntervalMs: number;
  /**
   * Who owns each custom host (tenant/host-claims.ts), shared by every process serving the same
   * sites folder. Default: kept in this process only (tests, one-shot commands).
   */
  claims?: ClaimStore;
  /**
   * How often the background follower checks the listing and sweeps site.json stats (CONTENT_CHECK_MS).
   * Default: rescanIntervalMs. The follower starts after the first scan() unless `follow` is false.
   */
  followIntervalMs?: number;
  follow?: boolean;
  /** site.json stats per follower tick (the rolling sweep). Default 2,000. */
  sweepBudget?: number;
  onWarning?: (message: string, details: Record<string, unknown>) => void;
  now?: () => number;
}

interface Known {
  /** Version of the site.json the hosts were read from; undefined = re-read on the next look. */
  version: string | undefined;
}

/** Default stats per follower tick: a full pass per tick up to 2,000 sites, 4,000 stats/s at 500 ms. */
export const DEFAULT_SWEEP_BUDGET = 500;
const IO_CONCURRENCY = 16;

/**
 * Lenient read of a site.json for routing only: full validation happens when the site loads. Names
 * no site may claim (tenant/host-rules.ts: the platform domain and names under it, loopback names,
 * IP literals) are dropped here, so they never reach the index even while the file is invalid.
 */
export function extractHosts(text: string, platformDomain: string): { domains: string[]; aliases: string[] } | undefined {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof json !== 'object' || json === null) return undefined;
  const pick = (value: unknown) =>
    (Array.isArray(value) ? value : []).flatMap((h) => {
      if (typeof h !== 'string') return [];
      try {
        const n = normalizeHost(h);
        return n.port === undefined && !hostClaimProblem(n.hostname, platformDomain) ? [n.hostname] : [];
      } catch {
        return [];
      }
    });
  const record = json as Record<string, unknown>;
  return { domains: pick(record.domains), aliases: pick(record.aliases) };
}

/**
 * Keeps the host index in step with the site configs, one site at a time, and decides who owns a
 * contested host.
 *
 * Why it is correct within CONTENT_CHECK_MS on every worker and machine, and what it costs:
 *
 * 1. The index is never trusted alone. The tenant resolver (tenant-resolver.ts) confirms every hit
 *    against the site's current config, which the content cache re-stats at most every
 *    CONTENT_CHECK_MS, decides domain/alias/redirect from that config, and hands it back here
 *    (`observe`). So every change to hosts a site already had in the index (a domain↔alias swap,
 *    a removed domain, a new primary, a site.json that stops parsing, a deleted site.json) is
 *    followed by the first request after CONTENT_CHECK_MS, on each worker independently, for O(1)
 *    per request and nothing per interval. Traffic to a site also brings its new hosts in.
 * 2. New, deleted and renamed site folders change the sites folder itself: the follower stats it
 *    once per tick (`listingVersion`) and only when it changed lists it and diffs the ids, reading
 *    the site.json of added folders only. One stat per tick at any number of sites. Folders listed
 *    without a site.json yet are stat'ed every tick, so one that gets its site.json goes live
 *    within a tick too.
 * 3. A host newly claimed by an in-place edit of a site that gets no traffic (an alias added, a
 *    domain moved to an idle site) cannot be seen without a stat of that file: no cheap signal
 *    covers an in-place write made by another machine on a shared volume. The follower stats
 *    `sweepBudget` site.json files per tick round-robin (a full pass per tick up to that many
 *    sites) and reads only files whose stat changed. 500 by default: a profile under load measured
 *    a stat at ~29 µs of CPU, so 2,000 a tick cost ~12 % of a core on an idle worker; 500 keeps it
 *    near 3 % and still covers 1,000 sites a second at the default 500 ms tick. This rolling sweep is the periodic full scan: with N sites every site.json is
 *    re-checked every ceil(N / sweepBudget) ticks.
 * 4. A request for a host nobody claims costs no file call beyond, at most once per
 *    rescanIntervalMs for all such requests together, one stat of the sites folder (read in full
 *    only if it changed). `<label>.<platform domain>` is answered from the listing kept in memory:
 *    a label that names no listed folder is unknown without touching the disk. So a flood of
 *    random Host values costs a few memory lookups each, at any number of sites, while a new
 *    folder is still found by the next listing check (≤ one tick, or the first request after
 *    rescanIntervalMs). A pass over every site's stat runs only at start (`scan`).
 * 5. Contested hosts (host-claims.ts): the recorded owner keeps a host until it drops it. Each
 *    change to who claims a host is settled with the claim store, shared by every process serving
 *    the sites folder: an owner seen dropping the host releases its record, and a host with
 *    claimants and no owner is recorded for the first of them by id, atomically, so concurrent
 *    workers agree on one. Each tick checks the store's version (one stat or one round trip) and
 *    re-reads the records when another process changed them. At start, after the full pass, every
 *    record whose owner no longer lists its host is released, and every claimed host without an
 *    owner is recorded, so the outcome survives restarts and never depends on id order.
 *
 * A change costs one read and O(that site's hosts) index work, never a rebuild: with 100,000 sites
 * the steady cost is one listing stat plus `sweepBudget` stats per tick.
 */
export function createSiteRegistry(options: RegistryOptions) {
  const now = options.now ?? Date.now;
  const source = options.source ?? createFolderSiteSource(options.sitesDir);
  const platformDomain = options.platformDomain;
  const sweepBudget = Math.max(1, options.sweepBudget ?? DEFAULT_SWEEP_BUDGET);
  const followIntervalMs = options.followIntervalMs ?? options.rescanIntervalMs;
  const store = options.claims ?? createMemoryClaimStore();
  /** The claim store's records as last read or written by this process: host → owner. */
  const owners = new Map<string, string>();
  let ownersVersion: string | undefined;
  /** DOMAIN_VERIFICATION=dns: the site a host is verified for (useVerifiedOwners); it outranks the claim records. */
  let verifiedOwner: (host: string) => string | undefined = () => undefined;
  const index = createHostIndex([], {
    ownerOf: (host) => {
      const verified = verifiedOwner(host);
      // Only while it still lists the host: a site that dropped its domain does not keep it from others.
      return verified !== undefined && index.claimants(host)?.has(verified) ? verified : owners.get(host);
    },
  });
  const known = new Map<string, Known>();
  /** Listed ids in listing order, for the round-robin sweep; `listed` is the same as a set. */
  let order: string[] = [];
  let listed = new Set<string>();
  /** Listed folders without a site.json (yet): stat'ed every tick. */
  const pending = new Set<string>();
  let cursor = 0;
  let listing: string | undefined;
  /**
   * File times tick coarsely (a jiffy on Linux): a folder added in the same tick as our last listing
   * leaves the version unchanged. So after any change the listing is read once more, next tick.
   */
  let listingSettled = false;
  let lastListingCheckAt = -Infinity;
  let listingCheck: Promise<void> | undefined;
  let lastScanAt = -Infinity;
  let scanning: Promise<void> | undefined;
  let started = false;
  let ticking: Promise<void> | undefined;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let following = false;
  let settling: Promise<void> = Promise.resolve();
  /** Hosts a failed settlement could not record: tried again with the next one. */
  const unsettled = new Map<string, ReadonlySet<string>>();
  const reportedConflicts = new Set<string>();
  const warned = new Set<string>();

  function reportConflicts() {
    const current = new Set<string>();
    for (const conflict of index.conflicts) {
      const key = `${conflict.host}\0${conflict.loser}\0${conflict.winner}`;
      current.add(key);
      if (reportedConflicts.has(key)) continue;
      reportedConflicts.add(key);
      options.onWarning?.('host already served by another site: the newcomer\'s claim is refused', { ...conflict });
    }
    // A conflict that ended and comes back is reported again.
    for (const key of reportedConflicts) if (!current.has(key)) reportedConflicts.delete(key);
  }

  function warnOnce(message: string, details: Record<string, unknown>) {
    const key = `${message}\0${JSON.stringify(details)}`;
    if (warned.has(key)) return;
    warned.add(key);
    options.onWarning?.(message, details);
  }

  const firstById = (ids: Iterable<string>) => {
    let first: string | undefined;
    for (const id of ids) if (first === undefined || id < first) first = id;
    return first;
  };

  /**
   * Settles the ownership of hosts whose claimants changed (`touched`, with who claimed each
   * before). `full`: this process has a complete, current view (right after the start-up pass), so
   * every record is checked against it. Serialised: one settlement at a time.
   */
  function settleClaims(full = false): Promise<void> {
    const run = async () => {
      const touched = index.drainTouched();
      for (const [host, before] of unsettled) if (!touched.has(host)) touched.set(host, before);
      unsettled.clear();
      const hosts = new Set<string>(touched.keys());
      if (full) for (const host of owners.keys()) hosts.add(host);
      const releases = new Map<string, string>();
      const wanted = new Map<string, string>();
      for (const host of hosts) {
        const claimants = index.claimants(host);
        const owner = owners.get(host);
        let free = owner === undefined;
        // Released only when this process saw the owner drop the host (or, at start, knows every
        // site's current config): a worker that has not read an owner's new claim yet must not
        // hand its host to someone else.
        if (owner !== undefined && !claimants?.has(owner) && (full || touched.get(host)?.has(owner))) {
          releases.set(host, owner);
          free = true;
        }
        if (free && claimants && claimants.size > 0) wanted.set(host, firstById(claimants.keys())!);
      }
      if (releases.size === 0 && wanted.size === 0) {
        for (const host of hosts) index.resettle(host);
        return;
      }
      try {
        if (releases.size > 0) {
          await store.release(releases);
          for (const [host, owner] of releases) if (owners.get(host) === owner) owners.delete(host);
        }
        if (wanted.size > 0) for (const [host, owner] of await store.claim(wanted)) owners.set(host, owner);
      } catch (error) {
        // The index keeps deciding from what it knew; the next settlement (a change or a tick) tries again.
        for (const [host, before] of touched) unsettled.set(host, before);
        warnOnce('cannot record host ownership', { location: store.location, err: (error as Error).message });
      }
      for (const host of hosts) index.resettle(host);
      reportConflicts();
    };
    settling = settling.then(run, run);
    return settling;
  }

  /** Re-reads the claim records when another process changed them (one stat or round trip). */
  async function refreshOwners(force = false): Promise<void> {
    const version = await store.version();
    if (!force && version === ownersVersion) return;
    const records = await store.load();
    ownersVersion = version;
    const changed = new Set<string>();
    for (const [host, owner] of owners) if (records.get(host) !== owner) changed.add(host);
    for (const [host, owner] of records) if (owners.get(host) !== owner) changed.add(host);
    owners.clear();
    for (const [host, owner] of records) owners.set(host, owner);
    for (const host of changed) index.resettle(host);
    if (changed.size > 0) reportConflicts();
  }

  function forget(id: string) {
    known.delete(id);
    if (index.remove(id)) reportConflicts();
  }

  /** Re-reads one site's hosts if its site.json changed since they were read. */
  async function refreshSite(id: string): Promise<void> {
    const entry = known.get(id);
    const version = await source.configVersion(id);
    if (version === null) {
      // A folder without site.json is not a site (yet): it claims no host.
      if (listed.has(id)) pending.add(id);
      forget(id);
      return;
    }
    pending.delete(id);
    if (entry && entry.version === version) return;
    const read = await source.readConfig(id);
    if (read === null) {
      forget(id);
      return;
    }
    const hosts = extractHosts(read.text, platformDomain);
    known.set(id, { version: read.version });
    // A site.json that no longer parses keeps the hosts it had, so the site answers 503 on its own
    // domains (showing the owner something is wrong) instead of vanishing into a 404.
    const previous = index.site(id);
    if (!hosts && previous) return;
    if (index.set({ id, domains: hosts?.domains ?? [], aliases: hosts?.aliases ?? [] })) reportConflicts();
  }

  /** Lists the sites again only if the listing changed (or `force`); reads added sites and returns them. */
  async function syncListing(force: boolean): Promise<ReadonlySet<string>> {
    const version = await source.listingVersion();
    lastListingCheckAt = now();
    if (!force && version === listing && listingSettled) return new Set();
    listingSettled = version === listing;
    const ids = await source.listSiteIds();
    const present = new Set(ids);
    for (const id of [...known.keys()]) if (!present.has(id)) forget(id);
    for (const id of [...pending]) if (!present.has(id)) pending.delete(id);
    const added = ids.filter((id) => !known.has(id) && !pending.has(id));
    order = ids;
    listed = present;
    await mapBounded(added, IO_CONCURRENCY, (id) => refreshSite(id));
    cursor = order.length === 0 ? 0 : cursor % order.length;
    listing = version;
    return new Set(added);
  }

  async function sweep(count: number, skip: ReadonlySet<string> = new Set()): Promise<void> {
    if (order.length === 0) return;
    const n = Math.min(count, order.length);
    const slice: string[] = [];
    for (let i = 0; i < n; i++) {
      const id = order[(cursor + i) % order.length]!;
      if (!skip.has(id)) slice.push(id);
    }
    cursor = (cursor + n) % order.length;
    await mapBounded(slice, IO_CONCURRENCY, async (id) => {
      // Removed between listing and sweep: the next listing check drops it.
      await refreshSite(id).catch((error) => warnOnce('cannot read a site config', { site: id, err: (error as Error).message }));
    });
  }

  /** A full pass: the listing, then every site's stat. Reads only what changed. */
  async function scanOnce(): Promise<void> {
    if (!started) await refreshOwners(true);
    // Sites the listing just read need no second stat.
    const added = await syncListing(listing === undefined);
    await sweep(order.length, added);
    await settleClaims(!started);
    started = true;
  }

  /** Runs a full pass now (at start), or joins the one in flight. */
  function scan(): Promise<void> {
    scanning ??= scanOnce().finally(() => {
      lastScanAt = now();
      scanning = undefined;
      if (!following && options.follow !== false && followIntervalMs > 0) startFollowing();
    });
    return scanning;
  }

  /**
   * For a host nobody claims: one check of the listing (a stat; a listing read only when it
   * changed), shared by every request waiting, at most once per rescanIntervalMs. Returns whether
   * one ran (or was joined), so the caller knows whether asking again can change the answer.
   */
  function checkListingForUnknown(): Promise<void> | undefined {
    if (listingCheck) return listingCheck;
    if (now() - lastListingCheckAt < options.rescanIntervalMs) return undefined;
    listingCheck = syncListing(false)
      .then(() => settleClaims())
      .catch((error) => warnOnce('cannot check the sites for new folders', { location: source.location, err: (error as Error).message }))
      .finally(() => {
        listingCheck = undefined;
      });
    return listingCheck;
  }

  /** One follower tick: the listing stat, pending folders, the next slice of the sweep, the claim records. */
  function tick(): Promise<void> {
    ticking ??= (async () => {
      try {
        const added = await syncListing(false);
        const waiting = [...pending].filter((id) => !added.has(id));
        await mapBounded(waiting.slice(0, sweepBudget), IO_CONCURRENCY, (id) => refreshSite(id).catch(() => {}));
        await sweep(sweepBudget, added);
        await refreshOwners();
        await settleClaims();
      } catch (error) {
        warnOnce('cannot check the sites for host changes', { location: source.location, err: (error as Error).message });
      }
    })().finally(() => {
      ticking = undefined;
    });
    return ticking;
  }

  function startFollowing() {
    following = true;
    const loop = () => {
      timer = setTimeout(() => void tick().finally(() => following && loop()), followIntervalMs);
      // Never keeps a process alive on its own (CLIs, tests, a draining server).
      timer.unref();
    };
    loop();
  }

  function stopFollowing() {
    following = false;
    if (timer) clearTimeout(timer);
  }

  /** Whether `<label>.<platform domain>` names a site: memory only, but for a folder listed without a site.json. */
  async function isSite(label: string): Promise<boolean> {
    if (known.has(label)) return true;
    // Not in the listing: no such folder (a new one is found by the listing check). A listed one
    // without site.json may have just got one: one stat, only for folders that exist.
    if (!pending.has(label)) return false;
    await refreshSite(label).catch(() => {});
    return known.has(label);
  }

  /** Index lookup plus the wildcard `<id>.<platform domain>`; no listing check. */
  async function lookup(hostname: string): Promise<HostResolution> {
    const suffix = `.${platformDomain}`;
    let wildcard: string | undefined;
    if (hostname.endsWith(suffix)) {
      const label = hostname.slice(0, -suffix.length);
      if (isValidSiteId(label) && (await isSite(label))) wildcard = label;
    }
    return resolveHost(hostname, index, platformDomain, (id) => id === wildcard || known.has(id));
  }

  /** Every refused claim, by the site that made it. */
  function refusedBySite(): Map<string, Array<{ host: string; owner: string }>> {
    const out = new Map<string, Array<{ host: string; owner: string }>>();
    for (const c of index.conflicts) out.set(c.loser, [...(out.get(c.loser) ?? []), { host: c.host, owner: c.winner }]);
    return out;
  }

  return {
    scan,
    lookup,
    tick,
    /** Starts the background follower now (scan() starts it too); returns a stop function. */
    follow(): () => void {
      if (!following) startFollowing();
      return stopFollowing;
    },
    stop: stopFollowing,
    /**
     * DOMAIN_VERIFICATION=dns: a host verified for a site that lists it belongs to that site,
     * whatever the claim records say (a squatter that listed it first, on this machine or any other,
     * never keeps it from the site holding the DNS). `ownerOf` is a memory lookup
     * (tenant/domain-verifier.ts); call `resettleHosts` when its answers change.
     */
    useVerifiedOwners(ownerOf: (host: string) => string | undefined): void {
      verifiedOwner = ownerOf;
      for (const host of [...index.entries.keys(), ...index.conflicts.map((c) => c.host)]) index.resettle(host);
      reportConflicts();
    },
    /** Decides these hosts again (their verified owner changed). */
    resettleHosts(hosts: Iterable<string>): void {
      for (const host of hosts) index.resettle(host);
      reportConflicts();
    },
    /**
     * What a request saw of a site's current config: its hosts, or null when the site is gone.
     * Updates that site's index entries in place (a no-op when nothing changed); the next sweep
     * re-reads the file once to learn its version. Ownership of the hosts it touched is settled
     * in the background.
     */
    observe(id: string, hosts: { domains: readonly string[]; aliases: readonly string[] } | null): void {
      if (hosts === null) {
        forget(id);
        void settleClaims();
        return;
      }
      const allowed = (list: readonly string[]) => list.filter((h) => !hostClaimProblem(h, platformDomain));
      const domains = allowed(hosts.domains);
      const aliases = allowed(hosts.aliases);
      const previous = index.site(id);
      if (previous && sameList(previous.domains, domains) && sameList(previous.aliases, aliases)) return;
      known.set(id, { version: undefined });
      if (index.set({ id, domains, aliases })) reportConflicts();
      void settleClaims();
    },
    /**
     * Resolves a host. A host nobody claims costs at most a share of one listing check (see 4
     * above): awaited when one may run now, otherwise answered from memory at once.
     */
    async resolve(hostname: string): Promise<HostResolution> {
      const first = await lookup(hostname);
      if (first.kind !== 'unknown') return first;
      const check = checkListingForUnknown();
      if (!check) return first;
      await check;
      return lookup(hostname);
    },
    source,
    platformDomain,
    claims: store,
    get index(): HostIndex {
      return index;
    },
    get siteIds(): string[] {
      return [...known.keys()].sort();
    },
    /** Hosts claimed by a site that another site owns: the newcomer's claim is refused. */
    get conflicts(): HostConflict[] {
      return [...index.conflicts];
    },
    /** Every site found with the hosts its site.json claims (the last ones that parsed), and the claims refused. */
    get sites(): Array<SiteHosts & { refused: Array<{ host: string; owner: string }> }> {
      const refused = refusedBySite();
      return [...known.keys()].sort().map((id) => ({ ...(index.site(id) ?? { id, domains: [], aliases: [] }), refused: refused.get(id) ?? [] }));
    },
    get lastScanAt() {
      return lastScanAt;
    },
  };
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((h, i) => h === b[i]);
}

export type SiteRegistry = ReturnType<typeof createSiteRegistry>;
