import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes, type RateLimiterAbstract } from 'rate-limiter-flexible';
import type { Cluster, Redis } from 'ioredis';
import type { Plan } from './plans-file.ts';

/** What a limit counts: every request of a site, or only its page renders (render-cache misses). */
export type RateKind = 'requests' | 'renders';

export type Verdict = { allowed: true } | { allowed: false; retryAfterSeconds: number };

/**
 * A rate and a burst as a fixed window: `points` admitted per `duration` seconds. The window is
 * burst / rate seconds, rounded to whole seconds (rate-limiter-flexible's windows are whole
 * seconds in Redis: `EX`), at least 1; so 5/s with a burst of 10 admits 10 per 2 s, and a site
 * sending 20 at once gets 10 answers and 10 429s. A fixed window can admit up to twice `points` across
 * one window boundary; that is the price of one Redis round trip per request.
 */
export function windowFor(ratePerSecond: number, burst: number): { points: number; duration: number } {
  const duration = Math.max(1, Math.round(burst / ratePerSecond));
  return { points: Math.max(1, Math.floor(burst)), duration };
}

/** The window of each kind for a plan. Renders have no burst field: their window is one second (or 1/rate when slower than one per second). */
export function planWindow(kind: RateKind, plan: Plan): { points: number; duration: number } {
  if (kind === 'requests') return windowFor(plan.requestsPerSecond, plan.burst);
  const perSecond = plan.rendersPerSecond;
  return perSecond >= 1 ? windowFor(perSecond, Math.floor(perSecond)) : windowFor(perSecond, 1);
}

export interface SiteLimiterOptions {
  /** ioredis client (REDIS_URL); undefined counts in this process only (embedded mode). */
  redis: Redis | Cluster | undefined;
  /** Key prefix in Redis, so two deployments on one Redis do not share counts. */
  keyPrefix?: string;
  /** After Redis fails, count in this process for this long (ms) before asking Redis again. */
  redisRetryMs?: number;
  now?: () => number;
  /** Told when counting moves to this process (Redis failed) and back to Redis. */
  onStoreChange?: (shared: boolean, error?: unknown) => void;
}

export interface SiteLimiter {
  /**
   * Counts one request (or render) of `siteId` against its plan's window and says whether it may
   * go on, or how many whole seconds until the window frees (Retry-After, RFC 9110 §10.2.3). Never
   * rejects: a Redis failure counts in this process instead.
   */
  take(kind: RateKind, siteId: string, plan: Plan): Promise<Verdict>;
  /** false while counts are kept per process because Redis failed. */
  readonly shared: boolean;
}

/**
 * Per-site request and render limits shared by every worker and machine through Redis
 * (rate-limiter-flexible's RateLimiterRedis: one Lua script per take, `INCRBY` + `PEXPIRE` on
 * first use, atomic across clients), with a per-process RateLimiterMemory twin used while Redis
 * is unreachable. Keys are `<prefix><kind>:<points>/<duration>:<site>`: the site alone decides the
 * key, so one site's traffic is never counted against another's, and a plan change starts a new
 * window instead of reinterpreting the old count.
 *
 * Cost control: once a site is over its window, further takes are answered in memory until the
 * window ends (`inMemoryBlockOnConsumed`), so a flood of throttled requests costs Redis nothing;
 * and after a Redis failure the memory twin answers for `redisRetryMs` without waiting on Redis,
 * so a stopped Redis costs at most one command timeout per process and per retry period.
 *
 * @see https://github.com/animir/node-rate-limiter-flexible/wiki/Redis
 */
export function createSiteLimiter(options: SiteLimiterOptions): SiteLimiter {
  const now = options.now ?? Date.now;
  const prefix = options.keyPrefix ?? 'amt:limit:';
  const retryMs = options.redisRetryMs ?? 2000;
  const limiters = new Map<string, { shared: RateLimiterAbstract | undefined; local: RateLimiterAbstract }>();
  let downUntil = 0;

  function limiterFor(kind: RateKind, plan: Plan) {
    const { points, duration } = planWindow(kind, plan);
    const id = `${kind}:${points}/${duration}`;
    let pair = limiters.get(id);
    if (!pair) {
      const keyPrefix = `${prefix}${id}`;
      pair = {
        shared: options.redis
          ? new RateLimiterRedis({ storeClient: options.redis, points, duration, keyPrefix, inMemoryBlockOnConsumed: points + 1, rejectIfRedisNotReady: true })
          : undefined,
        local: new RateLimiterMemory({ points, duration, keyPrefix }),
      };
      limiters.set(id, pair);
    }
    return pair;
  }

  async function consume(limiter: RateLimiterAbstract, key: string): Promise<Verdict> {
    try {
      await limiter.consume(key, 1);
      return { allowed: true };
    } catch (rejection) {
      if (rejection instanceof RateLimiterRes) return { allowed: false, retryAfterSeconds: Math.max(1, Math.ceil(rejection.msBeforeNext / 1000)) };
      throw rejection;
    }
  }

  return {
    get shared() {
      return options.redis !== undefined && now() >= downUntil;
    },
    async take(kind, siteId, plan) {
      const pair = limiterFor(kind, plan);
      if (pair.shared && now() >= downUntil) {
        try {
          const verdict = await consume(pair.shared, siteId);
          if (downUntil !== 0) {
            downUntil = 0;
            options.onStoreChange?.(true);
          }
          return verdict;
        } catch (error) {
          if (downUntil === 0) options.onStoreChange?.(false, error);
          downUntil = now() + retryMs;
        }
      }
      return consume(pair.local, siteId);
    },
  };
}
