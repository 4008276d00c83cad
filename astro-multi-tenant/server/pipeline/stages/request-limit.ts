import type { SiteRequest, Stage } from '../context.ts';
import type { ThrottleReason } from '../../errors.ts';
import { answerThrottled } from '../error-response.ts';
import { throttledError } from '../../plans/throttled.ts';
import type { PlanBook } from '../../plans/plans-file.ts';
import type { SiteLimiter } from '../../plans/limits.ts';

export interface RequestLimitDeps {
  /** The plans in force (plans-file.ts): read on every request, so an edit applies within CONTENT_CHECK_MS. */
  plans: () => PlanBook;
  limiter: SiteLimiter;
  onThrottle?: (siteId: string, reason: ThrottleReason, plan: string) => void;
  /** Delays the 429 while the worker is busy (pipeline/refusal-pacer.ts); undefined = never. */
  pace?: () => Promise<void> | undefined;
}

/**
 * The site's request rate, before anything else is done for it: each request of a site counts
 * against its own plan's window (shared by every worker through Redis), never another site's. Over
 * the window: 429 with Retry-After, as short plain text, no-store (errors.ts SITE_RATE_LIMITED),
 * answered here rather than thrown, with an error made without a stack trace: under a flood most
 * requests end here, and a thrown error with a stack cost ~9x as much (plans/throttled.ts).
 */
export function requestLimitStage(deps: RequestLimitDeps): Stage<SiteRequest> {
  return async (ctx) => {
    const plan = deps.plans().planFor(ctx.site.id);
    const verdict = await deps.limiter.take('requests', ctx.site.id, plan.limits);
    if (verdict.allowed) return undefined;
    deps.onThrottle?.(ctx.site.id, 'requests', plan.name);
    const paced = deps.pace?.();
    if (paced) await paced;
    return answerThrottled(ctx, throttledError(ctx.site.id, 'requests', plan.name, verdict.retryAfterSeconds));
  };
}
