import { Cluster, Redis, type RedisOptions } from 'ioredis';
import { PlatformError } from '../errors.ts';

export interface RedisSettings {
  /** redis://[:password@]host:port/db or rediss:// for TLS. */
  url: string | undefined;
  /** host:port list: connect through Sentinel to the master named `sentinelName`. */
  sentinels: Array<{ host: string; port: number }>;
  sentinelName: string | undefined;
  /** host:port list: Redis Cluster seed nodes (REDIS_URL then only supplies password / TLS). */
  clusterNodes: Array<{ host: string; port: number }>;
  /** Per-command timeout: how long a visitor can wait on Redis before getting an answer anyway. */
  commandTimeoutMs: number;
}

/** Parses `host:port,host:port` (REDIS_SENTINELS, REDIS_CLUSTER_NODES). */
export function parseNodes(raw: string | undefined, field: string): Array<{ host: string; port: number }> {
  return (raw ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map((entry) => {
      const match = /^(\[[0-9a-fA-F:]+\]|[^:\s]+):(\d{1,5})$/.exec(entry);
      if (!match || Number(match[2]) > 65535) throw new PlatformError('CONFIG_INVALID', `${field}: "${entry}" is not host:port`, entry);
      return { host: match[1]!.replace(/^\[|\]$/g, ''), port: Number(match[2]) };
    });
}

/**
 * Options that make Redis trouble cost a visitor a bounded few hundred milliseconds at most, never
 * a hang or a growing queue: no offline queue (commands fail at once while disconnected), no
 * per-command retries, a command timeout, and reconnection forever in the background so the server
 * recovers by itself when Redis is back.
 */
export function failFastOptions(commandTimeoutMs: number): RedisOptions {
  return {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    commandTimeout: commandTimeoutMs,
    connectTimeout: Math.max(1000, commandTimeoutMs * 4),
    retryStrategy: (attempt: number) => Math.min(100 * 2 ** Math.min(attempt, 4), 1000),
    enableReadyCheck: true,
    lazyConnect: false,
  };
}

export function createRedisClient(settings: RedisSettings): Redis | Cluster {
  const base = failFastOptions(settings.commandTimeoutMs);
  const { host, port, ...credentials } = settings.url ? urlOptions(settings.url) : ({} as RedisOptions);
  if (settings.clusterNodes.length > 0) {
    const { retryStrategy, enableOfflineQueue: _q, ...perNode } = base;
    return new Cluster(settings.clusterNodes, {
      enableOfflineQueue: false,
      clusterRetryStrategy: (attempt: number) => retryStrategy?.(attempt) ?? 1000,
      redisOptions: { ...perNode, ...credentials },
    });
  }
  if (settings.sentinels.length > 0) {
    if (!settings.sentinelName) throw new PlatformError('CONFIG_INVALID', 'REDIS_SENTINEL_NAME: required when REDIS_SENTINELS is set', undefined);
    const options: RedisOptions = { ...base, ...credentials, sentinels: settings.sentinels, name: settings.sentinelName };
    return new Redis(options);
  }
  const options: RedisOptions = { ...base, ...credentials, host, port };
  return new Redis(options);
}

/** Checks REDIS_URL (scheme, host, database) without connecting; throws CONFIG_INVALID naming it. */
export function urlOptions(url: string): RedisOptions {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new PlatformError('CONFIG_INVALID', `REDIS_URL: "${url}" is not a URL`, url);
  }
  if (parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:') {
    throw new PlatformError('CONFIG_INVALID', `REDIS_URL: scheme must be redis:// or rediss://, not ${parsed.protocol}`, url);
  }
  const db = parsed.pathname.replace(/^\//, '');
  if (db !== '' && !/^\d+$/.test(db)) throw new PlatformError('CONFIG_INVALID', `REDIS_URL: database "${db}" is not a number`, url);
  return {
    host: parsed.hostname.replace(/^\[|\]$/g, '') || '127.0.0.1',
    port: parsed.port ? Number(parsed.port) : 6379,
    username: parsed.username ? decodeURIComponent(parsed.username) : undefined,
    password: parsed.password ? decodeURIComponent(parsed.password) : undefined,
    db: db === '' ? 0 : Number(db),
    ...(parsed.protocol === 'rediss:' ? { tls: {} } : {}),
  };
}

/**
 * Logs Redis connection trouble without flooding: ioredis retries every second while Redis is
 * away, so one warning per `quietMs` (30 s) is enough to see it, and one line when it is back.
 */
export function logRedisConnection(client: Redis | Cluster, logger: { warn: (o: object, m: string) => void; info: (m: string) => void }, quietMs = 30_000, now: () => number = Date.now): void {
  let lastWarning = 0;
  client.on('error', (error: Error) => {
    if (now() - lastWarning < quietMs) return;
    lastWarning = now();
    logger.warn({ err: error.message }, `redis connection problem (repeats are silenced for ${Math.round(quietMs / 1000)} s)`);
  });
  client.on('ready', () => {
    if (lastWarning) logger.info('redis connection restored');
    lastWarning = 0;
  });
}
