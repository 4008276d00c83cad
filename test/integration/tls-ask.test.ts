import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cp, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { copySites, get, removeDir, startServer, waitFor, type RunningServer } from '../helpers/server.ts';
import { startTestDns, type TestDns } from '../helpers/dns-server.ts';
import { verificationToken } from '../../astro-multi-tenant/server/tenant/domain-token.ts';
import { TEST_DOMAIN_SECRET as SECRET, TEST_PLATFORM as PLATFORM, dnsModeEnv, sitesCli as runSitesCli } from '../helpers/custom-domains.ts';

/** `npm run sites -- <args>` against the test's sites and shared state. */
const sitesCli = (args: string[]) => runSitesCli(args, { SITES_DIR: sitesDir, ...dnsEnv() });


let dns: TestDns;
let sitesDir: string;
let stateRoot: string;
const started: RunningServer[] = [];

const dnsEnv = () => dnsModeEnv(dns.address, join(stateRoot, 'state'));

const ask = (port: number, query: string, headers: Record<string, string> = {}) => get(port, 'localhost', `/_platform/tls/ask${query}`, headers);

beforeAll(async () => {
  dns = await startTestDns();
  sitesDir = await copySites();
  stateRoot = await mkdtemp(join(tmpdir(), 'amt-ask-state-'));
  // A squatter: its id sorts before "acme", so a fresh machine records it as the claimant of acme.example.
  await cp(join(sitesDir, 'blog'), join(sitesDir, 'aaa'), { recursive: true });
  await writeFile(join(sitesDir, 'aaa', 'site.json'), JSON.stringify({ name: 'Copycat', domains: ['acme.example'] }));
  // A site whose site.json does not validate.
  await cp(join(sitesDir, 'blog'), join(sitesDir, 'broken'), { recursive: true });
  await writeFile(join(sitesDir, 'broken', 'site.json'), JSON.stringify({ name: 42, domains: ['broken.example'] }));
}, 60_000);

afterAll(async () => {
  await Promise.all(started.map((s) => s.stop()));
  await dns?.stop();
  await removeDir(sitesDir);
  await removeDir(stateRoot);
}, 60_000);

describe('GET /_platform/tls/ask and domain ownership, with DOMAIN_VERIFICATION=dns (real server, real DNS server)', () => {
  let app: RunningServer;

  beforeAll(async () => {
    app = await startServer(sitesDir, dnsEnv());
    started.push(app);
  }, 60_000);

  it('says yes for platform subdomains of valid sites, and no for unknown names and invalid sites', async () => {
    for (const site of ['acme', 'blog', 'aaa']) expect((await ask(app.port, `?domain=${site}.${PLATFORM}`)).status, site).toBe(200);
    for (const name of ['nobody.example', `nobody.${PLATFORM}`, `broken.${PLATFORM}`, 'broken.example', '127.0.0.1']) {
      const res = await ask(app.port, `?domain=${name}`);
      expect(res.status, name).toBe(404);
      expect(res.body).toBe(`${name} is not served here\n`);
    }
  });

  it('answers 400 for a missing or malformed domain, and keeps the admin rules (a wrong token is refused)', async () => {
    for (const query of ['', '?domain=', '?domain=a%2Fb.example', '?domain=acme.example:443']) expect((await ask(app.port, query)).status, query).toBe(400);
    const denied = await ask(app.port, '?domain=acme.example', { Authorization: 'Bearer wrong' });
    expect(denied.status).toBe(401);
  });

  it('says no for a pending custom domain, then yes once its TXT record is there, and the site is served on it, never the squatter', async () => {
    expect((await ask(app.port, '?domain=acme.example')).status).toBe(404);
    expect((await get(app.port, 'acme.example')).status).toBe(404);
    await dns.setTxt('_amt-verify.acme.example', verificationToken(SECRET, 'acme', 'acme.example'));
    await waitFor(async () => (await ask(app.port, '?domain=acme.example')).status === 200, 15_000, 200);
    const page = await get(app.port, 'acme.example');
    expect(page.status).toBe(200);
    expect(page.body).toContain('Acme Tools');
    expect(page.body).not.toContain('Copycat');
    // An alias stays pending (its own TXT record is missing): not asked for a certificate.
    expect((await ask(app.port, '?domain=www.acme.example')).status).toBe(404);
  });

  it('gives the squatter nothing even with its own token in DNS too, and sites check and sites domains say why', async () => {
    await dns.setTxt('_amt-verify.acme.example', verificationToken(SECRET, 'aaa', 'acme.example'));
    await new Promise((r) => setTimeout(r, 2500));
    const page = await get(app.port, 'acme.example');
    expect(page.body).toContain('Acme Tools');
    const check = await sitesCli(['check']);
    expect(check.out).toMatch(/sites\/aaa\/site\.json.*host "acme\.example" is already claimed by site "acme"/);
    const domains = await sitesCli(['domains', 'aaa']);
    expect(domains.out).toContain('verified for site "acme"');
  });

  it('keeps the owner after a restart on the same state, from the first request', async () => {
    const again = await startServer(sitesDir, dnsEnv());
    started.push(again);
    const page = await get(again.port, 'acme.example');
    expect(page.status).toBe(200);
    expect(page.body).toContain('Acme Tools');
    expect((await ask(again.port, '?domain=acme.example')).status).toBe(200);
  });
});

describe('GET /_platform/tls/ask with DOMAIN_VERIFICATION=off', () => {
  it('says yes for every custom domain and alias of a valid site as written, no for an invalid site', async () => {
    const app = await startServer(sitesDir, { PLATFORM_DOMAIN: PLATFORM, MARKDOWN_CACHE_DIR: 'off', STATE_DIR: join(stateRoot, 'off-state') });
    started.push(app);
    for (const name of ['acme.example', 'www.acme.example', 'sweet-crumbs.example']) expect((await ask(app.port, `?domain=${name}`)).status, name).toBe(200);
    expect((await ask(app.port, '?domain=broken.example')).status).toBe(404);
  });
});
