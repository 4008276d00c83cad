import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { connect } from 'node:tls';
import { request } from 'node:https';
import { ROOT } from './server.ts';

/** DOMAIN_TOKEN_SECRET of the custom-domain tests (tokens: verificationToken(TEST_DOMAIN_SECRET, site, domain)). */
export const TEST_DOMAIN_SECRET = 'integration-secret-0123456789-abcdefghij';
export const TEST_PLATFORM = 'sites.test';

/** A server's environment for DOMAIN_VERIFICATION=dns against a test DNS server, checking pending domains every second. */
export function dnsModeEnv(dnsAddress: string, stateDir: string): Record<string, string> {
  return {
    PLATFORM_DOMAIN: TEST_PLATFORM,
    DOMAIN_VERIFICATION: 'dns',
    DOMAIN_TOKEN_SECRET: TEST_DOMAIN_SECRET,
    DNS_SERVERS: dnsAddress,
    DOMAIN_RETRY_S: '1',
    STATE_DIR: stateDir,
    MARKDOWN_CACHE_DIR: 'off',
    RENDER_CACHE_DIR: 'off',
  };
}

/** `npm run sites -- <args>` with this environment (on top of the test process's, without Redis): exit code and everything printed. */
export function sitesCli(args: string[], env: Record<string, string>): Promise<{ code: number | null; out: string }> {
  return new Promise((resolveRun, reject) => {
    const child = spawn(process.execPath, [join(ROOT, 'astro-multi-tenant/server/cli/sites.ts'), ...args], {
      cwd: ROOT,
      env: { ...process.env, REDIS_URL: '', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (out += c.toString()));
    child.once('error', reject);
    child.once('exit', (code) => resolveRun({ code, out }));
  });
}

/**
 * What a TLS server on 127.0.0.1:`port` presents for `servername` (undefined: no SNI): the
 * certificate's subject CN, subjectAltName and serial, or the handshake's error. Trusts anything:
 * it looks at the certificate, it does not judge it.
 */
export function tlsHandshake(port: number, servername: string | undefined): Promise<{ subject?: string; subjectAltName?: string; serial?: string; error?: string }> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port, rejectUnauthorized: false, ...(servername === undefined ? {} : { servername }) }, () => {
      const cert = socket.getPeerCertificate();
      socket.destroy();
      const cn = cert.subject?.CN;
      resolve({ subject: Array.isArray(cn) ? cn.join(',') : cn, subjectAltName: cert.subjectaltname, serial: cert.serialNumber });
    });
    socket.setTimeout(10_000, () => socket.destroy(new Error('timed out')));
    socket.once('error', (error) => resolve({ error: error.message }));
  });
}

/** A GET over HTTPS to 127.0.0.1:`port` with SNI and Host `host`, trusting only `ca`. */
export function httpsGet(port: number, host: string, path: string, ca: string): Promise<{ status: number; body: string; headers: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, servername: host, headers: { Host: host }, ca, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
    });
    req.once('error', reject);
    req.end();
  });
}
