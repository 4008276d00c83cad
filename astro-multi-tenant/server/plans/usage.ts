import type { ThrottleReason } from '../errors.ts';
import type { FairnessSnapshot } from './fairness.ts';
import type { NamedPlan, Plan } from './plans-file.ts';
import type { StatusModel } from '../ops/status.ts';

/** One site's plan and what it uses of it now, summed over the workers that answered. */
export interface SiteUsage {
  id: string;
  plan: string;
  limits: Plan;
  /** Requests per second over the last minute (all workers) against limits.requestsPerSecond. */
  requestsPerSecond1m: number;
  /** Render milliseconds per second in the busiest worker, against limits.renderCpuMsPerSecond (a per-worker budget). */
  renderMsPerSecond: number;
  /** Renders running and queued now, all workers. */
  rendersRunning: number;
  rendersQueued: number;
  /** Throttled requests in the record's window (all workers), by reason. */
  throttled: number;
  throttledByReason: Partial<Record<ThrottleReason, number>>;
}

export interface FairnessModel {
  /** true when every worker counts limits in Redis; false when any counts per process (Redis down or not configured). */
  shared: boolean;
  throttleWindowSeconds: number;
  /** How many sites are on each plan (of the known sites). */
  plans: Record<string, number>;
  /** Every known site, in the status model's order. */
  sites: SiteUsage[];
  /** Sites throttled in the window, most throttled first. */
  throttledNow: SiteUsage[];
}

/**
 * Merges the workers' fairness snapshots with each known site's plan. Pure.
 * `rates` gives each site's requests per second over the last minute (the status model has it).
 */
export function buildFairnessModel(input: {
  sites: ReadonlyArray<{ id: string; requestsPerSecond1m: number }>;
  workers: ReadonlyArray<{ fairness?: FairnessSnapshot }>;
  planFor: (siteId: string) => NamedPlan;
}): FairnessModel {
  const snapshots = input.workers.map((w) => w.fairness).filter((f): f is FairnessSnapshot => f !== undefined);
  const plans: Record<string, number> = {};
  const sites = input.sites.map((row): SiteUsage => {
    const plan = input.planFor(row.id);
    plans[plan.name] = (plans[plan.name] ?? 0) + 1;
    const throttledByReason: SiteUsage['throttledByReason'] = {};
    let throttled = 0;
    let renderMsPerSecond = 0;
    let rendersRunning = 0;
    let rendersQueued = 0;
    for (const snapshot of snapshots) {
      const t = snapshot.throttled[row.id];
      if (t) {
        throttled += t.total;
        for (const [reason, count] of Object.entries(t.byReason) as Array<[ThrottleReason, number]>) throttledByReason[reason] = (throttledByReason[reason] ?? 0) + count;
      }
      const r = snapshot.renders[row.id];
      if (r) {
        renderMsPerSecond = Math.max(renderMsPerSecond, r.renderMsPerSecond);
        rendersRunning += r.running;
        rendersQueued += r.queued;
      }
    }
    return { id: row.id, plan: plan.name, limits: plan.limits, requestsPerSecond1m: row.requestsPerSecond1m, renderMsPerSecond, rendersRunning, rendersQueued, throttled, throttledByReason };
  });
  return {
    shared: snapshots.length > 0 && snapshots.every((s) => s.shared),
    throttleWindowSeconds: snapshots[0]?.throttleWindowSeconds ?? 60,
    plans,
    sites,
    throttledNow: sites.filter((s) => s.throttled > 0).sort((a, b) => b.throttled - a.throttled || (a.id < b.id ? -1 : 1)),
  };
}

/** "requests 12, render_cpu 3": a site's throttles by reason, for the status page and the CLI. */
export function formatReasons(byReason: SiteUsage['throttledByReason']): string {
  return Object.entries(byReason)
    .filter(([, n]) => (n ?? 0) > 0)
    .map(([reason, n]) => `${reason} ${n}`)
    .join(', ');
}

/**
 * The status model with each site's plan and usage added (and the workers' raw snapshots taken
 * out again: the merged model says it once).
 */
export function withFairness(status: () => Promise<StatusModel>, planFor: (siteId: string) => NamedPlan): () => Promise<StatusModel> {
  return async () => {
    const model = await status();
    const fairness = buildFairnessModel({ sites: model.sites, workers: model.workers, planFor });
    return { ...model, workers: model.workers.map(({ fairness: _f, ...worker }) => worker), fairness };
  };
}
