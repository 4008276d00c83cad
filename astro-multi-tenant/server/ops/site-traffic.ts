/**
 * Per-site request and error counts over the last few minutes, for the status page's "requests per
 * second" and "error rate" columns. Prometheus gets monotonic counters (see metrics.ts); a person
 * looking at the status page wants a rate now, without a Prometheus server to ask. Counts live in
 * time slots, so memory is bounded by the number of sites with traffic in the window.
 */
export interface SiteTrafficCounts {
  requests: number;
  errors: number;
}

export interface SiteTrafficSnapshot {
  windowSeconds: number;
  sites: Record<string, SiteTrafficCounts>;
}

/**
 * One site's recent slots as flat `[slot, requests, errors, ...]` triples, oldest first. Sparse on
 * purpose: most of ten thousand sites see a request in a handful of slots, and three typed arrays
 * per site (the first design) held ~2 KB each, 20 MB of a worker's heap after touching 10,000 sites.
 */
interface Recent {
  counts: number[];
  lastSlot: number;
}

export interface SiteTrafficOptions {
  slotMs?: number;
  slots?: number;
  now?: () => number;
}

export function createSiteTraffic(options: SiteTrafficOptions = {}) {
  const slotMs = options.slotMs ?? 10_000;
  const slots = options.slots ?? 30;
  const now = options.now ?? Date.now;
  const recent = new Map<string, Recent>();
  let lastSweepSlot = -1;

  /** Drops sites with no traffic in the whole window, once per slot, so memory follows recent traffic. */
  function sweep(current: number) {
    if (current === lastSweepSlot) return;
    lastSweepSlot = current;
    for (const [site, entry] of recent) if (current - entry.lastSlot >= slots) recent.delete(site);
  }

  function record(site: string, isError: boolean) {
    const current = Math.floor(now() / slotMs);
    sweep(current);
    let entry = recent.get(site);
    if (!entry) {
      entry = { counts: [], lastSlot: current };
      recent.set(site, entry);
    }
    const { counts } = entry;
    const last = counts.length - 3;
    if (last >= 0 && counts[last] === current) {
      counts[last + 1]!++;
      if (isError) counts[last + 2]!++;
    } else {
      // Slots that left the window are dropped here, so a busy site keeps at most `slots` triples.
      let drop = 0;
      while (drop < counts.length && current - counts[drop]! >= slots) drop += 3;
      if (drop > 0) counts.splice(0, drop);
      counts.push(current, 1, isError ? 1 : 0);
    }
    entry.lastSlot = current;
  }

  /** Sums over the last `windowSeconds` (whole slots, the current one included). */
  function snapshot(windowSeconds: number): SiteTrafficSnapshot {
    const current = Math.floor(now() / slotMs);
    const span = Math.max(1, Math.min(slots, Math.ceil((windowSeconds * 1000) / slotMs)));
    const sites: Record<string, SiteTrafficCounts> = {};
    for (const [site, entry] of recent) {
      if (current - entry.lastSlot >= slots) {
        recent.delete(site);
        continue;
      }
      let requests = 0;
      let errors = 0;
      const { counts } = entry;
      for (let k = 0; k < counts.length; k += 3) {
        const age = current - counts[k]!;
        if (age >= 0 && age < span) {
          requests += counts[k + 1]!;
          errors += counts[k + 2]!;
        }
      }
      if (requests > 0) sites[site] = { requests, errors };
    }
    return { windowSeconds: (span * slotMs) / 1000, sites };
  }

  /** How many sites have a record in the window (the tests check memory follows traffic). */
  return { record, snapshot, get size() { return recent.size; } };
}

export type SiteTraffic = ReturnType<typeof createSiteTraffic>;
