import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { copySites, removeDir, startServer, waitFor, type RunningServer } from '../helpers/server.ts';
import { startTestDns, type TestDns } from '../helpers/dns-server.ts';
import { freePort } from '../helpers/cluster.ts';
import { StartError, stopChild } from '../helpers/processes.ts';
import { verificationToken } from '../../astro-multi-tenant/server/tenant/domain-token.ts';
import { TEST_DOMAIN_SECRET as SECRET, TEST_PLATFORM as PLATFORM, dnsModeEnv, httpsGet, tlsHandshake as handshake } from '../helpers/custom-domains.ts';


/**
 * The Caddyfile of docs/edge.md ("Caddy in front"), with test ports and folders: on-demand TLS
 * from Caddy's own internal CA, asking our /_platform/tls/ask before every new name.
 */
function caddyfile(o: { appPort: number; httpsPort: number; dataDir: string }): string {
  return `{
	admin off
	skip_install_trust
	auto_https disable_redirects
	https_port ${o.httpsPort}
	storage file_system ${o.dataDir}
	on_demand_tls {
		ask http://127.0.0.1:${o.appPort}/_platform/tls/ask
	}
}

https:// {
	bind 127.0.0.1
	tls internal {
		on_demand
	}
	reverse_proxy 127.0.0.1:${o.appPort}
}
`;
}

describe('Caddy in front with on-demand TLS and our ask (real caddy, real server, real DNS server)', () => {
  let dns: TestDns;
  let sitesDir: string;
  let work: string;
  let app: RunningServer;
  let caddy: ChildProcess | undefined;
  let httpsPort: number;
  const caddyLogs: string[] = [];

  beforeAll(async () => {
    dns = await startTestDns();
    sitesDir = await copySites();
    work = await mkdtemp(join(tmpdir(), 'amt-caddy-'));
    app = await startServer(sitesDir, dnsModeEnv(dns.address, join(work, 'state')));
    httpsPort = await freePort();
    await writeFile(join(work, 'Caddyfile'), caddyfile({ appPort: app.port, httpsPort, dataDir: join(work, 'data') }));
    const child = spawn('caddy', ['run', '--config', join(work, 'Caddyfile'), '--adapter', 'caddyfile'], {
      // Caddy keeps its CA under XDG_DATA_HOME/HOME when no storage is set: keep it all in the temp dir.
      env: { ...process.env, HOME: work, XDG_DATA_HOME: join(work, 'xdg-data'), XDG_CONFIG_HOME: join(work, 'xdg-config') },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    caddy = child;
    child.stdout!.on('data', (c: Buffer) => caddyLogs.push(c.toString()));
    child.stderr!.on('data', (c: Buffer) => caddyLogs.push(c.toString()));
    try {
      await waitFor(async () => {
        if (child.exitCode !== null) throw new Error(`caddy exited: ${caddyLogs.join('')}`);
        return caddyLogs.join('').includes('serving initial configuration');
      }, 15_000, 50);
    } catch (error) {
      await stopChild(child, 'SIGTERM', 5000);
      throw new StartError(`caddy did not start: ${(error as Error).message}`, [child.pid]);
    }
  }, 60_000);

  afterAll(async () => {
    if (caddy) await stopChild(caddy, 'SIGTERM', 5000);
    await app?.stop();
    await dns?.stop();
    await removeDir(sitesDir);
    if (work) await rm(work, { recursive: true, force: true });
  }, 60_000);

  it('gets no certificate for a pending custom domain or an unknown name, because our ask says no', async () => {
    for (const name of ['acme.example', 'nobody.example']) {
      const result = await handshake(httpsPort, name);
      expect(result.subjectAltName, name).toBeUndefined();
      expect(result.error, name).toBeTruthy();
    }
    // Caddy asked, and was told no (the log line travels through a pipe: awaited).
    await waitFor(async () => app.logs.some((line) => line.includes('/_platform/tls/ask?domain=nobody.example') && line.includes('"status":404')), 5000);
  });

  it('gets a certificate and the site\'s page over TLS once the domain is verified', async () => {
    await dns.setTxt('_amt-verify.acme.example', verificationToken(SECRET, 'acme', 'acme.example'));
    await waitFor(async () => (await handshake(httpsPort, 'acme.example')).subjectAltName === 'DNS:acme.example', 20_000, 250);
    const root = await readFile(join(work, 'data', 'pki', 'authorities', 'local', 'root.crt'), 'utf8');
    const page = await httpsGet(httpsPort, 'acme.example', '/', root);
    expect(page.status).toBe(200);
    expect(page.body).toContain('Acme Tools');
    // A platform subdomain of a valid site needs no verification.
    expect((await handshake(httpsPort, `blog.${PLATFORM}`)).subjectAltName).toBe(`DNS:blog.${PLATFORM}`);
  });
});
