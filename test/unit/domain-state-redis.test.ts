import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { redisForTests } from '../helpers/redis.ts';
import { createRedisDomainStateStore } from '../../astro-multi-tenant/server/tenant/domain-state-redis.ts';
import { createDomainVerifier } from '../../astro-multi-tenant/server/tenant/domain-verifier.ts';
import { verificationToken } from '../../astro-multi-tenant/server/tenant/domain-token.ts';

const SECRET = 'redis-domain-secret-0123456789abcdefgh';
let redis: { url: string; stop(): Promise<void> };
let clients: Redis[] = [];
const key = `amt:domains:test:${process.pid}:${Date.now()}`;

beforeAll(async () => {
  redis = await redisForTests();
}, 30_000);

afterAll(async () => {
  if (clients[0]) await clients[0].del(key);
  await Promise.all(clients.map((c) => c.quit()));
  await redis?.stop();
});

const client = () => {
  const c = new Redis(redis.url);
  clients.push(c);
  return c;
};

describe('the Redis domain state store', () => {
  it('shares records between machines: a domain verified by one is served by another that never looked it up', async () => {
    const lookups: string[] = [];
    const hosts = (): Array<[string, string]> => [['shop.example', 'acme']];
    const common = { secret: SECRET, hosts, recheckMs: 3_600_000, retryMs: 60_000, graceMs: 86_400_000, now: () => 1_000 };
    const one = createDomainVerifier({ ...common, store: createRedisDomainStateStore(client(), key), lookupTxt: async () => [verificationToken(SECRET, 'acme', 'shop.example')] });
    const two = createDomainVerifier({ ...common, store: createRedisDomainStateStore(client(), key), lookupTxt: async (name) => (lookups.push(name), []) });
    await one.tick();
    await two.tick();
    expect(lookups).toEqual([]);
    expect(two.allows('acme', 'shop.example')).toBe(true);
    expect(two.allows('other', 'shop.example')).toBe(false);
  });

  it('keeps the later check when two machines write the same domain, and skips fields it cannot read', async () => {
    const store = createRedisDomainStateStore(client(), key);
    await store.put(new Map([['a.example', { site: 'a', state: 'verified', checkedAt: 200 }]]));
    await store.put(new Map([['a.example', { site: 'a', state: 'pending', checkedAt: 100 }], ['b.example', { site: 'b', state: 'pending', checkedAt: 100 }]]));
    await clients[0]!.hset(key, 'broken.example', '{not json');
    const records = await store.load();
    expect(records.get('a.example')).toMatchObject({ state: 'verified', checkedAt: 200 });
    expect(records.get('b.example')).toMatchObject({ state: 'pending' });
    expect(records.has('broken.example')).toBe(false);
  });
});
