import { RateLimiterMemory } from 'rate-limiter-flexible';
import { attemptLimiterFrom } from './attempt-limiter.ts';
import { SessionStoreUnavailable, sessionKey, userIndexKey, type SessionRecord, type SessionStore } from './store.ts';

/**
 * The embedded default for one process without REDIS_URL. Same semantics as the Redis store
 * (namespaced keys, sliding expiry, per-user index, atomic attempt counting), but nothing is shared
 * between processes, which is why a cluster of more than one worker refuses to start without Redis.
 * `now` drives session expiry; attempt windows run on rate-limiter-flexible's own clock (Date.now).
 */
export function createMemorySessionStore(now: () => number = Date.now): SessionStore {
  const sessions = new Map<string, { record: SessionRecord; expiresAt: number }>();
  const byUser = new Map<string, Set<string>>();

  function forget(key: string, record: SessionRecord) {
    sessions.delete(key);
    const index = userIndexKey(record.site, record.user);
    const ids = byUser.get(index);
    ids?.delete(record.id);
    if (ids?.size === 0) byUser.delete(index);
  }

  function sweep() {
    const t = now();
    for (const [key, entry] of sessions) if (entry.expiresAt <= t) forget(key, entry.record);
  }
  const timer = setInterval(sweep, 60_000);
  timer.unref();

  return {
    kind: 'memory',
    async create(record, idleTtlSeconds) {
      sessions.set(sessionKey(record.site, record.id), { record, expiresAt: now() + idleTtlSeconds * 1000 });
      const index = userIndexKey(record.site, record.user);
      if (!byUser.has(index)) byUser.set(index, new Set());
      byUser.get(index)!.add(record.id);
    },
    async get(site, id, idleTtlSeconds) {
      const entry = sessions.get(sessionKey(site, id));
      if (!entry) return null;
      if (entry.expiresAt <= now()) {
        forget(sessionKey(site, id), entry.record);
        return null;
      }
      entry.expiresAt = now() + idleTtlSeconds * 1000;
      return entry.record;
    },
    async destroy(site, id) {
      const entry = sessions.get(sessionKey(site, id));
      if (entry) forget(sessionKey(site, id), entry.record);
    },
    async destroyAllForUser(site, user) {
      const index = userIndexKey(site, user);
      const ids = byUser.get(index) ?? new Set<string>();
      let count = 0;
      for (const id of ids) if (sessions.delete(sessionKey(site, id))) count++;
      byUser.delete(index);
      return count;
    },
    attemptLimiter(limit) {
      // Increment and compare happen in one synchronous step, so within this one process they
      // cannot interleave (the same promise the Redis store keeps across processes).
      const limiter = new RateLimiterMemory({ keyPrefix: 'signin', points: limit.maxAttempts, duration: limit.windowSeconds });
      return attemptLimiterFrom(limiter, (operation, error) => new SessionStoreUnavailable(operation, error));
    },
    async ping() {},
    async close() {
      clearInterval(timer);
    },
  };
}
