import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { copySites, get, removeDir, startServer, waitFor, type RunningServer } from '../helpers/server.ts';
import { startTestDns, type TestDns } from '../helpers/dns-server.ts';
import { sitesCli as runSitesCli } from '../helpers/custom-domains.ts';
import { createTxtLookup } from '../../astro-multi-tenant/server/tenant/domain-dns.ts';
import { verificationToken } from '../../astro-multi-tenant/server/tenant/domain-token.ts';

const SECRET = 'integration-secret-0123456789-abcdefghij';
const PLATFORM = 'sites.test';

let dns: TestDns;
let sitesDir: string;
let stateRoot: string;
let one: RunningServer;
const started: RunningServer[] = [];

const env = (dnsServers: string) => ({
  PLATFORM_DOMAIN: PLATFORM,
  DOMAIN_VERIFICATION: 'dns',
  DOMAIN_TOKEN_SECRET: SECRET,
  DNS_SERVERS: dnsServers,
  DOMAIN_RETRY_S: '1',
  STATE_DIR: join(stateRoot, 'state'),
  MARKDOWN_CACHE_DIR: 'off',
});

/** `npm run sites -- <args>` against the test's sites and state, through the given DNS server. */
function sitesCli(args: string[], dnsServers: string): Promise<{ code: number | null; out: string }> {
  return runSitesCli(args, { SITES_DIR: sitesDir, ...env(dnsServers) });
}

beforeAll(async () => {
  dns = await startTestDns();
  sitesDir = await copySites();
  stateRoot = await mkdtemp(join(tmpdir(), 'amt-dv-state-'));
  one = await startServer(sitesDir, env(dns.address));
  started.push(one);
}, 60_000);

afterAll(async () => {
  await Promise.all(started.map((s) => s.stop()));
  await dns?.stop();
  await removeDir(sitesDir);
  await removeDir(stateRoot);
}, 60_000);

describe('custom domains with DOMAIN_VERIFICATION=dns, over a real DNS server', () => {
  it('the test DNS server answers TXT lookups through DNS_SERVERS', async () => {
    await dns.setTxt('_amt-verify.probe.test', 'hello');
    expect(await createTxtLookup({ servers: [dns.address] })('_amt-verify.probe.test')).toEqual(['hello']);
  });

  it('does not serve pending domains or aliases (404 like an unknown host), but serves the platform subdomain', async () => {
    for (const host of ['acme.example', 'www.acme.example', 'acme-tools.example', 'sweet-crumbs.example']) {
      const res = await get(one.port, host);
      expect(res.status, host).toBe(404);
      expect(res.body, host).not.toContain('Acme Tools');
    }
    for (const site of ['acme', 'blog', 'bakery']) expect((await get(one.port, `${site}.${PLATFORM}`)).status, site).toBe(200);
  });

  it('a wrong token keeps the domain pending', async () => {
    await dns.setTxt('_amt-verify.acme-tools.example', verificationToken(SECRET, 'blog', 'acme-tools.example'));
    await new Promise((r) => setTimeout(r, 3000));
    expect((await get(one.port, 'acme-tools.example')).status).toBe(404);
  });

  it('serves a domain within seconds of its TXT record carrying the site token, and an alias redirects to it', async () => {
    await dns.setTxt('_amt-verify.acme.example', verificationToken(SECRET, 'acme', 'acme.example'));
    const tookMs = await waitFor(async () => (await get(one.port, 'acme.example')).status === 200, 10_000, 100);
    expect(tookMs).toBeLessThan(10_000);
    expect((await get(one.port, 'acme.example')).body).toContain('Acme Tools');
    expect((await get(one.port, 'www.acme.example')).status).toBe(404);
    await dns.setTxt('_amt-verify.www.acme.example', verificationToken(SECRET, 'acme', 'www.acme.example'));
    await waitFor(async () => (await get(one.port, 'www.acme.example')).status === 301, 10_000, 100);
    expect((await get(one.port, 'www.acme.example')).headers.location).toMatch(/^https?:\/\/acme\.example\//);
    // Another domain's record proves nothing for its neighbours.
    expect((await get(one.port, 'acme-tools.example')).status).toBe(404);
  }, 30_000);

  it('npm run sites -- domains <id> prints each domain\'s state and the exact records to create, and its check is what the servers use', async () => {
    const { code, out } = await sitesCli(['domains', 'acme'], dns.address);
    expect(code, out).toBe(0);
    expect(out).toMatch(/^acme\.example \(domain\): verified$/m);
    expect(out).toMatch(/^www\.acme\.example \(alias\): verified$/m);
    expect(out).toMatch(/^acme-tools\.example \(alias\): pending$/m);
    expect(out).toContain("does not carry this site's token");
    for (const host of ['acme.example', 'www.acme.example', 'acme-tools.example']) {
      expect(out).toContain(`_amt-verify.${host}.`.padEnd(40) + ` TXT   "${verificationToken(SECRET, 'acme', host)}"`);
      expect(out).toContain(`${host}.`.padEnd(40) + ` CNAME acme.${PLATFORM}.`);
    }
    // The operator fixes the record and runs the command: it checks now, and the servers follow.
    await dns.setTxt('_amt-verify.acme-tools.example', verificationToken(SECRET, 'acme', 'acme-tools.example'));
    expect((await sitesCli(['domains', 'acme'], dns.address)).out).toMatch(/^acme-tools\.example \(alias\): verified$/m);
    await waitFor(async () => (await get(one.port, 'acme-tools.example')).status === 301, 10_000, 100);
    expect((await sitesCli(['domains', 'nope'], dns.address)).code).toBe(2);
  }, 30_000);

  it('a second server process that cannot reach any DNS server agrees, from the shared state file', async () => {
    // 127.0.0.1:9 (discard) answers no DNS: whatever it serves, it learnt from STATE_DIR.
    const two = await startServer(sitesDir, env('127.0.0.1:9'));
    started.push(two);
    expect((await get(two.port, 'acme.example')).status).toBe(200);
    expect((await get(two.port, 'www.acme.example')).status).toBe(301);
    expect((await get(two.port, 'acme-tools.example')).status).toBe(301);
    expect((await get(two.port, 'sweet-crumbs.example')).status).toBe(404);
  }, 30_000);

  it('the status page lists each custom domain with its state and TXT record', async () => {
    const res = await get(one.port, `acme.${PLATFORM}`, '/_platform/status.json');
    expect(res.status).toBe(200);
    const domains = (JSON.parse(res.body) as { domains: Array<{ domain: string; site: string; state: string; txtName: string; token: string }> }).domains;
    expect(domains.find((d) => d.domain === 'acme.example')).toMatchObject({ site: 'acme', state: 'verified', txtName: '_amt-verify.acme.example', token: verificationToken(SECRET, 'acme', 'acme.example') });
    expect(domains.find((d) => d.domain === 'sweet-crumbs.example')).toMatchObject({ site: 'bakery', state: 'pending' });
  });

  it('when the record goes away, a verified domain keeps serving through the grace period (failing), then stops on every server', async () => {
    const three = await startServer(sitesDir, { ...env(dns.address), DOMAIN_RECHECK_S: '1', DOMAIN_GRACE_S: '4' });
    started.push(three);
    await dns.clearTxt('_amt-verify.acme.example');
    const state = async () => (JSON.parse((await get(three.port, `acme.${PLATFORM}`, '/_platform/status.json')).body) as { domains: Array<{ domain: string; state: string }> }).domains.find((d) => d.domain === 'acme.example')?.state;
    await waitFor(async () => (await state()) === 'failing', 10_000, 100);
    expect((await get(three.port, 'acme.example')).status).toBe(200);
    expect((await get(one.port, 'acme.example')).status).toBe(200);
    await waitFor(async () => (await get(three.port, 'acme.example')).status === 404, 15_000, 200);
    expect(await state()).toBe('failed');
    // The first server never re-checked (DOMAIN_RECHECK_S is an hour there): it follows the shared record.
    await waitFor(async () => (await get(one.port, 'acme.example')).status === 404, 10_000, 200);
    // The other hosts of the site are untouched.
    expect((await get(one.port, 'www.acme.example')).status).toBe(301);
  }, 45_000);
});
