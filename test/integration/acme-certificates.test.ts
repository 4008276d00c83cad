import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile, spawnSync } from 'node:child_process';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { mkdtemp, readFile, readdir, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort } from '../../bench/processes.ts';
import { addSite } from '../helpers/site-folders.ts';
import { ROOT, copySites, get, removeDir, startServer, waitFor, type RunningServer } from '../helpers/server.ts';
import { startTestDns, type TestDns } from '../helpers/dns-server.ts';
import { startPebble, type RunningPebble } from '../helpers/pebble.ts';
import { verificationToken } from '../../astro-multi-tenant/server/tenant/domain-token.ts';
import { createFileCertificateStore } from '../../astro-multi-tenant/server/tls/certificate-store-file.ts';

const run = promisify(execFile);
const SECRET = 'acme-integration-secret-0123456789-abcdef';
const PLATFORM = 'sites.test';
/** Pebble's certificate lifetime here: renewal falls due two thirds in (10 s), expiry soon after. */
const VALIDITY_S = 15;

let dns: TestDns;
let pebble: RunningPebble;
let sitesDir: string;
let root: string;
let certsDir: string;
let port: number;
let server: RunningServer | undefined;

const env = () => ({
  PORT: String(port),
  PLATFORM_DOMAIN: PLATFORM,
  DOMAIN_VERIFICATION: 'dns',
  DOMAIN_TOKEN_SECRET: SECRET,
  DNS_SERVERS: dns.address,
  DOMAIN_RETRY_S: '1',
  STATE_DIR: join(root, 'state'),
  MARKDOWN_CACHE_DIR: 'off',
  ACME_DIRECTORY_URL: pebble.directoryUrl,
  ACME_EMAIL: 'ops@shop.test',
  CERTS_DIR: certsDir,
  NODE_EXTRA_CA_CERTS: pebble.caCertFile,
});

interface StatusJson {
  certificates?: Array<{ host: string; site: string; state: string; serial?: string; expiringSoon: boolean }>;
}

const status = async (s: RunningServer) => JSON.parse((await get(s.port, `shop.${PLATFORM}`, '/_platform/status.json')).body) as StatusJson;
const fileSerial = async () => new X509Certificate(await readFile(join(certsDir, 'shop.test.crt'), 'utf8')).serialNumber.toUpperCase();
const exists = (path: string) => stat(path).then(() => true, () => false);

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'amt-acme-'));
  certsDir = join(root, 'certs');
  sitesDir = await copySites();
  // Site "shop" claims shop.test, which needs proving (DOMAIN_VERIFICATION=dns) before it is served or certified.
  await addSite(sitesDir, 'shop', { name: 'Shop Test', domains: ['shop.test'] });
  dns = await startTestDns();
  port = await freePort();
  pebble = await startPebble({ dnsServer: dns.address, httpPort: port, certificateValiditySeconds: VALIDITY_S });
  server = await startServer(sitesDir, env());
}, 60_000);

afterAll(async () => {
  await server?.stop();
  await pebble?.stop();
  await dns?.stop();
  await removeDir(sitesDir);
  await removeDir(root);
}, 60_000);

describe('ACME certificates for verified custom domains, from a real CA (pebble) through HTTP-01 answered by the app', () => {
  it('orders nothing for a pending domain: shop.test answers 404 and no certificate appears', async () => {
    expect((await get(port, 'shop.test')).status).toBe(404);
    // A few verifier and manager ticks (DOMAIN_RETRY_S=1) pass without an order.
    await new Promise((r) => setTimeout(r, 2500));
    expect(await exists(join(certsDir, 'shop.test.crt'))).toBe(false);
    expect((await status(server!)).certificates?.find((c) => c.host === 'shop.test')).toBeUndefined();
    expect(server!.logs.join('\n')).not.toContain('certificate for shop.test');
  });

  it('once the TXT record proves the domain, pebble issues a certificate through HTTP-01 served by the app, and CERTS_DIR gets the chain and key that verify against pebble\'s root', async () => {
    await dns.setTxt('_amt-verify.shop.test', verificationToken(SECRET, 'shop', 'shop.test'));
    await waitFor(async () => (await get(port, 'shop.test')).status === 200, 10_000, 100);
    await waitFor(async () => server!.logs.some((l) => l.includes('certificate for shop.test issued')), 20_000, 100);
    // Pebble fetched the key authorisation from the app itself.
    await waitFor(async () => server!.logs.some((l) => l.includes('"route":"acme_challenge"') && l.includes('/.well-known/acme-challenge/')), 5000, 50);
    await waitFor(() => exists(join(certsDir, 'shop.test.crt')), 5000, 50);
    const chain = await readFile(join(certsDir, 'shop.test.crt'), 'utf8');
    const key = await readFile(join(certsDir, 'shop.test.key'), 'utf8');
    const leaf = new X509Certificate(chain);
    expect(leaf.subjectAltName).toBe('DNS:shop.test');
    expect(leaf.checkPrivateKey(createPrivateKey(key))).toBe(true);
    const rootFile = join(root, 'pebble-root.pem');
    await writeFile(rootFile, await pebble.rootPem());
    // The chain file carries the intermediate: the leaf verifies against the root alone.
    const verified = await run('openssl', ['verify', '-CAfile', rootFile, '-untrusted', join(certsDir, 'shop.test.crt'), join(certsDir, 'shop.test.crt')]);
    expect(verified.stdout).toContain(': OK');
    expect((await stat(join(certsDir, 'shop.test.key'))).mode & 0o777).toBe(0o640);
    // Only the managed names are in the folder (no temp files left behind).
    expect((await readdir(certsDir)).sort()).toEqual(['shop.test.crt', 'shop.test.key']);
  }, 40_000);

  it('the status page and the metrics show the certificate', async () => {
    const row = (await status(server!)).certificates?.find((c) => c.host === 'shop.test');
    expect(row).toMatchObject({ site: 'shop', serial: await fileSerial() });
    // A 15-second certificate is always within 14 days of expiry.
    expect(row?.expiringSoon).toBe(true);
    expect(['valid', 'due']).toContain(row?.state);
    const metrics = (await get(port, `shop.${PLATFORM}`, '/_platform/metrics')).body;
    expect(metrics).toMatch(/^amt_certificates\{state="(valid|due)"\} 1$/m);
    expect(metrics).toMatch(/^amt_certificate_earliest_expiry_seconds \d/m);
    // promtool (Debian's prometheus package) finds nothing wrong with the new series either.
    const lint = spawnSync('promtool', ['check', 'metrics'], { input: metrics, encoding: 'utf8' });
    expect(lint.status, `${lint.stdout}${lint.stderr}`).toBe(0);
  });

  it('npm run sites -- domains shop shows the domain verified and its certificate from the shared store', async () => {
    const { stdout } = await run(process.execPath, [join(ROOT, 'astro-multi-tenant/server/cli/sites.ts'), 'domains', 'shop'], { cwd: ROOT, env: { ...process.env, SITES_DIR: sitesDir, REDIS_URL: '', ...env() } });
    expect(stdout).toMatch(/^shop\.test \(domain\): verified$/m);
    expect(stdout).toMatch(/^ {2}certificate: (valid|due), expires \d{4}-\d\d-\d\d \(0 days\)/m);
  }, 20_000);

  it('renews a short-lived certificate before it expires, and CERTS_DIR follows with the new one', async () => {
    const first = await fileSerial();
    // Renewal is due at two thirds of the 15-second lifetime: well within one lifetime.
    await waitFor(async () => (await exists(join(certsDir, 'shop.test.crt'))) && (await fileSerial()) !== first, VALIDITY_S * 1000 + 10_000, 200);
    await waitFor(async () => server!.logs.some((l) => l.includes('certificate for shop.test renewed')), 5000, 50);
    const leaf = new X509Certificate(await readFile(join(certsDir, 'shop.test.crt'), 'utf8'));
    expect(Date.parse(leaf.validTo)).toBeGreaterThan(Date.now());
  }, 40_000);

  it('a server started after its certificate expired renews it at once', async () => {
    await server!.stop();
    server = undefined;
    const store = createFileCertificateStore({ dir: join(root, 'state'), sitesDir });
    const before = await store.get('shop.test');
    expect(before?.serial).toBeDefined();
    // Wait, with no server running, until the certificate in the shared store has really expired.
    await waitFor(async () => Date.now() > (before?.notAfter ?? 0) + 1000, VALIDITY_S * 1000 + 5000, 200);
    server = await startServer(sitesDir, env());
    await waitFor(async () => (await store.get('shop.test'))?.serial !== before?.serial, 20_000, 100);
    const after = await store.get('shop.test');
    expect(after!.notAfter!).toBeGreaterThan(Date.now());
    await waitFor(async () => (await fileSerial()) === after!.serial, 5000, 100);
  }, 60_000);

  it('when the CA forgets the account (pebble restarted: no accounts, a new root), a new account is registered and the next renewal goes through', async () => {
    const store = createFileCertificateStore({ dir: join(root, 'state'), sitesDir });
    const before = await store.getAccount(pebble.directoryUrl);
    expect(before?.url).toBeDefined();
    const serial = (await store.get('shop.test'))?.serial;
    await pebble.restart();
    await waitFor(async () => (await store.get('shop.test'))?.serial !== serial, VALIDITY_S * 1000 + 10_000, 200);
    const after = await store.getAccount(pebble.directoryUrl);
    expect(after?.url).toBeDefined();
    expect(after!.url).not.toBe(before!.url);
    // The new certificate chains to the restarted CA's new root, in CERTS_DIR too.
    await waitFor(async () => (await fileSerial()) === (await store.get('shop.test'))?.serial, 10_000, 100);
    const rootFile = join(root, 'pebble-root-2.pem');
    await writeFile(rootFile, await pebble.rootPem());
    const verified = await run('openssl', ['verify', '-CAfile', rootFile, '-untrusted', join(certsDir, 'shop.test.crt'), join(certsDir, 'shop.test.crt')]);
    expect(verified.stdout).toContain(': OK');
    expect(server!.logs.join('\n')).not.toMatch(/certificate for shop\.test not issued/);
  }, 40_000);

  it('a verified domain the CA cannot reach is recorded as a validation failure with a backoff, on the status page and in the metrics, while others keep theirs', async () => {
    await addSite(sitesDir, 'broken', { name: 'Broken', domains: ['broken.test'] });
    // Its A record points where nothing listens: pebble's HTTP-01 request is refused.
    await dns.addA('broken.test', ['127.0.0.2']);
    await dns.setTxt('_amt-verify.broken.test', verificationToken(SECRET, 'broken', 'broken.test'));
    await waitFor(async () => server!.logs.some((l) => l.includes('certificate for broken.test not issued: validation')), 20_000, 100);
    const row = (await status(server!)).certificates?.find((c) => c.host === 'broken.test') as { state: string; failures: number; lastError?: string; nextAttemptAt?: number } | undefined;
    expect(row).toMatchObject({ state: 'failed', failures: 1 });
    expect(row?.lastError).toMatch(/^connection: .*127\.0\.0\.2.*refused/);
    // The first retry waits two minutes: no second attempt within this test.
    expect(row!.nextAttemptAt! - Date.now()).toBeGreaterThan(60_000);
    const metrics = (await get(port, `shop.${PLATFORM}`, '/_platform/metrics')).body;
    expect(metrics).toMatch(/^amt_acme_errors_total\{kind="validation"\} 1$/m);
    expect(metrics).toMatch(/^amt_certificates\{state="failed"\} 1$/m);
    expect(await exists(join(certsDir, 'broken.test.crt'))).toBe(false);
    expect((await status(server!)).certificates?.find((c) => c.host === 'shop.test')?.state).toMatch(/^(valid|due)$/);
  }, 40_000);

  it('answers an HTTP-01 token from the shared store on its own host only; a malformed token is a 404', async () => {
    const store = createFileCertificateStore({ dir: join(root, 'state'), sitesDir });
    const token = 'tOkEn_0123456789-abcdefghijklmnop';
    await store.putChallenge(token, { host: 'shop.test', keyAuthorization: `${token}.thumbprint`, expiresAt: Date.now() + 60_000 });
    const res = await get(port, 'shop.test', `/.well-known/acme-challenge/${token}`);
    expect(res.status).toBe(200);
    expect(res.body).toBe(`${token}.thumbprint`);
    expect(res.headers['cache-control']).toBe('no-store');
    // Another host (even one the platform serves) never gets shop.test's answer.
    expect((await get(port, `shop.${PLATFORM}`, `/.well-known/acme-challenge/${token}`)).body).not.toContain('thumbprint');
    expect((await get(port, 'shop.test', '/.well-known/acme-challenge/tilde~is~not~base64url~0123')).status).toBe(404);
    await store.removeChallenge(token);
    expect((await get(port, 'shop.test', `/.well-known/acme-challenge/${token}`)).status).toBe(404);
  });
});
