/**
 * Per-site request and error counts over the last few minutes, for the status page's "requests per
 * second" and "error rate" columns. Prometheus gets monotonic counters (see metrics.ts); a person
 * looking at the status page wants a rate now, without a Prometheus server to ask. Counts live in
 * fixed time slots, so memory is bounded by the number of sites with traffic in the window.
 */
export interface SiteTrafficCounts {
  requests: number;
  errors: number;
}

export interface SiteTrafficSnapshot {
  windowSeconds: number;
  sites: Record<string, SiteTrafficCounts>;
}

interface Ring {
  slot: Float64Array;
  requests: Uint32Array;
  errors: Uint32Array;
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
  const rings = new Map<string, Ring>();
  let lastSweepSlot = -1;

  /** Drops sites with no traffic in the whole ring, once per slot, so memory follows recent traffic. */
  function sweep(current: number) {
    if (current === lastSweepSlot) return;
    lastSweepSlot = current;
    for (const [site, ring] of rings) if (current - ring.lastSlot >= slots) rings.delete(site);
  }

  function record(site: string, isError: boolean) {
    const current = Math.floor(now() / slotMs);
    sweep(current);
    let ring = rings.get(site);
    if (!ring) {
      ring = { slot: new Float64Array(slots).fill(-1), requests: new Uint32Array(slots), errors: new Uint32Array(slots), lastSlot: current };
      rings.set(site, ring);
    }
    const i = current % slots;
    if (ring.slot[i] !== current) {
      ring.slot[i] = current;
      ring.requests[i] = 0;
      ring.errors[i] = 0;
    }
    ring.requests[i]!++;
    if (isError) ring.errors[i]!++;
    ring.lastSlot = current;
  }

  /** Sums over the last `windowSeconds` (whole slots, the current one included). */
  function snapshot(windowSeconds: number): SiteTrafficSnapshot {
    const current = Math.floor(now() / slotMs);
    const span = Math.max(1, Math.min(slots, Math.ceil((windowSeconds * 1000) / slotMs)));
    const sites: Record<string, SiteTrafficCounts> = {};
    for (const [site, ring] of rings) {
      if (current - ring.lastSlot >= slots) {
        rings.delete(site);
        continue;
      }
      let requests = 0;
      let errors = 0;
      for (let k = 0; k < slots; k++) {
        const age = current - ring.slot[k]!;
        if (ring.slot[k]! >= 0 && age >= 0 && age < span) {
          requests += ring.requests[k]!;
          errors += ring.errors[k]!;
        }
      }
      if (requests > 0) sites[site] = { requests, errors };
    }
    return { windowSeconds: (span * slotMs) / 1000, sites };
  }

  return { record, snapshot };
}

export type SiteTraffic = ReturnType<typeof createSiteTraffic>;
