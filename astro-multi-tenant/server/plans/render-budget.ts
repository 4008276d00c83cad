import type { ThrottleReason } from '../errors.ts';
import { throttledError } from './throttled.ts';
import type { NamedPlan } from './plans-file.ts';
import type { SiteLimiter } from './limits.ts';

/**
 * The render budget of one worker process: what a site may spend on page renders (render-cache
 * misses) here, so one site's uncached pages cannot take the event loop its neighbours need.
 *
 * Three checks, cheapest first, before a render starts:
 * 1. render time: the milliseconds spent rendering the site's pages over the last `windowMs`
 *    (accounted when each render ends), per second. Renders of a worker interleave on one event
 *    loop, so a render's wall time counts its neighbours' work too: each render is charged its
 *    share of the time instead (processor sharing: while N renders run, each is charged 1/N of
 *    the elapsed time), so 64 renders at once cost what one core can do, not 64 times it. A site
 *    over its plan's renderCpuMsPerSecond has its renders shed (429) until the window forgets
 *    enough of them: it pays for its own load, first and alone;
 * 2. render concurrency: at most renderConcurrency renders of the site at once, with a short queue
 *    (`queuePerSlot` waiters per slot) behind them; a full queue is shed;
 * 3. renders per second, shared by every worker through the site limiter (limits.ts).
 * Cached pages (render cache, nginx) never come here, so they keep flowing while renders are shed.
 */
export interface RenderBudgetOptions {
  limiter: SiteLimiter;
  /** Window of the render-time account (ms); default 2000. */
  windowMs?: number;
  /** Slots of the window; default 8 (250 ms each at the default window). */
  slots?: number;
  /** Waiters allowed per concurrency slot; default 4. */
  queuePerSlot?: number;
  now?: () => number;
  /** Told about each shed render (metrics, status). */
  onThrottle?: (siteId: string, reason: ThrottleReason, plan: string) => void;
  /** Told the milliseconds of each finished render (metrics). */
  onRender?: (siteId: string, ms: number) => void;
}

/** One site's render usage in this worker now. */
export interface RenderUsage {
  /** Render milliseconds per second over the account's window. */
  renderMsPerSecond: number;
  /** Renders completed in the window. */
  renders: number;
  running: number;
  queued: number;
}

interface SiteAccount {
  /** Sparse [slot, ms, renders, ...] triples, oldest first. */
  spent: number[];
  running: number;
  /** Admitted past the checks but not running yet (asking the limiter, or in the queue). */
  reserved: number;
  waiters: Array<() => void>;
}

export interface RenderBudget {
  /**
   * Waits for the site's turn and returns the function to call when the render is done (with
   * nothing: the elapsed time is measured here).
   *
   * @throws ThrottledError (429) with the reason and Retry-After when the render is shed.
   */
  admit(siteId: string, plan: NamedPlan): Promise<() => void>;
  usage(siteId: string): RenderUsage;
  /** Sites with renders in the window (bounded by recent activity). */
  snapshot(): Record<string, RenderUsage>;
}

export function createRenderBudget(options: RenderBudgetOptions): RenderBudget {
  const now = options.now ?? (() => performance.now());
  const windowMs = options.windowMs ?? 2000;
  const slots = options.slots ?? 8;
  const slotMs = windowMs / slots;
  const queuePerSlot = options.queuePerSlot ?? 4;
  const accounts = new Map<string, SiteAccount>();
  // Processor-sharing clock: advances at 1/N of real time while N renders run in this worker; a
  // render's share is the clock's advance between its start and its end.
  let shared = 0;
  let sharedAt = now();
  let runningAll = 0;
  const tick = () => {
    const t = now();
    if (runningAll > 0) shared += (t - sharedAt) / runningAll;
    sharedAt = t;
    return shared;
  };

  function account(siteId: string): SiteAccount {
    let a = accounts.get(siteId);
    if (!a) {
      a = { spent: [], running: 0, reserved: 0, waiters: [] };
      accounts.set(siteId, a);
    }
    return a;
  }

  /** Sums the window and drops slots that left it (and the account once it is idle and empty). */
  function totals(siteId: string, a: SiteAccount): { ms: number; renders: number } {
    const current = Math.floor(now() / slotMs);
    let drop = 0;
    while (drop < a.spent.length && current - a.spent[drop]! >= slots) drop += 3;
    if (drop > 0) a.spent.splice(0, drop);
    let ms = 0;
    let renders = 0;
    for (let k = 0; k < a.spent.length; k += 3) {
      ms += a.spent[k + 1]!;
      renders += a.spent[k + 2]!;
    }
    if (a.spent.length === 0 && a.running === 0 && a.reserved === 0) accounts.delete(siteId);
    return { ms, renders };
  }

  function record(a: SiteAccount, ms: number) {
    const current = Math.floor(now() / slotMs);
    const last = a.spent.length - 3;
    if (last >= 0 && a.spent[last] === current) {
      a.spent[last + 1]! += ms;
      a.spent[last + 2]!++;
    } else a.spent.push(current, ms, 1);
  }

  function shed(siteId: string, reason: ThrottleReason, plan: NamedPlan, retryAfterSeconds: number): never {
    options.onThrottle?.(siteId, reason, plan.name);
    // No stack trace (throttled.ts): shed renders are what a flood of uncached pages produces.
    throw throttledError(siteId, reason, plan.name, retryAfterSeconds);
  }

  function usageOf(siteId: string, a: SiteAccount | undefined): RenderUsage {
    if (!a) return { renderMsPerSecond: 0, renders: 0, running: 0, queued: 0 };
    const { ms, renders } = totals(siteId, a);
    return { renderMsPerSecond: ms / (windowMs / 1000), renders, running: a.running, queued: a.reserved };
  }

  return {
    async admit(siteId, plan) {
      const a = account(siteId);
      const { ms } = totals(siteId, a);
      const limits = plan.limits;
      // Over budget: shed until enough of the window has passed. Retry-After is the window, the
      // longest it can take; whole seconds.
      if (ms / (windowMs / 1000) > limits.renderCpuMsPerSecond) shed(siteId, 'render_cpu', plan, Math.max(1, Math.ceil(windowMs / 1000)));
      // The queue counts every admitted render not yet running (also those still asking the
      // limiter), so concurrent arrivals cannot all slip past a check made before an await.
      // totals() drops an idle, empty account: take the one in the map now.
      const entry = account(siteId);
      if (entry.running + entry.reserved >= limits.renderConcurrency * (1 + queuePerSlot)) shed(siteId, 'render_concurrency', plan, 1);
      entry.reserved++;
      let verdict;
      try {
        verdict = await options.limiter.take('renders', siteId, limits);
      } finally {
        if (!verdict?.allowed) entry.reserved--;
      }
      if (!verdict.allowed) shed(siteId, 'renders', plan, verdict.retryAfterSeconds);
      // A released slot is handed to the first waiter as it is (running stays), so nobody can slip
      // in between the release and the waiter's wake-up.
      if (entry.running >= limits.renderConcurrency) await new Promise<void>((resolve) => entry.waiters.push(resolve));
      else entry.running++;
      entry.reserved--;
      const started = tick();
      runningAll++;
      let done = false;
      return () => {
        if (done) return;
        done = true;
        const ms = tick() - started;
        runningAll--;
        record(entry, ms);
        options.onRender?.(siteId, ms);
        const next = entry.waiters.shift();
        if (next) next();
        else entry.running--;
        if (!accounts.has(siteId)) accounts.set(siteId, entry);
      };
    },
    usage: (siteId) => usageOf(siteId, accounts.get(siteId)),
    snapshot() {
      const out: Record<string, RenderUsage> = {};
      for (const [siteId, a] of [...accounts]) {
        const u = usageOf(siteId, a);
        if (u.renders > 0 || u.running > 0 || u.queued > 0) out[siteId] = u;
      }
      return out;
    },
  };
}
