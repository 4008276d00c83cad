import { createHostIndex, type HostIndex, type SiteHosts } from './host-index.ts';
import { isValidSiteId, resolveHost, type HostResolution } from './resolve-host.ts';
import { normalizeHost } from './normalize-host.ts';
import { createFolderSiteSource, mapBounded, type SiteSource } from '../sites/site-source.ts';

export interface RegistryOptions {
  /** Where sites come from; default: the folders under `sitesDir`. */
  source?: SiteSource;
  sitesDir: string;
  platformDomain: string;
  /** Minimum time between two full stat passes triggered by unknown hosts. */
  rescanIntervalMs: number;
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
export const DEFAULT_SWEEP_BUDGET = 2000;
const IO_CONCURRENCY = 16;

/** Lenient read of a site.json for routing only: full validation happens when the site loads. */
export function extractHosts(text: string): { domains: string[]; aliases: string[] } | undefined {
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
        return n.port === undefined ? [n.hostname] : [];
      } catch {
        return [];
      }
    });
  const record = json as Record<string, unknown>;
  return { domains: pick(record.domains), aliases: pick(record.aliases) };
}

/**
 * Keeps the host index in step with the site configs, one site at a time.
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
 *    the site.json of added folders only. One stat per tick at any number of sites.
 * 3. A host newly claimed by an in-place edit of a site that gets no traffic (an alias added, a
 *    domain moved to an idle site) cannot be seen without a stat of that file: no cheap signal
 *    covers an in-place write made by another machine on a shared volume. The follower stats
 *    `sweepBudget` site.json files per tick round-robin (a full pass per tick up to that many
 *    sites; 2,000 stats at ~7 µs each is ~15 ms per 500 ms tick) and reads only files whose stat
 *    changed. A request for a host nobody claims triggers one full stat pass at once (rate-limited
 *    to one per max(rescanIntervalMs, 4× the last pass), shared by all waiting requests), so the
 *    first request for such a host finds it without waiting for the sweep.
 *
 * A change costs one read and O(that site's hosts) index work, never a rebuild: with 100,000 sites
 * the steady cost is one listing stat plus `sweepBudget` stats per tick.
 */
export function createSiteRegistry(options: RegistryOptions) {
  const now = options.now ?? Date.now;
  const source = options.source ?? createFolderSiteSource(options.sitesDir);
  const sweepBudget = Math.max(1, options.sweepBudget ?? DEFAULT_SWEEP_BUDGET);
  const followIntervalMs = options.followIntervalMs ?? options.rescanIntervalMs;
  const index = createHostIndex();
  const known = new Map<string, Known>();
  /** Known ids in listing order, for the round-robin sweep. */
  let order: string[] = [];
  let cursor = 0;
  let listing: string | undefined;
  /**
   * File times tick coarsely (a jiffy on Linux): a folder added in the same tick as our last listing
   * leaves the version unchanged. So after any change the listing is read once more, next tick.
   */
  let listingSettled = false;
  let lastScanAt = -Infinity;
  let lastPassMs = 0;
  let scanning: Promise<void> | undefined;
  let ticking: Promise<void> | undefined;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let following = false;
  const reportedConflicts = new Set<string>();
  const warned = new Set<string>();

  function reportConflicts() {
    for (const conflict of index.conflicts) {
      const key = `${conflict.host}\0${conflict.loser}`;
      if (reportedConflicts.has(key)) continue;
      reportedConflicts.add(key);
      options.onWarning?.('host claimed by two sites; the first by id keeps it', { ...conflict });
    }
  }

  function warnOnce(message: string, details: Record<string, unknown>) {
    const key = `${message}\0${JSON.stringify(details)}`;
    if (warned.has(key)) return;
    warned.add(key);
    options.onWarning?.(message, details);
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
      forget(id);
      return;
    }
    if (entry && entry.version === version) return;
    const read = await source.readConfig(id);
    if (read === null) {
      forget(id);
      return;
    }
    const hosts = extractHosts(read.text);
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
    if (!force && version === listing && listingSettled) return new Set();
    listingSettled = version === listing;
    const ids = await source.listSiteIds();
    const present = new Set(ids);
    for (const id of [...known.keys()]) if (!present.has(id)) forget(id);
    const added = ids.filter((id) => !known.has(id));
    await mapBounded(added, IO_CONCURRENCY, (id) => refreshSite(id));
    order = ids;
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
    const started = now();
    // Sites the listing just read need no second stat.
    const added = await syncListing(listing === undefined);
    await sweep(order.length, added);
    lastPassMs = now() - started;
  }

  /** Runs a full pass now, or joins the one in flight. */
  function scan(): Promise<void> {
    scanning ??= scanOnce().finally(() => {
      lastScanAt = now();
      scanning = undefined;
      if (!following && options.follow !== false && followIntervalMs > 0) startFollowing();
    });
    return scanning;
  }

  /** Gap between unknown-host passes: never more than a quarter of the time spent stat'ing. */
  const rescanGap = () => Math.max(options.rescanIntervalMs, 4 * lastPassMs);

  let queued: Promise<void> | undefined;
  function requestRescan(): Promise<void> {
    if (scanning) return scanning;
    const wait = lastScanAt + rescanGap() - now();
    if (wait <= 0) return scan();
    queued ??= new Promise<void>((resolve) => setTimeout(resolve, wait).unref()).then(() => {
      queued = undefined;
      return scan();
    });
    return queued;
  }

  /** One follower tick: the listing stat, then the next slice of the sweep. */
  function tick(): Promise<void> {
    ticking ??= (async () => {
      try {
        const added = await syncListing(false);
        await sweep(sweepBudget, added);
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

  async function siteFolderExists(id: string): Promise<boolean> {
    if (known.has(id)) return true;
    return (await source.configVersion(id).catch(() => null)) !== null;
  }

  /** Index lookup plus the wildcard `<id>.<platform domain>`; no rescan. */
  async function lookup(hostname: string): Promise<HostResolution> {
    const suffix = `.${options.platformDomain}`;
    let wildcard: string | undefined;
    if (hostname.endsWith(suffix) && index.entries.get(hostname)?.kind !== 'domain') {
      const label = hostname.slice(0, -suffix.length);
      if (isValidSiteId(label) && (await siteFolderExists(label))) wildcard = label;
    }
    return resolveHost(hostname, index, options.platformDomain, (id) => id === wildcard || known.has(id));
  }

  return {
    scan,
    requestRescan,
    lookup,
    tick,
    /** Starts the background follower now (scan() starts it too); returns a stop function. */
    follow(): () => void {
      if (!following) startFollowing();
      return stopFollowing;
    },
    stop: stopFollowing,
    /**
     * What a request saw of a site's current config: its hosts, or null when the site is gone.
     * Updates that site's index entries in place (a no-op when nothing changed); the next sweep
     * re-reads the file once to learn its version.
     */
    observe(id: string, hosts: { domains: readonly string[]; aliases: readonly string[] } | null): void {
      if (hosts === null) {
        forget(id);
        return;
      }
      const previous = index.site(id);
      if (previous && sameList(previous.domains, hosts.domains) && sameList(previous.aliases, hosts.aliases)) return;
      known.set(id, { version: undefined });
      if (index.set({ id, domains: hosts.domains, aliases: hosts.aliases })) reportConflicts();
    },
    /**
     * Resolves a host. An unknown host triggers a full stat pass: awaited when one may run now,
     * otherwise queued in the background, so a flood of junk hosts costs at most one pass per
     * interval and never parks requests on a timer.
     */
    async resolve(hostname: string): Promise<HostResolution> {
      const first = await lookup(hostname);
      if (first.kind !== 'unknown') return first;
      if (!scanning && lastScanAt + rescanGap() > now()) {
        void requestRescan().catch(() => {});
        return first;
      }
      await requestRescan().catch((error) => warnOnce('cannot rescan the sites', { location: source.location, err: (error as Error).message }));
      return lookup(hostname);
    },
    source,
    platformDomain: options.platformDomain,
    get index(): HostIndex {
      return index;
    },
    get siteIds(): string[] {
      return [...known.keys()].sort();
    },
    /** Every site found with the hosts its site.json claims (the last ones that parsed). */
    get sites(): SiteHosts[] {
      return [...known.keys()].sort().map((id) => index.site(id) ?? { id, domains: [], aliases: [] });
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
