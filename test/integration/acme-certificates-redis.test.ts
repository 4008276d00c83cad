import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, readFile, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { freePort } from '../../bench/processes.ts';
import { addSite } from '../helpers/site-folders.ts';
import { ROOT, copySites, get, removeDir, startServer, waitFor, type RunningServer } from '../helpers/server.ts';
import { startTestDns, type TestDns } from '../helpers/dns-server.ts';
import { startPebble, type RunningPebble } from '../helpers/pebble.ts';
import { redisForTests } from '../helpers/redis.ts';
import { verificationToken } from '../../astro-multi-tenant/server/tenant/domain-token.ts';

const run = promisify(execFile);
const SECRET = 'acme-redis-integration-secret-0123456789';
const PLATFORM = 'sites.test';

let dns: TestDns;
let pebble: RunningPebble;
let redis: { url: string; stop(): Promise<void> };
let cleaner: Redis;
let sitesDir: string;
let edgeSitesDir: string;
let root: string;
let portOne: number;
const started: RunningServer[] = [];

/** Each server as a machine of its own: its own STATE_DIR and CERTS_DIR; only Redis is shared. */
const env = (name: string, port: number, dnsServers: string) => ({
  PORT: String(port),
  PLATFORM_DOMAIN: PLATFORM,
  DOMAIN_VERIFICATION: 'dns',
  DOMAIN_TOKEN_SECRET: SECRET,
  DNS_SERVERS: dnsServers,
  DOMAIN_RETRY_S: '1',
  STATE_DIR: join(root, name, 'state'),
  CERTS_DIR: join(root, name, 'certs'),
  MARKDOWN_CACHE_DIR: 'off',
  REDIS_URL: redis.url,
  SESSION_KEYS: 'k1:acme-redis-test-signing-secret-0123456789',
  ACME_DIRECTORY_URL: pebble.directoryUrl,
  NODE_EXTRA_CA_CERTS: pebble.caCertFile,
});

async function dropAcmeKeys(): Promise<void> {
  const keys = await cleaner.keys('amt:acme:*');
  if (keys.length > 0) await cleaner.del(...keys);
}

beforeAll(async () => {
  [dns, redis] = await Promise.all([startTestDns(), redisForTests()]);
  cleaner = new Redis(redis.url);
  // A Redis shared with earlier runs (REDIS_URL in CI) may hold their certificates for shop.test.
  await dropAcmeKeys();
  root = await mkdtemp(join(tmpdir(), 'amt-acme-redis-'));
  sitesDir = await copySites();
  // Machine one's copy of the sites has no shop site (a machine that has not loaded it yet).
  edgeSitesDir = await copySites();
  await addSite(sitesDir, 'shop', { name: 'Shop Test', domains: ['shop.test'] });
  portOne = await freePort();
  pebble = await startPebble({ dnsServer: dns.address, httpPort: portOne });
}, 60_000);

afterAll(async () => {
  await Promise.all(started.map((s) => s.stop()));
  await pebble?.stop();
  await dns?.stop();
  if (cleaner) {
    await dropAcmeKeys();
    await cleaner.quit();
  }
  await redis?.stop();
  await removeDir(sitesDir);
  await removeDir(edgeSitesDir);
  await removeDir(root);
}, 60_000);

const one = () => started[0]!;
const two = () => started[1]!;

describe('certificates shared through Redis (REDIS_URL): one order, every machine answers and gets the files', () => {
  it('a machine that does not serve the domain answers the CA\'s HTTP-01 request from Redis, and both machines\' CERTS_DIRs get the same certificate', async () => {
    // Machine one takes the CA's validation requests (pebble's httpPort) but has not loaded the shop
    // site, so it never orders for shop.test; machine two serves it, verifies it and orders.
    const one = await startServer(edgeSitesDir, env('one', portOne, dns.address));
    started.push(one);
    const two = await startServer(sitesDir, env('two', 0, dns.address));
    started.push(two);
    await dns.setTxt('_amt-verify.shop.test', verificationToken(SECRET, 'shop', 'shop.test'));
    await waitFor(async () => two.logs.some((l) => l.includes('certificate for shop.test issued')), 20_000, 100);
    expect(one.logs.join('\n')).not.toContain('certificate for shop.test issued');
    // The CA's request reached machine one, which answered it from Redis.
    await waitFor(async () => one.logs.some((l) => l.includes('"route":"acme_challenge"')), 5000, 50);
    expect(one.logs.find((l) => l.includes('"route":"acme_challenge"'))).toContain('"status":200');
    // Machine one follows the store within its poll (5 s), without ordering.
    await waitFor(async () => (await readdir(join(root, 'one', 'certs')).catch(() => [] as string[])).includes('shop.test.crt'), 10_000, 100);
    for (const file of ['shop.test.crt', 'shop.test.key']) {
      expect(await readFile(join(root, 'one', 'certs', file), 'utf8'), file).toBe(await readFile(join(root, 'two', 'certs', file), 'utf8'));
    }
    expect((await get(two.port, 'shop.test')).status).toBe(200);
  }, 60_000);

  it('npm run sites -- revoke-certificate revokes at the CA, and the servers replace the certificate on both machines', async () => {
    const serialIn = async (name: string) => new X509Certificate(await readFile(join(root, name, 'certs', 'shop.test.crt'), 'utf8')).serialNumber.toUpperCase();
    const revoked = await serialIn('one');
    const { stdout } = await run(process.execPath, [join(ROOT, 'astro-multi-tenant/server/cli/sites.ts'), 'revoke-certificate', 'shop.test'], { cwd: ROOT, env: { ...process.env, SITES_DIR: sitesDir, ...env('two', 0, dns.address) } });
    expect(stdout).toContain(`revoked shop.test (serial ${revoked})`);
    // Pebble's own record of the certificate says revoked (its management API; serial as Go prints it).
    const pebbleStatus = await pebble.manage(`/cert-status-by-serial/${revoked.toLowerCase().replace(/^0+/, '')}`);
    expect(JSON.parse(pebbleStatus.body)).toMatchObject({ Status: 'Revoked' });
    // Pebble's certificates here last five years: only the revocation can make a new one.
    for (const name of ['one', 'two']) await waitFor(async () => (await serialIn(name)) !== revoked, 15_000, 100);
    expect(await serialIn('one')).toBe(await serialIn('two'));
    expect([...one().logs, ...two().logs].some((l) => l.includes('certificate for shop.test renewed'))).toBe(true);
  }, 40_000);
});
