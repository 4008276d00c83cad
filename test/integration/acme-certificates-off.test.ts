import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, readFile, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { X509Certificate } from 'node:crypto';
import { freePort } from '../../bench/processes.ts';
import { get, removeDir, startServer, waitFor, type RunningServer } from '../helpers/server.ts';
import { addSite } from '../helpers/site-folders.ts';
import { startTestDns, type TestDns } from '../helpers/dns-server.ts';
import { startPebble, type RunningPebble } from '../helpers/pebble.ts';

const PLATFORM = 'sites.test';

let dns: TestDns;
let pebble: RunningPebble;
let root: string;
let sitesDir: string;
let port: number;
let server: RunningServer;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'amt-acme-off-'));
  sitesDir = join(root, 'sites');
  await addSite(sitesDir, 'shop', { name: 'Shop', domains: ['shop.test'], aliases: ['www.shop.test'] });
  // Lists a host, but its site.json does not validate: the site answers 503, so no certificate.
  await addSite(sitesDir, 'broken', { name: 'Broken', domains: ['broken.test'], layout: 'no-such-layout' });
  dns = await startTestDns();
  port = await freePort();
  pebble = await startPebble({ dnsServer: dns.address, httpPort: port });
  server = await startServer(sitesDir, {
    PORT: String(port),
    PLATFORM_DOMAIN: PLATFORM,
    STATE_DIR: join(root, 'state'),
    CERTS_DIR: join(root, 'certs'),
    MARKDOWN_CACHE_DIR: 'off',
    ACME_DIRECTORY_URL: pebble.directoryUrl,
    NODE_EXTRA_CA_CERTS: pebble.caCertFile,
  });
}, 60_000);

afterAll(async () => {
  await server?.stop();
  await pebble?.stop();
  await dns?.stop();
  await removeDir(root);
}, 60_000);

describe('certificates with DOMAIN_VERIFICATION=off: the operator wrote every site.json', () => {
  it('every custom domain and alias of a valid site gets a certificate with no DNS proof; a site whose site.json is invalid gets none, nor does any platform subdomain', async () => {
    expect((await get(port, 'broken.test')).status).toBe(503);
    await waitFor(async () => ['shop.test', 'www.shop.test'].every((h) => server.logs.some((l) => l.includes(`certificate for ${h} issued`))), 20_000, 100);
    // The files follow the log line (written after the order, in the same tick).
    await waitFor(async () => (await readdir(join(root, 'certs')).catch(() => [])).length === 4, 10_000, 100);
    expect((await readdir(join(root, 'certs'))).sort()).toEqual(['shop.test.crt', 'shop.test.key', 'www.shop.test.crt', 'www.shop.test.key']);
    expect(new X509Certificate(await readFile(join(root, 'certs', 'www.shop.test.crt'), 'utf8')).subjectAltName).toBe('DNS:www.shop.test');
    // The alias's redirect is what its certificate is for.
    expect((await get(port, 'www.shop.test')).status).toBe(301);
    // A few more ticks change nothing for the invalid site or the platform subdomains.
    await new Promise((r) => setTimeout(r, 1500));
    expect(server.logs.join('\n')).not.toMatch(/certificate for (broken\.test|[a-z-]+\.sites\.test)/);
  }, 40_000);
});
