import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { copySites, get, removeDir, startServer, waitFor, type RunningServer } from '../helpers/server.ts';
import { startTestDns, type TestDns } from '../helpers/dns-server.ts';
import { redisForTests } from '../helpers/redis.ts';
import { verificationToken } from '../../astro-multi-tenant/server/tenant/domain-token.ts';

const SECRET = 'redis-integration-secret-0123456789-abcdef';
const PLATFORM = 'sites.test';

let dns: TestDns;
let redis: { url: string; stop(): Promise<void> };
let sitesDir: string;
let stateRoot: string;
const started: RunningServer[] = [];

/** Each server its own STATE_DIR, as on separate machines: only Redis is shared. */
const env = (name: string, dnsServers: string) => ({
  PLATFORM_DOMAIN: PLATFORM,
  DOMAIN_VERIFICATION: 'dns',
  DOMAIN_TOKEN_SECRET: SECRET,
  DNS_SERVERS: dnsServers,
  DOMAIN_RETRY_S: '1',
  STATE_DIR: join(stateRoot, name),
  MARKDOWN_CACHE_DIR: 'off',
  REDIS_URL: redis.url,
  SESSION_KEYS: 'k1:domain-redis-test-signing-secret-0123456789',
});

beforeAll(async () => {
  [dns, redis] = await Promise.all([startTestDns(), redisForTests()]);
  sitesDir = await copySites();
  stateRoot = await mkdtemp(join(tmpdir(), 'amt-dv-redis-'));
}, 60_000);

afterAll(async () => {
  await Promise.all(started.map((s) => s.stop()));
  await dns?.stop();
  await redis?.stop();
  await removeDir(sitesDir);
  await removeDir(stateRoot);
}, 60_000);

describe('custom domain checks shared through Redis (REDIS_URL), one state for every machine', () => {
  it('a domain verified by one machine is served by another that has no DNS server and no state file in common', async () => {
    const one = await startServer(sitesDir, env('one', dns.address));
    started.push(one);
    expect((await get(one.port, 'acme.example')).status).toBe(404);
    await dns.setTxt('_amt-verify.acme.example', verificationToken(SECRET, 'acme', 'acme.example'));
    await waitFor(async () => (await get(one.port, 'acme.example')).status === 200, 10_000, 100);

    const two = await startServer(sitesDir, env('two', '127.0.0.1:9'));
    started.push(two);
    expect((await get(two.port, 'acme.example')).status).toBe(200);
    expect((await get(two.port, 'www.acme.example')).status).toBe(404);
  }, 45_000);
});
