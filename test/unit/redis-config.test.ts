import { describe, it, expect } from 'vitest';
import type { Redis } from 'ioredis';
import { loadConfig } from '../../astro-multi-tenant/server/config.ts';
import { PlatformError } from '../../astro-multi-tenant/server/errors.ts';
import { createRedisClient, failFastOptions, parseNodes, type RedisSettings } from '../../astro-multi-tenant/server/session/redis-client.ts';

const CWD = '/srv/platform';
const KEY = 'k'.repeat(32);

function rejected(run: () => unknown): PlatformError {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(PlatformError);
    expect((error as PlatformError).code).toBe('CONFIG_INVALID');
    return error as PlatformError;
  }
  throw new Error('expected a CONFIG_INVALID error');
}

const settings = (overrides: Partial<RedisSettings>): RedisSettings => ({ url: undefined, sentinels: [], sentinelName: undefined, clusterNodes: [], commandTimeoutMs: 250, ...overrides });

describe('parseNodes', () => {
  it('parses a comma-separated host:port list', () => {
    expect(parseNodes('redis-1:26379, redis-2:26380 ,10.0.0.3:6379', 'REDIS_SENTINELS')).toEqual([
      { host: 'redis-1', port: 26379 },
      { host: 'redis-2', port: 26380 },
      { host: '10.0.0.3', port: 6379 },
    ]);
  });

  it('parses bracketed IPv6 addresses and strips the brackets', () => {
    expect(parseNodes('[::1]:26379,[2001:db8::7]:6379', 'REDIS_SENTINELS')).toEqual([
      { host: '::1', port: 26379 },
      { host: '2001:db8::7', port: 6379 },
    ]);
  });

  it('returns no nodes for an unset or empty value', () => {
    expect(parseNodes(undefined, 'REDIS_SENTINELS')).toEqual([]);
    expect(parseNodes('', 'REDIS_SENTINELS')).toEqual([]);
    expect(parseNodes(' , ', 'REDIS_SENTINELS')).toEqual([]);
  });

  it('rejects entries that are not host:port, naming the field and the entry', () => {
    for (const entry of ['redis-1', 'redis-1:', ':6379', 'redis-1:port', '::1:26379', '[::1]', 'a b:1', 'redis-1:123456']) {
      const error = rejected(() => parseNodes(`ok:1,${entry}`, 'REDIS_CLUSTER_NODES'));
      expect(error.message, entry).toContain('REDIS_CLUSTER_NODES');
      expect(error.message).toContain(`"${entry.trim()}"`);
    }
  });

  it('rejects a port above 65535', () => {
    expect(rejected(() => parseNodes('redis:65536', 'REDIS_SENTINELS')).message).toContain('REDIS_SENTINELS');
    expect(parseNodes('redis:65535', 'REDIS_SENTINELS')).toEqual([{ host: 'redis', port: 65535 }]);
  });
});

describe('createRedisClient settings', () => {
  it('rejects a REDIS_URL with another scheme, naming REDIS_URL', () => {
    for (const url of ['http://redis:6379', 'tcp://redis:6379', 'unix:///tmp/redis.sock']) {
      const error = rejected(() => createRedisClient(settings({ url })));
      expect(error.message, url).toContain('REDIS_URL');
      expect(error.message).toContain('redis://');
    }
  });

  it('rejects a REDIS_URL that is not a URL, naming REDIS_URL', () => {
    const error = rejected(() => createRedisClient(settings({ url: 'redis://[not-an-address' })));
    expect(error.message).toContain('REDIS_URL');
    expect(error.message).toContain('is not a URL');
  });

  it('rejects a REDIS_URL whose database is not a number', () => {
    const error = rejected(() => createRedisClient(settings({ url: 'redis://redis:6379/sessions' })));
    expect(error.message).toContain('REDIS_URL');
    expect(error.message).toContain('"sessions"');
  });

  it('requires REDIS_SENTINEL_NAME when sentinels are given', () => {
    const error = rejected(() => createRedisClient(settings({ sentinels: [{ host: '127.0.0.1', port: 1 }] })));
    expect(error.message).toContain('REDIS_SENTINEL_NAME');
    expect(error.message).toContain('REDIS_SENTINELS');
  });

  it('takes host, port, credentials, database and TLS from a rediss:// URL', () => {
    const client = createRedisClient(settings({ url: 'rediss://app:p%40ss%3Aword@[::1]:1/3' })) as Redis;
    try {
      client.on('error', () => {});
      expect(client.options).toMatchObject({ host: '::1', port: 1, username: 'app', password: 'p@ss:word', db: 3, tls: {} });
    } finally {
      client.disconnect();
    }
  });

  it('defaults to port 6379 and database 0 and no TLS for redis://', () => {
    const client = createRedisClient(settings({ url: 'redis://127.0.0.1' })) as Redis;
    try {
      client.on('error', () => {});
      expect(client.options).toMatchObject({ host: '127.0.0.1', port: 6379, db: 0 });
      expect(client.options.tls).toBeUndefined();
    } finally {
      client.disconnect();
    }
  });

  it('builds a fail-fast client: no offline queue, no retries, the configured command timeout', () => {
    const client = createRedisClient(settings({ url: 'redis://127.0.0.1:1', commandTimeoutMs: 321 })) as Redis;
    try {
      client.on('error', () => {});
      expect(client.options).toMatchObject({ enableOfflineQueue: false, maxRetriesPerRequest: 0, commandTimeout: 321 });
    } finally {
      client.disconnect();
    }
  });

  it('keeps reconnecting in the background with a capped backoff', () => {
    const { retryStrategy, connectTimeout } = failFastOptions(250);
    expect(connectTimeout).toBe(1000);
    expect(failFastOptions(2000).connectTimeout).toBe(8000);
    const delays = [1, 2, 3, 4, 5, 50, 10_000].map((attempt) => retryStrategy!(attempt));
    expect(delays.every((d) => typeof d === 'number' && d > 0 && d <= 1000)).toBe(true);
    expect(delays.at(-1)).toBe(1000);
  });
});

describe('loadConfig: Redis and session settings', () => {
  it('has no Redis and no session keys by default', () => {
    const config = loadConfig({}, CWD);
    expect(config.redis).toBeUndefined();
    expect(config.sessionKeys).toBeUndefined();
  });

  it('uses the sign-in and session defaults', () => {
    const config = loadConfig({}, CWD);
    expect(config.signInMaxFailures).toBe(10);
    expect(config.signInWindowSeconds).toBe(900);
    expect(config.sessionMaxAgeSeconds).toBe(7 * 86_400);
  });

  it('reads SIGNIN_MAX_FAILURES, SIGNIN_WINDOW_S and SESSION_MAX_AGE_S', () => {
    const config = loadConfig({ SIGNIN_MAX_FAILURES: '5', SIGNIN_WINDOW_S: '60', SESSION_MAX_AGE_S: '3600' }, CWD);
    expect(config.signInMaxFailures).toBe(5);
    expect(config.signInWindowSeconds).toBe(60);
    expect(config.sessionMaxAgeSeconds).toBe(3600);
  });

  it('rejects sign-in limits out of range, naming the variable', () => {
    expect(rejected(() => loadConfig({ SIGNIN_MAX_FAILURES: '0' }, CWD)).message).toContain('SIGNIN_MAX_FAILURES');
    expect(rejected(() => loadConfig({ SIGNIN_WINDOW_S: '5' }, CWD)).message).toContain('SIGNIN_WINDOW_S');
    expect(rejected(() => loadConfig({ SIGNIN_WINDOW_S: 'soon' }, CWD)).message).toContain('SIGNIN_WINDOW_S');
    expect(rejected(() => loadConfig({ SESSION_MAX_AGE_S: '60' }, CWD)).message).toContain('SESSION_MAX_AGE_S');
  });

  it('reads REDIS_URL with the default 250 ms command timeout', () => {
    const config = loadConfig({ REDIS_URL: ' redis://cache:6379/2 ' }, CWD);
    expect(config.redis).toEqual({ url: 'redis://cache:6379/2', sentinels: [], sentinelName: undefined, clusterNodes: [], commandTimeoutMs: 250 });
    expect(config.redisUrl).toBe('redis://cache:6379/2');
  });

  it('reads REDIS_TIMEOUT_MS', () => {
    expect(loadConfig({ REDIS_URL: 'redis://cache', REDIS_TIMEOUT_MS: '500' }, CWD).redis?.commandTimeoutMs).toBe(500);
  });

  it('rejects a REDIS_TIMEOUT_MS that is not a whole number in 10..60000, naming it', () => {
    for (const value of ['fast', '5', '60001', '2.5']) {
      expect(rejected(() => loadConfig({ REDIS_URL: 'redis://cache', REDIS_TIMEOUT_MS: value }, CWD)).message, value).toContain('REDIS_TIMEOUT_MS');
    }
  });

  it('reads sentinels and the master name', () => {
    const config = loadConfig({ REDIS_SENTINELS: 's1:26379,[::1]:26380', REDIS_SENTINEL_NAME: ' mymaster ' }, CWD);
    expect(config.redis?.sentinels).toEqual([
      { host: 's1', port: 26379 },
      { host: '::1', port: 26380 },
    ]);
    expect(config.redis?.sentinelName).toBe('mymaster');
    expect(config.redis?.url).toBeUndefined();
  });

  it('refuses sentinels without a master name at load, before any worker starts', () => {
    expect(rejected(() => loadConfig({ REDIS_SENTINELS: 's1:26379' }, CWD)).message).toContain('REDIS_SENTINEL_NAME');
    expect(loadConfig({ REDIS_SENTINELS: 's1:26379', REDIS_SENTINEL_NAME: 'mymaster' }, CWD).redis?.sentinelName).toBe('mymaster');
  });

  it('refuses a REDIS_URL with a wrong scheme or database at load', () => {
    expect(rejected(() => loadConfig({ REDIS_URL: 'http://127.0.0.1:6379' }, CWD)).message).toContain('REDIS_URL');
    expect(rejected(() => loadConfig({ REDIS_URL: 'redis://127.0.0.1:6379/x' }, CWD)).message).toContain('REDIS_URL');
  });

  it('reads cluster seed nodes, with REDIS_URL only for credentials', () => {
    const config = loadConfig({ REDIS_CLUSTER_NODES: 'c1:7000,c2:7001', REDIS_URL: 'rediss://:pw@ignored:1' }, CWD);
    expect(config.redis?.clusterNodes).toEqual([
      { host: 'c1', port: 7000 },
      { host: 'c2', port: 7001 },
    ]);
    expect(config.redis?.url).toBe('rediss://:pw@ignored:1');
  });

  it('rejects sentinels and cluster nodes together, naming both', () => {
    const error = rejected(() => loadConfig({ REDIS_SENTINELS: 's1:26379', REDIS_SENTINEL_NAME: 'm', REDIS_CLUSTER_NODES: 'c1:7000' }, CWD));
    expect(error.message).toContain('REDIS_SENTINELS');
    expect(error.message).toContain('REDIS_CLUSTER_NODES');
  });

  it('rejects a malformed node list, naming its variable', () => {
    expect(rejected(() => loadConfig({ REDIS_SENTINELS: 'nohost' }, CWD)).message).toContain('REDIS_SENTINELS');
    expect(rejected(() => loadConfig({ REDIS_CLUSTER_NODES: 'c1:notaport' }, CWD)).message).toContain('REDIS_CLUSTER_NODES');
  });

  it('parses SESSION_KEYS, newest first', () => {
    const config = loadConfig({ SESSION_KEYS: `2025-06:${KEY}b,2025-01:${KEY}a` }, CWD);
    expect(config.sessionKeys?.current.kid).toBe('2025-06');
    expect([...config.sessionKeys!.byKid.keys()]).toEqual(['2025-06', '2025-01']);
  });

  it('treats a blank SESSION_KEYS as unset', () => {
    expect(loadConfig({ SESSION_KEYS: '   ' }, CWD).sessionKeys).toBeUndefined();
  });

  it('rejects SESSION_KEYS with a short secret, naming SESSION_KEYS', () => {
    expect(rejected(() => loadConfig({ SESSION_KEYS: 'k1:short' }, CWD)).message).toContain('SESSION_KEYS');
  });
});
