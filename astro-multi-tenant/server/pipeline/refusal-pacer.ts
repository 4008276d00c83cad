import { performance, type EventLoopUtilization } from 'node:perf_hooks';

/**
 * Answers the platform refuses (an unknown Host's 404, a plan's 429) wait while the worker is
 * busy, so that sites' own requests go first.
 *
 * Why: a refusal costs about as much CPU as a cached page (most of either is the socket read,
 * HTTP parse and write, measured at 44–69 µs vs 65 µs per request on one core), so a flood of
 * junk Host values or of one site's over-limit requests takes its share of the worker however
 * cheap our own code for it is. Delaying the refusal's answer while the worker is busy slows any
 * client that waits for its answers (browsers, crawlers, scripts, load tools: a closed loop) to
 * one request per `delayMs` per connection, which gives the worker back to the sites. A client
 * that does not wait (an open-loop flood) still costs its parse and write: that is the edge's job
 * (nginx `limit_req`/`limit_conn`, docs/edge.md).
 *
 * Busy means both, over the last full `sampleMs` window: the event loop's utilisation (the share
 * of time it was not idle, Node's `performance.eventLoopUtilization()`) at or above
 * `busyUtilization`, and at least one request that was not a refusal (`served()`): refusals yield
 * to someone. A worker that is idle, lightly loaded, or busy with nothing but refusals answers
 * every refusal at once (there is nobody to give the time to), so normal traffic never sees a
 * delay and a slow machine alone (its loop looks busy while it waits for a core) never causes one. At most `maxWaiting` answers wait at once (each holds its socket); beyond that
 * they are answered at once rather than holding more connections open.
 */
export interface RefusalPacer {
  /**
   * undefined when the refusal may be answered now (the common case: no promise, no timer);
   * else a promise that resolves after `delayMs`. Never rejects.
   */
  pace(): Promise<void> | undefined;
  /** Counts a request answered that was not a refusal (a page, a file, a probe): what pacing protects. */
  served(): void;
  /** Refusals delayed so far (for the metrics). */
  readonly delayed: number;
}

export interface RefusalPacerOptions {
  /** How long a refusal waits while the worker is busy (ms). 0 turns pacing off. */
  delayMs: number;
  /** Utilisation (0–1) at or above which the worker counts as busy. Default 0.5. */
  busyUtilization?: number;
  /** The window the utilisation is read over (ms). Default 100. */
  sampleMs?: number;
  /**
   * Refusals waiting at once, at most. Default 2,000: at 100 ms each that is 20,000 refusals a
   * second, more than a worker answers, while it bounds the sockets and request objects held.
   */
  maxWaiting?: number;
  /** Default: performance.eventLoopUtilization (its delta form). */
  utilization?: (previous?: EventLoopUtilization) => EventLoopUtilization;
  /** Runs `sample` every `ms` (default: an unref'd setInterval, so it never keeps a process alive). */
  every?: (ms: number, sample: () => void) => void;
  /** Default setTimeout (unref'd: a waiting refusal never keeps a stopping process alive). */
  wait?: (ms: number, done: () => void) => void;
}

export function createRefusalPacer(options: RefusalPacerOptions): RefusalPacer {
  const { delayMs } = options;
  const busyUtilization = options.busyUtilization ?? 0.5;
  const sampleMs = options.sampleMs ?? 100;
  const maxWaiting = options.maxWaiting ?? 2_000;
  const utilization = options.utilization ?? ((previous?: EventLoopUtilization) => performance.eventLoopUtilization(previous));
  const every = options.every ?? ((ms: number, sample: () => void) => void setInterval(sample, ms).unref());
  const wait = options.wait ?? ((ms: number, done: () => void) => void setTimeout(done, ms).unref());

  let waiting = 0;
  let delayed = 0;
  // Busy over the last full window: a reading per window, never per request. A timer rather than
  // a reading on demand, so that a window long past (the start-up's, say) never decides now.
  let busy = false;
  let servedInWindow = 0;
  if (delayMs > 0) {
    let mark = utilization();
    every(sampleMs, () => {
      busy = servedInWindow > 0 && utilization(mark).utilization >= busyUtilization;
      mark = utilization();
      servedInWindow = 0;
    });
  }

  return {
    pace() {
      if (!busy || waiting >= maxWaiting) return undefined;
      waiting++;
      delayed++;
      return new Promise<void>((resolve) =>
        wait(delayMs, () => {
          waiting--;
          resolve();
        }),
      );
    },
    served() {
      servedInWindow++;
    },
    get delayed() {
      return delayed;
    },
  };
}
