import { spawn } from 'node:child_process';
import { freePort } from '../../bench/processes.ts';
import { StartError, stopChild } from './processes.ts';

export interface TestDns {
  /** `127.0.0.1:<port>`, for DNS_SERVERS. */
  address: string;
  setTxt(name: string, value: string): Promise<void>;
  clearTxt(name: string): Promise<void>;
  /** Answers A queries for `name` with these addresses instead of the default 127.0.0.1. */
  addA(name: string, addresses: string[]): Promise<void>;
  stop(): Promise<void>;
}

/**
 * A real DNS server for tests: Debian's `pebble-challtestsrv` (package `pebble`), answering on
 * 127.0.0.1 only, its TXT records set over its management HTTP API (`/set-txt`, `/clear-txt`).
 * Its HTTP-01/TLS-ALPN-01 listeners are turned off. Every name resolves to 127.0.0.1 (its default A answer)
 * and to no IPv6 address: pebble's HTTP-01 validation dials the first address it gets and does not
 * fall back, and the servers under test listen on 127.0.0.1 only.
 */
export async function startTestDns(): Promise<TestDns> {
  const dnsPort = await freePort();
  const managementPort = await freePort();
  const child = spawn('pebble-challtestsrv', ['-dns01', `127.0.0.1:${dnsPort}`, '-management', `127.0.0.1:${managementPort}`, '-http01', '', '-https01', '', '-tlsalpn01', '', '-defaultIPv6', ''], { stdio: ['ignore', 'pipe', 'pipe'] });
  const logs: string[] = [];
  child.stdout!.on('data', (c: Buffer) => logs.push(c.toString()));
  child.stderr!.on('data', (c: Buffer) => logs.push(c.toString()));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  child.once('error', (e) => logs.push(String(e)));
  const manage = async (path: string, body: object) => {
    const res = await fetch(`http://127.0.0.1:${managementPort}${path}`, { method: 'POST', body: JSON.stringify(body) });
    if (!res.ok) throw new Error(`pebble-challtestsrv ${path}: ${res.status} ${await res.text()}`);
  };
  const started = Date.now();
  for (;;) {
    try {
      // Clearing a name nobody set is harmless and proves the management API is up.
      await manage('/clear-txt', { host: '_probe.test.' });
      break;
    } catch (error) {
      if (child.exitCode !== null || Date.now() - started > 10_000) {
        await stopChild(child, 'SIGTERM', 2000);
        throw new StartError(`pebble-challtestsrv did not start: ${(error as Error).message}\n${logs.join('')}`, [child.pid]);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  const fqdn = (name: string) => (name.endsWith('.') ? name : `${name}.`);
  return {
    address: `127.0.0.1:${dnsPort}`,
    setTxt: (name, value) => manage('/set-txt', { host: fqdn(name), value }),
    clearTxt: (name) => manage('/clear-txt', { host: fqdn(name) }),
    addA: (name, addresses) => manage('/add-a', { host: fqdn(name), addresses }),
    async stop() {
      await stopChild(child, 'SIGTERM', 5000);
      await exited;
    },
  };
}
