import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import { Redis, type Cluster } from 'ioredis';
import { createRedisClient, type RedisSettings } from '../../astro-multi-tenant/server/session/redis-client.ts';
import { createRedisSessionStore } from '../../astro-multi-tenant/server/session/redis-store.ts';
import { freePort } from '../../bench/processes.ts';
import { SessionStoreUnavailable, type SessionRecord, type SessionStore } from '../../astro-multi-tenant/server/session/store.ts';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function settings(url: string, commandTimeoutMs = 1000): RedisSettings {
  return { url, sentinels: [], sentinelName: undefined, clusterNodes: [], commandTimeoutMs };
}

async function ready(client: Redis | Cluster) {
  if (client.status !== 'ready') await once(client, 'ready');
}

/** A redis-server of this file's own (no persistence), or REDIS_URL when the environment gives one. */
let redisUrl: string;
let redisProcess: ChildProcess | undefined;
/** Inspects keys and TTLs behind the store's back. */
let admin: Redis;
let client: Redis | Cluster;
let store: SessionStore;
const observed: Array<{ operation: string; failed: boolean }> = [];

/** Unique per run, so a shared REDIS_URL never sees our keys collide with anyone else's. */
const run = randomBytes(4).toString('hex');
const ALPHA = `t${run}-alpha`;
const BETA = `t${run}-beta`;
const newSid = () => randomBytes(32).toString('base64url');

function record(site: string, id: string, user = 'alice@example.com'): SessionRecord {
  return { site, id, user, name: 'Alice', method: 'password', createdAt: 1_700_000_000_000 };
}

beforeAll(async () => {
  if (process.env.REDIS_URL) {
    redisUrl = process.env.REDIS_URL;
  } else {
    const port = await freePort();
    redisProcess = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', tmpdir()], { stdio: 'ignore' });
    redisUrl = `redis://127.0.0.1:${port}`;
    const probe = new Redis(redisUrl, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    probe.on('error', () => {});
    const started = Date.now();
    for (;;) {
      if (redisProcess.exitCode !== null) throw new Error(`redis-server exited with ${redisProcess.exitCode}`);
      try {
        await probe.connect();
        if ((await probe.ping()) === 'PONG') break;
      } catch {
        probe.disconnect();
      }
      if (Date.now() - started > 10_000) throw new Error('redis-server did not answer PING within 10 s');
      await sleep(50);
    }
    probe.disconnect();
  }
  admin = new Redis(redisUrl);
  client = createRedisClient(settings(redisUrl));
  client.on('error', () => {});
  await ready(client);
  store = createRedisSessionStore({ client, observe: (operation, _seconds, failed) => observed.push({ operation, failed }) });
});

afterAll(async () => {
  if (admin) {
    const keys = await admin.keys(`*t${run}-*`);
    if (keys.length > 0) await admin.del(...keys);
    await admin.quit();
  }
  await store?.close();
  if (redisProcess && redisProcess.exitCode === null) {
    const exited = once(redisProcess, 'exit');
    redisProcess.kill('SIGTERM');
    await exited;
  }
});

describe('redis session store against a real redis-server', () => {
  it('says it is the redis store and answers ping', async () => {
    expect(store.kind).toBe('redis');
    await expect(store.ping()).resolves.toBeUndefined();
  });

  it('returns a session it created', async () => {
    const id = newSid();
    await store.create(record(ALPHA, id), 60);
    expect(await store.get(ALPHA, id, 60)).toEqual(record(ALPHA, id));
  });

  it('stores the record as JSON under sess:<site>:<id> and indexes it under sessu:<site>:<user>', async () => {
    const id = newSid();
    await store.create(record(ALPHA, id, 'idp:7'), 60);
    expect(JSON.parse((await admin.get(`sess:${ALPHA}:${id}`))!)).toEqual(record(ALPHA, id, 'idp:7'));
    expect(await admin.smembers(`sessu:${ALPHA}:idp:7`)).toEqual([id]);
  });

  it('returns null for a session id it never saw', async () => {
    expect(await store.get(ALPHA, newSid(), 60)).toBeNull();
  });

  it('gives the session and the user index the idle TTL', async () => {
    const id = newSid();
    await store.create(record(ALPHA, id, 'ttl-user'), 5);
    const ttl = await admin.ttl(`sess:${ALPHA}:${id}`);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(5);
    const indexTtl = await admin.ttl(`sessu:${ALPHA}:ttl-user`);
    expect(indexTtl).toBeGreaterThan(0);
    expect(indexTtl).toBeLessThanOrEqual(5);
  });

  it('slides the expiry of the session and its index on every read', async () => {
    const id = newSid();
    await store.create(record(ALPHA, id, 'slide-user'), 5);
    expect(await store.get(ALPHA, id, 120)).not.toBeNull();
    expect(await admin.ttl(`sess:${ALPHA}:${id}`)).toBeGreaterThan(100);
    expect(await admin.ttl(`sessu:${ALPHA}:slide-user`)).toBeGreaterThan(100);
  });

  it('never shortens the user index below its longest-lived session', async () => {
    await store.create(record(ALPHA, newSid(), 'index-user'), 300);
    await store.create(record(ALPHA, newSid(), 'index-user'), 5);
    expect(await admin.ttl(`sessu:${ALPHA}:index-user`)).toBeGreaterThan(200);
  });

  it('forgets a session left idle past its TTL', async () => {
    const id = newSid();
    await store.create(record(ALPHA, id, 'idle-user'), 1);
    const deadline = Date.now() + 5000;
    while ((await admin.exists(`sess:${ALPHA}:${id}`)) === 1 && Date.now() < deadline) await sleep(100);
    expect(await store.get(ALPHA, id, 60)).toBeNull();
    // A read after expiry does not bring it back.
    expect(await admin.exists(`sess:${ALPHA}:${id}`)).toBe(0);
  });

  it('destroys one session and removes it from the user index', async () => {
    const [a, b] = [newSid(), newSid()];
    await store.create(record(ALPHA, a, 'destroy-user'), 60);
    await store.create(record(ALPHA, b, 'destroy-user'), 60);
    await store.destroy(ALPHA, a);
    expect(await store.get(ALPHA, a, 60)).toBeNull();
    expect(await store.get(ALPHA, b, 60)).not.toBeNull();
    expect(await admin.smembers(`sessu:${ALPHA}:destroy-user`)).toEqual([b]);
  });

  it('ignores destroying a session that does not exist', async () => {
    await expect(store.destroy(ALPHA, newSid())).resolves.toBeUndefined();
  });

  it('destroys every session of one user on one site and counts them', async () => {
    const [a, b, other] = [newSid(), newSid(), newSid()];
    await store.create(record(ALPHA, a, 'all-user'), 60);
    await store.create(record(ALPHA, b, 'all-user'), 60);
    await store.create(record(ALPHA, other, 'someone-else'), 60);
    expect(await store.destroyAllForUser(ALPHA, 'all-user')).toBe(2);
    expect(await store.get(ALPHA, a, 60)).toBeNull();
    expect(await store.get(ALPHA, b, 60)).toBeNull();
    expect(await store.get(ALPHA, other, 60)).not.toBeNull();
    expect(await admin.exists(`sessu:${ALPHA}:all-user`)).toBe(0);
    expect(await store.destroyAllForUser(ALPHA, 'all-user')).toBe(0);
  });

  // BUG (redis-store.ts:182-187): destroyAllForUser returns the size of the user index, which still
  // lists sessions whose keys already expired, so it over-counts where the memory store (and the
  // SessionStore contract, "how many there were") counts only live sessions. Fix: count the DEL
  // replies (`count += await client.del(sessionKey(site, id))`). Flip to it() once fixed.
  it('does not count sessions that already expired when signing out everywhere', async () => {
    const [expired, live] = [newSid(), newSid()];
    await store.create(record(ALPHA, expired, 'count-user'), 1);
    await store.create(record(ALPHA, live, 'count-user'), 60);
    const deadline = Date.now() + 5000;
    while ((await admin.exists(`sess:${ALPHA}:${expired}`)) === 1 && Date.now() < deadline) await sleep(100);
    expect(await store.destroyAllForUser(ALPHA, 'count-user')).toBe(1);
  });

  it('keeps the same user id\'s sessions on another site when signing out everywhere on one', async () => {
    const [a, b] = [newSid(), newSid()];
    await store.create(record(ALPHA, a, 'idp:42'), 60);
    await store.create(record(BETA, b, 'idp:42'), 60);
    expect(await store.destroyAllForUser(ALPHA, 'idp:42')).toBe(1);
    expect(await store.get(ALPHA, a, 60)).toBeNull();
    expect(await store.get(BETA, b, 60)).toEqual(record(BETA, b, 'idp:42'));
    expect(await admin.smembers(`sessu:${BETA}:idp:42`)).toEqual([b]);
  });

  it('does not find a session id from site A under site B', async () => {
    const id = newSid();
    await store.create(record(ALPHA, id), 60);
    expect(await store.get(BETA, id, 60)).toBeNull();
    await store.destroy(BETA, id);
    expect(await store.get(ALPHA, id, 60)).not.toBeNull();
  });

  it('refuses a record whose content names another site than its key', async () => {
    const id = newSid();
    await admin.set(`sess:${BETA}:${id}`, JSON.stringify(record(ALPHA, id)), 'EX', 60);
    expect(await store.get(BETA, id, 60)).toBeNull();
  });

  it('counts sign-in attempts atomically: of 60 at once from two clients, exactly the limit pass', async () => {
    const other = createRedisClient(settings(redisUrl));
    const otherStore = createRedisSessionStore({ client: other });
    try {
      await ready(other);
      // Two connections stand for two workers (or machines) sharing one Redis.
      const limit = { maxAttempts: 10, windowSeconds: 100 };
      const mine = store.attemptLimiter(limit);
      const theirs = otherStore.attemptLimiter(limit);
      const key = `${ALPHA}:192.0.2.1`;
      const decisions = await Promise.all(Array.from({ length: 60 }, (_, i) => (i % 2 ? mine : theirs).take(key)));
      expect(decisions.filter((d) => d.allowed)).toHaveLength(10);
      const refused = decisions.find((d) => !d.allowed);
      expect(refused).toMatchObject({ allowed: false });
      expect(refused!.allowed === false && refused!.retryAfterSeconds).toBeGreaterThan(90);
      expect(refused!.allowed === false && refused!.retryAfterSeconds).toBeLessThanOrEqual(100);
    } finally {
      await otherStore.close();
    }
  });

  it('keeps one fixed window that later attempts do not extend, under signin:<key>', async () => {
    const limiter = store.attemptLimiter({ maxAttempts: 5, windowSeconds: 100 });
    const key = `${ALPHA}:192.0.2.3`;
    await limiter.take(key);
    const ttl = await admin.ttl(`signin:${key}`);
    expect(ttl).toBeGreaterThan(90);
    expect(ttl).toBeLessThanOrEqual(100);
    // Pretend half the window has passed; the next attempts must not restart it.
    await admin.expire(`signin:${key}`, 50);
    await limiter.take(key);
    await limiter.take(key);
    expect(await admin.ttl(`signin:${key}`)).toBeLessThanOrEqual(50);
    expect(await admin.get(`signin:${key}`)).toBe('3');
  });

  it('starts counting again once the window has passed', async () => {
    const limiter = store.attemptLimiter({ maxAttempts: 1, windowSeconds: 1 });
    const key = `${ALPHA}:192.0.2.2`;
    expect((await limiter.take(key)).allowed).toBe(true);
    expect((await limiter.take(key)).allowed).toBe(false);
    const deadline = Date.now() + 5000;
    while ((await admin.exists(`signin:${key}`)) === 1 && Date.now() < deadline) await sleep(100);
    expect((await limiter.take(key)).allowed).toBe(true);
  });

  it('gives an attempt back on refund', async () => {
    const limiter = store.attemptLimiter({ maxAttempts: 1, windowSeconds: 60 });
    const key = `${ALPHA}:192.0.2.4`;
    expect((await limiter.take(key)).allowed).toBe(true);
    await limiter.refund(key);
    expect((await limiter.take(key)).allowed).toBe(true);
    expect((await limiter.take(key)).allowed).toBe(false);
  });

  it('reports each operation to observe as succeeded', async () => {
    observed.length = 0;
    const id = newSid();
    await store.create(record(ALPHA, id, 'observe-user'), 60);
    await store.get(ALPHA, id, 60);
    await store.destroy(ALPHA, id);
    await store.destroyAllForUser(ALPHA, 'observe-user');
    const limiter = store.attemptLimiter({ maxAttempts: 5, windowSeconds: 60 });
    await limiter.take(`${ALPHA}:observe`);
    await limiter.refund(`${ALPHA}:observe`);
    await store.ping();
    expect(observed).toEqual([
      { operation: 'create', failed: false },
      { operation: 'get', failed: false },
      { operation: 'destroy', failed: false },
      { operation: 'destroy_all', failed: false },
      { operation: 'rate_limit', failed: false },
      { operation: 'rate_limit', failed: false },
      { operation: 'ping', failed: false },
    ]);
  });
});

describe('redis session store when Redis is unreachable', () => {
  let deadClient: Redis | Cluster;
  let deadStore: SessionStore;
  const failures: Array<{ operation: string; failed: boolean }> = [];

  beforeAll(async () => {
    const port = await freePort();
    deadClient = createRedisClient(settings(`redis://127.0.0.1:${port}`, 200));
    deadClient.on('error', () => {});
    deadStore = createRedisSessionStore({ client: deadClient, observe: (operation, _seconds, failed) => failures.push({ operation, failed }) });
  });

  afterAll(async () => {
    await deadStore?.close();
  });

  const operations: Array<[string, string, (s: SessionStore) => Promise<unknown>]> = [
    ['create', 'create', (s) => s.create(record(ALPHA, newSid()), 60)],
    ['get', 'get', (s) => s.get(ALPHA, newSid(), 60)],
    ['destroy', 'destroy', (s) => s.destroy(ALPHA, newSid())],
    ['destroyAllForUser', 'destroy_all', (s) => s.destroyAllForUser(ALPHA, 'alice@example.com')],
    ['attemptLimiter().take', 'rate_limit', (s) => s.attemptLimiter({ maxAttempts: 5, windowSeconds: 60 }).take(`${ALPHA}:x`)],
    ['attemptLimiter().refund', 'rate_limit', (s) => s.attemptLimiter({ maxAttempts: 5, windowSeconds: 60 }).refund(`${ALPHA}:x`)],
    ['ping', 'ping', (s) => s.ping()],
  ];

  for (const [name, operation, call] of operations) {
    it(`rejects ${name} with SessionStoreUnavailable and reports it to observe as failed`, async () => {
      failures.length = 0;
      const error = await call(deadStore).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(SessionStoreUnavailable);
      expect((error as SessionStoreUnavailable).code).toBe('SESSION_STORE_UNAVAILABLE');
      expect((error as SessionStoreUnavailable).message).toContain(`during ${operation}`);
      expect((error as SessionStoreUnavailable).cause).toBeInstanceOf(Error);
      expect(failures).toEqual([{ operation, failed: true }]);
    });
  }

  it('keeps rejecting rather than queueing while Redis stays away', async () => {
    const results = await Promise.allSettled(Array.from({ length: 20 }, () => deadStore.get(ALPHA, newSid(), 60)));
    expect(results.every((r) => r.status === 'rejected' && r.reason instanceof SessionStoreUnavailable)).toBe(true);
  });

  it('closes and stops reconnecting even though it never connected', async () => {
    const port = await freePort();
    const other = createRedisClient(settings(`redis://127.0.0.1:${port}`, 200));
    other.on('error', () => {});
    const ended = once(other, 'end');
    // QUIT is refused while disconnected (no offline queue), so close() must fall back to disconnect().
    await expect(createRedisSessionStore({ client: other }).close()).resolves.toBeUndefined();
    await ended;
    expect(other.status).toBe('end');
  });
});
