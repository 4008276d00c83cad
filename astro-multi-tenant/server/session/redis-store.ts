import type { Redis, Cluster } from 'ioredis';
import { RateLimiterRedis } from 'rate-limiter-flexible';
import { attemptLimiterFrom } from './attempt-limiter.ts';
import { SessionStoreUnavailable, sessionKey, userIndexKey, type SessionRecord, type SessionStore } from './store.ts';

export interface RedisStoreOptions {
  client: Redis | Cluster;
  /** Called after every operation, for the session store metrics. */
  observe?: (operation: string, seconds: number, failed: boolean) => void;
}

/**
 * Sessions in Redis: `sess:<site>:<id>` holds the record as JSON with the idle TTL, slid on every
 * read (GETEX, one round trip); `sessu:<site>:<user>` is the set of that user's session ids, so
 * "sign out everywhere" is one SMEMBERS and one DEL. Sign-in attempts are counted under
 * `signin:<site>:<client>` by rate-limiter-flexible's Lua script, one atomic round trip shared by
 * every worker and machine. The client is built to fail fast (redis-client.ts): while Redis is down
 * every call rejects at once with SessionStoreUnavailable.
 */
export function createRedisSessionStore(options: RedisStoreOptions): SessionStore {
  const { client } = options;

  async function timed<T>(operation: string, work: () => Promise<T>): Promise<T> {
    const started = performance.now();
    try {
      const result = await work();
      options.observe?.(operation, (performance.now() - started) / 1000, false);
      return result;
    } catch (error) {
      options.observe?.(operation, (performance.now() - started) / 1000, true);
      throw new SessionStoreUnavailable(operation, error);
    }
  }

  return {
    kind: 'redis',
    create(record, idleTtlSeconds) {
      return timed('create', async () => {
        const index = userIndexKey(record.site, record.user);
        // The index lives as long as the longest session in it could.
        await client
          .multi()
          .set(sessionKey(record.site, record.id), JSON.stringify(record), 'EX', idleTtlSeconds)
          .sadd(index, record.id)
          .expire(index, idleTtlSeconds, 'GT')
          .expire(index, idleTtlSeconds, 'NX')
          .exec()
          .then(failOnReplyError);
      });
    },
    get(site, id, idleTtlSeconds) {
      return timed('get', async () => {
        const raw = await client.getex(sessionKey(site, id), 'EX', idleTtlSeconds);
        if (raw === null) return null;
        let record: SessionRecord;
        try {
          record = JSON.parse(raw) as SessionRecord;
        } catch {
          // A corrupt record is a missing session, not an outage.
          await client.del(sessionKey(site, id));
          return null;
        }
        // Belt and braces: the key already encodes the site.
        if (record.site !== site || record.id !== id) return null;
        await client.expire(userIndexKey(site, record.user), idleTtlSeconds, 'GT');
        return record;
      });
    },
    destroy(site, id) {
      return timed('destroy', async () => {
        const raw = await client.get(sessionKey(site, id));
        const multi = client.multi().del(sessionKey(site, id));
        if (raw) multi.srem(userIndexKey(site, (JSON.parse(raw) as SessionRecord).user), id);
        await multi.exec().then(failOnReplyError);
      });
    },
    destroyAllForUser(site, user) {
      return timed('destroy_all', async () => {
        const index = userIndexKey(site, user);
        const ids = await client.smembers(index);
        if (ids.length === 0) return 0;
        // One key at a time keeps this valid on Redis Cluster, where keys of a user may live on
        // different slots.
        let count = 0;
        for (const id of ids) count += await client.del(sessionKey(site, id));
        await client.del(index);
        return count;
      });
    },
    attemptLimiter(limit) {
      const limiter = new RateLimiterRedis({ storeClient: client, keyPrefix: 'signin', points: limit.maxAttempts, duration: limit.windowSeconds });
      const inner = attemptLimiterFrom(limiter, (_operation, error) => error as Error);
      // Timed like every other operation, so the session store metrics see the limiter too.
      return {
        take: (key) => timed('rate_limit', () => inner.take(key)),
        refund: (key) => timed('rate_limit', () => inner.refund(key)),
      };
    },
    ping() {
      return timed('ping', async () => {
        await client.ping();
      });
    },
    async close() {
      await client.quit().catch(() => client.disconnect());
    },
  };
}

type ExecResult = Array<[Error | null, unknown]> | null;

function failOnReplyError(result: ExecResult): Array<[Error | null, unknown]> {
  if (result === null) throw new Error('transaction aborted');
  for (const [error] of result) if (error) throw error;
  return result;
}
