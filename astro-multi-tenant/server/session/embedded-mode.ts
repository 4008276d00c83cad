/**
 * Why this process must not start in its current mode, or undefined. Without Redis, sessions live
 * in one process's memory: under a PM2 cluster of several workers a visitor would be signed in on
 * one worker and not on the next, so we refuse instead of half-working. The same goes for Redis
 * without shared SESSION_KEYS: each worker would sign cookies the others reject.
 */
export function clusterProblem(env: Record<string, string | undefined>, hasRedis: boolean, hasKeys: boolean): string | undefined {
  const clustered = env.exec_mode === 'cluster_mode' && env.instances !== undefined && Number(env.instances) !== 1;
  if (clustered && !hasRedis) {
    return `PM2 runs ${env.instances} instances but REDIS_URL is not set: sessions would not be shared between workers. Set REDIS_URL (and SESSION_KEYS), or run one instance (INSTANCES=1).`;
  }
  if (hasRedis && !hasKeys) {
    return 'SESSION_KEYS is required when Redis is configured: every worker and machine must sign and verify session cookies with the same keys (format kid:secret, secret at least 32 bytes).';
  }
  return undefined;
}
