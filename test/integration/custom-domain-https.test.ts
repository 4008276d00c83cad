import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { cp, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { copySites, get, removeDir, startServer, waitFor, type RunningServer } from '../helpers/server.ts';
import { startNginx, type RunningNginx } from '../helpers/nginx.ts';
import { startTestDns, type TestDns } from '../helpers/dns-server.ts';
import { startPebble, type RunningPebble } from '../helpers/pebble.ts';
import { freePort } from '../helpers/cluster.ts';
import { childPids } from '../../bench/processes.ts';
import { verificationToken } from '../../astro-multi-tenant/server/tenant/domain-token.ts';
import { TEST_DOMAIN_SECRET as SECRET, TEST_PLATFORM as PLATFORM, dnsModeEnv, tlsHandshake } from '../helpers/custom-domains.ts';

/** The serial of the certificate nginx presents for `servername`, or undefined when it refuses the handshake. */
const servedSerial = async (port: number, servername: string) => (await tlsHandshake(port, servername)).serial;

const run = promisify(execFile);
/** Short-lived certificates, so the same run sees one renewed: the app renews at two thirds of the lifetime. */
const VALIDITY_S = 20;

/**
 * The whole path with real parts: the app (DOMAIN_VERIFICATION=dns, ACME against pebble, CERTS_DIR)
 * behind the generated nginx, pebble validating HTTP-01 through nginx's plain-HTTP port, and
 * pebble-challtestsrv answering the TXT records and resolving every name to 127.0.0.1.
 */
describe('a custom domain end to end: verified by DNS, certified by ACME through nginx, served over TLS with no reload', () => {
  let dns: TestDns;
  let pebble: RunningPebble;
  let sitesDir: string;
  let work: string;
  let certsDir: string;
  let app: RunningServer;
  let edge: RunningNginx;
  let httpPort: number;
  let tlsPort: number;
  let rootFile: string;
  let workers: number[];

  beforeAll(async () => {
    dns = await startTestDns();
    httpPort = await freePort();
    tlsPort = await freePort();
    pebble = await startPebble({ dnsServer: dns.address, httpPort, certificateValiditySeconds: VALIDITY_S });
    work = await mkdtemp(join(tmpdir(), 'amt-e2e-https-'));
    certsDir = join(work, 'certs');
    rootFile = join(work, 'pebble-root.pem');
    sitesDir = await copySites();
    // shop.test's site, and a squatter listing the same domain whose id sorts first.
    for (const [id, name] of [['shop', 'Shop Of Tests'], ['aaa', 'Copycat']] as const) {
      await cp(join(sitesDir, 'blog'), join(sitesDir, id), { recursive: true });
      await writeFile(join(sitesDir, id, 'site.json'), JSON.stringify({ name, domains: ['shop.test'] }));
    }
    app = await startServer(sitesDir, {
      ...dnsModeEnv(dns.address, join(work, 'state')),
      ACME_DIRECTORY_URL: pebble.directoryUrl,
      ACME_EMAIL: 'ops@sites.test',
      NODE_EXTRA_CA_CERTS: pebble.caCertFile,
      CERTS_DIR: certsDir,
    });
    edge = await startNginx(app.port, sitesDir, { CERTS_DIR: certsDir, NGINX_LISTEN: `127.0.0.1:${httpPort}`, NGINX_TLS_LISTEN: `127.0.0.1:${tlsPort}`, PLATFORM_DOMAIN: PLATFORM });
    workers = childPids(edge.pid).sort();
  }, 90_000);

  afterAll(async () => {
    await edge?.stop();
    await app?.stop();
    await pebble?.stop();
    await dns?.stop();
    await removeDir(sitesDir);
    if (work) await rm(work, { recursive: true, force: true });
  }, 60_000);

  const curl = (...args: string[]) => run('curl', ['-sS', '--max-time', '10', '--resolve', `shop.test:${tlsPort}:127.0.0.1`, '--cacert', rootFile, ...args]);

  it('keeps shop.test pending until its TXT record appears: 404 over HTTP, ask 404, no certificate', async () => {
    // pebble's plain-HTTP validation port is nginx's (nginx answers the platform's health probe there).
    expect((await get(httpPort, 'localhost', '/_platform/healthz')).status).toBe(200);
    expect((await get(httpPort, 'shop.test', '/')).status).toBe(404);
    expect((await get(app.port, 'localhost', '/_platform/tls/ask?domain=shop.test')).status).toBe(404);
    await new Promise((r) => setTimeout(r, 2000));
    expect(existsSync(join(certsDir, 'shop.test.crt'))).toBe(false);
    expect(await servedSerial(tlsPort, 'shop.test')).toBeUndefined();
  });

  it('verifies it, gets its certificate by HTTP-01 through nginx, and serves the site over TLS to curl with no nginx reload', async () => {
    await dns.setTxt('_amt-verify.shop.test', verificationToken(SECRET, 'shop', 'shop.test'));
    await waitFor(async () => app.logs.some((line) => line.includes('certificate for shop.test issued')), 30_000, 100);
    await waitFor(async () => existsSync(join(certsDir, 'shop.test.crt')), 10_000, 50);
    expect((await get(app.port, 'localhost', '/_platform/tls/ask?domain=shop.test')).status).toBe(200);
    // pebble fetched the token through nginx: its access log has the challenge, answered 200.
    await waitFor(async () => (await run('cat', [join(edge.options.outDir, 'access.log')])).stdout.split('\n').some((l) => l.includes('/.well-known/acme-challenge/') && l.includes('"status":200')), 5000);

    await writeFile(rootFile, await pebble.rootPem());
    const { stdout } = await curl('-w', '\n%{http_code}', `https://shop.test:${tlsPort}/`);
    expect(stdout.trim().endsWith('200')).toBe(true);
    expect(stdout).toContain('Shop Of Tests');
    // The squatter listing the same domain gets nothing.
    expect(stdout).not.toContain('Copycat');
    expect(childPids(edge.pid).sort()).toEqual(workers);
  });

  it('redirects plain HTTP to HTTPS now that the certificate exists, and still answers ACME challenges on HTTP', async () => {
    const page = await get(httpPort, 'shop.test', '/about?x=1');
    expect(page.status).toBe(308);
    expect(page.headers.location).toBe(`https://shop.test:${tlsPort}/about?x=1`);
    expect((await get(httpPort, 'shop.test', '/.well-known/acme-challenge/not-a-token_0123456789abcdef')).status).toBe(404);
  });

  it('serves the renewed certificate when the short-lived one is replaced, still with no reload', async () => {
    const first = await servedSerial(tlsPort, 'shop.test');
    expect(first).toBeTruthy();
    await waitFor(async () => app.logs.some((line) => line.includes('certificate for shop.test renewed')), 30_000, 200);
    await waitFor(async () => {
      const serial = await servedSerial(tlsPort, 'shop.test');
      return serial !== undefined && serial !== first;
    }, 10_000, 100);
    const { stdout } = await curl('-o', '/dev/null', '-w', '%{http_code}', `https://shop.test:${tlsPort}/`);
    expect(stdout).toBe('200');
    expect(childPids(edge.pid).sort()).toEqual(workers);
  });
});
