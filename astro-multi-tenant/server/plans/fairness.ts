import type { Cluster, Redis } from 'ioredis';
import type { ThrottleReason } from '../errors.ts';
import { defaultPlanBook, type PlanBook, type PlansSource } from './plans-file.ts';
import { createSiteLimiter, type SiteLimiter } from './limits.ts';
import { createRenderBudget, type RenderBudget, type RenderUsage } from './render-budget.ts';
import { createContentGate, type ContentGate } from './content-gate.ts';
import { createThrottleRecord, type ThrottleCounts, type ThrottleRecord } from './throttle-record.ts';

/**
 * Everything that keeps one site from slowing the others down, wired once per worker: the plans in
 * force, the shared request/render limiter, this worker's render budget and the record of who was
 * throttled. The pipeline's request-limit stage and page-response's render gate use it; the
 * status page and `sites usage` read its snapshot.
 */
export interface Fairness {
  plans: () => PlanBook;
  limiter: SiteLimiter;
  budget: RenderBudget;
  throttles: ThrottleRecord;
  /** Counts a throttled request (status record and the metrics callback). */
  onThrottle(siteId: string, reason: ThrottleReason, plan: string): void;
  /** Size and count limits when serving: page-response checks pages, the static-files stage public/ (content-gate.ts). */
  content: ContentGate;
  /** page-response's render gate: the site's render budget under its plan. */
  renderGate(siteId: string): Promise<() => void>;
  snapshot(): FairnessSnapshot;
}

/** One worker's view, for the status page: render usage and throttles by site, and whether limits are shared now. */
export interface FairnessSnapshot {
  /** false while Redis is unreachable and limits are counted in this worker alone. */
  shared: boolean;
  renders: Record<string, RenderUsage>;
  throttled: Record<string, ThrottleCounts>;
  throttleWindowSeconds: number;
}

export interface FairnessOptions {
  plans?: PlansSource;
  redis?: Redis | Cluster;
  onThrottle?: (siteId: string, reason: ThrottleReason, plan: string) => void;
  onStoreChange?: (shared: boolean, error?: unknown) => void;
  /** Told the milliseconds of each finished render of a site page (metrics). */
  onRender?: (siteId: string, ms: number) => void;
  /** Render-time account window (ms); tests shorten it. */
  renderWindowMs?: number;
  /** How long one walk of a site folder counts for the size and count limits (ms); default 60 s. */
  contentWalkMs?: number;
}

export function createFairness(options: FairnessOptions = {}): Fairness {
  const fallback = defaultPlanBook();
  const plans = options.plans ? () => options.plans!.current() : () => fallback;
  const limiter = createSiteLimiter({ redis: options.redis, onStoreChange: options.onStoreChange });
  const throttles = createThrottleRecord();
  const onThrottle = (siteId: string, reason: ThrottleReason, plan: string) => {
    throttles.record(siteId, reason, plan);
    options.onThrottle?.(siteId, reason, plan);
  };
  const budget = createRenderBudget({ limiter, onThrottle, onRender: options.onRender, windowMs: options.renderWindowMs });
  return {
    plans,
    limiter,
    budget,
    throttles,
    onThrottle,
    content: createContentGate({ planFor: (id) => plans().planFor(id), ttlMs: options.contentWalkMs }),
    renderGate: (siteId) => budget.admit(siteId, plans().planFor(siteId)),
    snapshot: () => ({ shared: limiter.shared, renders: budget.snapshot(), throttled: throttles.snapshot(), throttleWindowSeconds: throttles.windowSeconds }),
  };
}
