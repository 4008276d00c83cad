/**
 * Polling for something that becomes true a bounded time after an action (an edit made visible,
 * a process gone). The bound is a deadline the caller derives from the setting that promises it
 * (see freshnessDeadlineMs), never a bare number; a miss fails with what was seen, and when.
 */

export interface EventuallyOptions<T> {
  /** What is awaited, for the failure message ("acme.example/ shows the new name"). */
  what: string;
  /** Give up after this many milliseconds from the first probe. */
  deadlineMs: number;
  /** Pause between probes, in milliseconds. */
  intervalMs?: number;
  /** A short description of a probed value for the failure message (default: JSON, 200 chars). */
  describe?: (value: T) => string;
}

export interface Eventually<T> {
  value: T;
  /** Milliseconds from the first probe until the accepted one answered. */
  elapsedMs: number;
  probes: number;
}

const describeDefault = (value: unknown) => {
  const text = typeof value === 'string' ? value : JSON.stringify(value);
  return text.length > 200 ? `${text.slice(0, 200)}…` : text;
};

/**
 * Calls `probe` until `accept(value)` holds, or the deadline passes. A probe that throws counts as
 * a value not accepted (a server restarting refuses connections for a moment), and is shown as
 * such. Throws an Error naming `what`, the deadline, the time spent, the number of probes and the
 * last few distinct values seen.
 */
export async function eventually<T>(probe: () => Promise<T>, accept: (value: T) => boolean, options: EventuallyOptions<T>): Promise<Eventually<T>> {
  const describe = options.describe ?? describeDefault;
  const intervalMs = options.intervalMs ?? 25;
  const seen: string[] = [];
  const remember = (text: string) => {
    if (seen.at(-1) !== text) seen.push(text);
    if (seen.length > 3) seen.shift();
  };
  const started = performance.now();
  let probes = 0;
  for (;;) {
    probes++;
    try {
      const value = await probe();
      if (accept(value)) return { value, elapsedMs: Math.round(performance.now() - started), probes };
      remember(describe(value));
    } catch (error) {
      remember(`error: ${(error as Error).message}`);
    }
    const elapsed = performance.now() - started;
    if (elapsed > options.deadlineMs) {
      throw new Error(`${options.what}: not seen within ${options.deadlineMs} ms (gave up after ${Math.round(elapsed)} ms, ${probes} probes); last seen:\n  ${seen.join('\n  ')}`);
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/**
 * Room for a loaded machine on top of what the server promises: the suite runs two test files at a
 * time on two cores, next to the bench smoke, so a single request can take a few hundred ms.
 */
export const LOADED_MACHINE_MARGIN_MS = 1500;

/**
 * How long an edit may take to show on a server running with these CONTENT_CHECK_MS and
 * SITES_RESCAN_MS (milliseconds): a cached entry is re-checked at most `contentCheckMs` after its
 * last check, and a page hangs on two entries re-checked independently (its site.json and the page
 * file), so two intervals; a change to which folder owns a host (a new site, a moved domain) also
 * waits for one sites rescan. Plus LOADED_MACHINE_MARGIN_MS for the requests themselves.
 */
export function freshnessDeadlineMs(intervals: { contentCheckMs: number; sitesRescanMs?: number }): number {
  return 2 * intervals.contentCheckMs + (intervals.sitesRescanMs ?? 0) + LOADED_MACHINE_MARGIN_MS;
}
