import { RateLimiterRes, type RateLimiterAbstract } from 'rate-limiter-flexible';
import type { AttemptLimiter } from './store.ts';

/**
 * Our AttemptLimiter over a rate-limiter-flexible limiter (RateLimiterRedis or RateLimiterMemory,
 * both configured with `points` = the allowed attempts and `duration` = the window in seconds).
 *
 * rate-limiter-flexible's `consume` increments and compares in one step (in Redis a Lua script:
 * `SET NX EX` + `INCRBY` + `PTTL`), and rejects with a RateLimiterRes once the count passes
 * `points`; any other rejection is the store failing, which `storeFailed` turns into our error
 * (SessionStoreUnavailable, a 503). `reward` is its decrement.
 *
 * @see https://github.com/animir/node-rate-limiter-flexible/wiki/API-methods
 */
export function attemptLimiterFrom(limiter: RateLimiterAbstract, storeFailed: (operation: string, error: unknown) => Error): AttemptLimiter {
  return {
    async take(key) {
      try {
        const res = await limiter.consume(key, 1);
        return { allowed: true, remaining: res.remainingPoints };
      } catch (rejection) {
        if (rejection instanceof RateLimiterRes) {
          // Whole seconds, at least 1: Retry-After has no fractions (RFC 9110 §10.2.3).
          return { allowed: false, retryAfterSeconds: Math.max(1, Math.ceil(rejection.msBeforeNext / 1000)) };
        }
        throw storeFailed('rate_limit', rejection);
      }
    },
    async refund(key) {
      try {
        await limiter.reward(key, 1);
      } catch (error) {
        throw storeFailed('rate_limit', error);
      }
    },
  };
}
