import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { startRedis, type RunningRedis } from '../helpers/redis.ts';
import { createRedisCertificateStore } from '../../astro-multi-tenant/server/tls/certificate-store-redis.ts';

/**
 * ioredis puts a failed command's arguments on the error it throws (`err.command.args`), and
 * pino's error serializer logs an error's own properties. A write of a certificate or an account
 * carries its private key, so a Redis that refuses writes (out of memory, a read-only replica)
 * must not hand that key to whoever logs the error. A real redis-server of the test's own, set to
 * refuse every write (maxmemory 1 byte, noeviction).
 */
let redis: RunningRedis;
let client: Redis;

beforeAll(async () => {
  redis = await startRedis();
  client = new Redis(redis.url);
  await client.config('SET', 'maxmemory-policy', 'noeviction');
  await client.config('SET', 'maxmemory', '1');
}, 30_000);

afterAll(async () => {
  await client?.quit();
  await redis?.stop();
});

const KEY = '-----BEGIN PRIVATE KEY-----\nsecret-key-material\n-----END PRIVATE KEY-----\n';

describe('the Redis certificate store, when Redis refuses a write', () => {
  it('throws an error that says why and carries no private key: not in its message, not in any property a logger would print', async () => {
    const store = createRedisCertificateStore(client, 'amt:acme:errors');
    const writes = [
      () => store.put('shop.test', { site: 'shop', serial: 'AB', notBefore: 0, notAfter: 1, failures: 0 }, { serial: 'AB', chainPem: 'CHAIN', keyPem: KEY }),
      () => store.putAccount({ directoryUrl: 'https://ca.test/dir', keyPem: KEY, url: 'https://ca.test/acct/1', createdAt: 0 }),
    ];
    for (const write of writes) {
      const error = await write().catch((e: unknown) => e);
      expect(error).toBeInstanceOf(Error);
      expect((error as Error).message).toMatch(/OOM/);
      const printed = JSON.stringify({ ...(error as object), message: (error as Error).message, stack: (error as Error).stack });
      expect(printed).not.toContain('secret-key-material');
    }
  });
});
