import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort } from '../../bench/processes.ts';
import { StartError, stopChild } from './processes.ts';

const run = promisify(execFile);

export interface PebbleOptions {
  /** `host:port` of the DNS server pebble resolves identifiers with (test/helpers/dns-server.ts). */
  dnsServer: string;
  /** The port pebble connects to on the identifier's address for HTTP-01 (our app or nginx). */
  httpPort: number;
  /** Lifetime of issued certificates in seconds (pebble's `certificateValidityPeriod`); pebble's default is about five years. */
  certificateValiditySeconds?: number;
  /** Extra environment for pebble (e.g. `PEBBLE_AUTHZREUSE`). */
  env?: Record<string, string>;
}

export interface RunningPebble {
  /** The ACME directory, `https://127.0.0.1:<port>/dir`, for ACME_DIRECTORY_URL. */
  directoryUrl: string;
  /** `https://127.0.0.1:<port>`: pebble's management API (roots, cert-status-by-serial). */
  managementUrl: string;
  /** PEM of the CA that signed pebble's own HTTPS certificate: NODE_EXTRA_CA_CERTS for processes that talk to pebble. */
  caCertFile: string;
  /** PEM of the root pebble issues certificates under (new on every pebble start): what a client verifies our certificates against. */
  rootPem(): Promise<string>;
  /** GET on the management API (JSON answers parsed, others as text). */
  manage(path: string): Promise<{ status: number; body: string }>;
  /** The current pebble process's pid (a new one after restart()). */
  readonly pid: number;
  logs: string[];
  /**
   * Stops pebble and starts it again on the same ports with the same listener certificate: a CA
   * that forgot everything (accounts, orders, certificates; a new root), as pebble keeps no state.
   */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

/** A GET over HTTPS trusting only `ca` (Node's fetch cannot take a CA per request). */
function getWithCa(url: string, ca: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(url, { ca, timeout: 5000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${url}: timed out`)));
    req.on('error', reject);
    req.end();
  });
}

/**
 * Makes a throwaway CA and a certificate for 127.0.0.1/localhost signed by it, for pebble's own
 * HTTPS listeners (pebble refuses plain HTTP). Returns the file paths.
 */
async function makeListenerCertificate(dir: string): Promise<{ ca: string; cert: string; key: string }> {
  const ca = join(dir, 'listener-ca.pem');
  const caKey = join(dir, 'listener-ca.key');
  const cert = join(dir, 'listener.pem');
  const key = join(dir, 'listener.key');
  const csr = join(dir, 'listener.csr');
  const ext = join(dir, 'listener.ext');
  await run('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', caKey, '-out', ca, '-days', '2', '-subj', '/CN=amt test pebble listener CA', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
  await run('openssl', ['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', csr, '-subj', '/CN=127.0.0.1']);
  await writeFile(ext, 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n');
  await run('openssl', ['x509', '-req', '-in', csr, '-CA', ca, '-CAkey', caKey, '-CAcreateserial', '-out', cert, '-days', '2', '-extfile', ext]);
  return { ca, cert, key };
}

/**
 * Starts Debian's `pebble` (a real ACME server for tests) on free 127.0.0.1 ports, with its own
 * HTTPS certificate made by openssl, validation delays off (PEBBLE_VA_NOSLEEP=1), no nonce
 * rejections and no authorization reuse (every order proves HTTP-01 again), resolving names
 * through `dnsServer` and validating HTTP-01 on `httpPort`. Resolves once its directory answers;
 * a start that fails stops pebble and throws StartError.
 */
export async function startPebble(options: PebbleOptions): Promise<RunningPebble> {
  const dir = await mkdtemp(join(tmpdir(), 'amt-pebble-'));
  const files = await makeListenerCertificate(dir);
  const caPem = await readFile(files.ca, 'utf8');
  const [port, managementPort, tlsPort] = [await freePort(), await freePort(), await freePort()];
  const config = join(dir, 'pebble-config.json');
  await writeFile(config, JSON.stringify({
    pebble: {
      listenAddress: `127.0.0.1:${port}`,
      managementListenAddress: `127.0.0.1:${managementPort}`,
      certificate: files.cert,
      privateKey: files.key,
      httpPort: options.httpPort,
      tlsPort,
      ocspResponderURL: '',
      externalAccountBindingRequired: false,
      ...(options.certificateValiditySeconds ? { certificateValidityPeriod: options.certificateValiditySeconds } : {}),
    },
  }));
  const logs: string[] = [];
  const directoryUrl = `https://127.0.0.1:${port}/dir`;
  const managementUrl = `https://127.0.0.1:${managementPort}`;

  /** Spawns pebble and resolves once its directory answers; on failure stops it and throws StartError. */
  async function launch(): Promise<{ child: ChildProcess; exited: Promise<void> }> {
    const child = spawn('pebble', ['-config', config, '-dnsserver', options.dnsServer, '-strict=false'], {
      env: { ...process.env, PEBBLE_VA_NOSLEEP: '1', PEBBLE_WFE_NONCEREJECT: '0', PEBBLE_AUTHZREUSE: '0', ...options.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout!.on('data', (c: Buffer) => logs.push(c.toString()));
    child.stderr!.on('data', (c: Buffer) => logs.push(c.toString()));
    child.once('error', (e) => logs.push(String(e)));
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    const started = Date.now();
    for (;;) {
      try {
        const res = await getWithCa(directoryUrl, caPem);
        if (res.status === 200) return { child, exited };
        throw new Error(`directory answered ${res.status}`);
      } catch (error) {
        if (child.exitCode !== null || Date.now() - started > 15_000) {
          await stopChild(child, 'SIGTERM', 2000);
          throw new StartError(`pebble did not start: ${(error as Error).message}\n${logs.join('')}`, [child.pid]);
        }
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  }

  let current: { child: ChildProcess; exited: Promise<void> };
  try {
    current = await launch();
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
  const halt = async () => {
    await stopChild(current.child, 'SIGTERM', 5000);
    await current.exited;
  };
  return {
    directoryUrl,
    managementUrl,
    caCertFile: files.ca,
    get pid() {
      return current.child.pid!;
    },
    logs,
    async restart() {
      await halt();
      current = await launch();
    },
    manage: (path) => getWithCa(`${managementUrl}${path}`, caPem),
    async rootPem() {
      const res = await getWithCa(`${managementUrl}/roots/0`, caPem);
      if (res.status !== 200) throw new Error(`pebble /roots/0: ${res.status} ${res.body}`);
      return res.body;
    },
    async stop() {
      await halt();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
