import type { ThrottleReason } from '../errors.ts';

/** One site's throttled requests in a window, by reason. */
export interface ThrottleCounts {
  plan: string;
  total: number;
  byReason: Partial<Record<ThrottleReason, number>>;
  /** When the last one was throttled (ms since the epoch). */
  lastAt: number;
}

/**
 * Who is being throttled now, for the status page and `sites usage`: per site, the throttled
 * requests of the last `windowMs` by reason. Prometheus has the monotonic counters (metrics.ts);
 * this answers "who, right now" without a Prometheus server. Memory follows the sites throttled in
 * the window: a site's entry is dropped once its last throttle leaves it.
 */
export function createThrottleRecord(options: { windowMs?: number; now?: () => number } = {}) {
  const windowMs = options.windowMs ?? 60_000;
  const now = options.now ?? Date.now;
  /** Per site: [time, reason] pairs, oldest first, and the plan of the latest. */
  const recent = new Map<string, { plan: string; events: Array<[number, ThrottleReason]> }>();

  function prune(site: string, entry: { events: Array<[number, ThrottleReason]> }, at: number) {
    let drop = 0;
    while (drop < entry.events.length && at - entry.events[drop]![0] >= windowMs) drop++;
    if (drop > 0) entry.events.splice(0, drop);
    if (entry.events.length === 0) recent.delete(site);
  }

  return {
    record(site: string, reason: ThrottleReason, plan: string) {
      const at = now();
      let entry = recent.get(site);
      if (!entry) recent.set(site, (entry = { plan, events: [] }));
      entry.plan = plan;
      // A flood of 429s must not grow memory: past 10,000 events in the window the oldest go.
      if (entry.events.length >= 10_000) entry.events.shift();
      entry.events.push([at, reason]);
    },
    snapshot(): Record<string, ThrottleCounts> {
      const at = now();
      const out: Record<string, ThrottleCounts> = {};
      for (const [site, entry] of [...recent]) {
        prune(site, entry, at);
        if (entry.events.length === 0) continue;
        const byReason: ThrottleCounts['byReason'] = {};
        for (const [, reason] of entry.events) byReason[reason] = (byReason[reason] ?? 0) + 1;
        out[site] = { plan: entry.plan, total: entry.events.length, byReason, lastAt: entry.events.at(-1)![0] };
      }
      return out;
    },
    windowSeconds: windowMs / 1000,
  };
}

export type ThrottleRecord = ReturnType<typeof createThrottleRecord>;
