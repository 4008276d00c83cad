import { spawn, type ChildProcess } from 'node:child_process';
import { cp, mkdtemp, rm } from 'node:fs/promises';
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { StartError, stopChild } from './processes.ts';

export const ROOT = resolve(import.meta.dirname, '../..');
export const SAMPLE_SITES = join(ROOT, 'sites');

export interface RunningServer {
  port: number;
  pid: number;
  sitesDir: string;
  logs: string[];
  /** Sends a signal without waiting (stop() sends SIGTERM and waits). */
  signal(name: NodeJS.Signals): void;
  /** Resolves with the exit code once the process has exited. */
  exited: Promise<number | null>;
  stop(): Promise<void>;
}

/** A throwaway copy of the sample sites (plus extra folders), so tests can edit content freely. */
export async function copySites(extra: string[] = []): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'amt-sites-'));
  await cp(SAMPLE_SITES, dir, { recursive: true });
  for (const folder of extra) await cp(folder, join(dir, folder.split('/').at(-1)!), { recursive: true });
  return dir;
}

/** Starts the real server entry (built Astro bundle) on a free loopback port. */
export async function startServer(sitesDir: string, env: Record<string, string> = {}, options: { readyTimeoutMs?: number } = {}): Promise<RunningServer> {
  const readyTimeoutMs = options.readyTimeoutMs ?? 20_000;
  const child: ChildProcess = spawn(process.execPath, [join(ROOT, 'astro-multi-tenant/server/main.ts')], {
    cwd: ROOT,
    env: { ...process.env, PORT: '0', HOST: '127.0.0.1', SITES_DIR: sitesDir, LOG_LEVEL: 'info', REDIS_URL: '', RENDER_CACHE_DIR: 'off', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: string[] = [];
  const exited = new Promise<number | null>((resolveExit) => child.once('exit', (code) => resolveExit(code)));
  let port: number;
  try {
    port = await new Promise<number>((resolvePort, reject) => {
      const timer = setTimeout(() => reject(new Error(`server did not start within ${readyTimeoutMs} ms:\n${logs.join('\n')}`)), readyTimeoutMs);
      let buffer = '';
      const onData = (chunk: Buffer) => {
        buffer += chunk.toString();
        let nl;
        while ((nl = buffer.indexOf('\n')) !== -1) {
          const line = buffer.slice(0, nl);
          buffer = buffer.slice(nl + 1);
          logs.push(line);
          if (line.includes('"msg":"listening"')) {
            clearTimeout(timer);
            resolvePort(JSON.parse(line).port);
          }
        }
      };
      child.stdout!.on('data', onData);
      child.stderr!.on('data', onData);
      child.once('error', (error) => {
        clearTimeout(timer);
        reject(error);
      });
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`server exited with ${code}:\n${logs.join('\n')}`));
      });
    });
  } catch (error) {
    // Never leave a half-started server behind: stop it and wait for it to be gone.
    await stopChild(child, 'SIGTERM', 2000);
    throw new StartError((error as Error).message, [child.pid]);
  }
  return {
    port,
    pid: child.pid!,
    sitesDir,
    logs,
    exited,
    signal(name) {
      child.kill(name);
    },
    async stop() {
      // Longer than the server's own drain budget (DRAIN_TIMEOUT_MS, 8 s by default), then SIGKILL.
      await stopChild(child, 'SIGTERM', 15_000);
    },
  };
}

export interface Response {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

/** GET with an explicit Host header (fetch cannot set one). */
export function get(port: number, host: string, path = '/', headers: Record<string, string> = {}, method = 'GET'): Promise<Response> {
  return new Promise((resolveResponse, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, path, method, headers: { host, ...headers }, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolveResponse({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', reject);
    req.setTimeout(10_000, () => req.destroy(new Error(`timeout: ${host}${path}`)));
    req.end();
  });
}

/**
 * Sends bytes exactly as given (for malformed Host headers and raw paths) and returns the status
 * code. The request must end the connection itself (`Connection: close`, or HTTP/1.0): the socket
 * is not half-closed after writing, because Node's HTTP server (httpAllowHalfOpen false) aborts a
 * request whose client has half-closed before its answer is written, which on a busy machine
 * lost answers that needed any asynchronous work.
 */
export function rawRequest(port: number, text: string): Promise<{ status: number; raw: string }> {
  return new Promise((resolveResponse, reject) => {
    const socket = connect(port, '127.0.0.1', () => socket.write(Buffer.from(text, 'latin1')));
    let raw = '';
    socket.on('data', (c) => (raw += c.toString('latin1')));
    socket.on('end', () => resolveResponse({ status: Number(/^HTTP\/1\.[01] (\d{3})/.exec(raw)?.[1] ?? 0), raw }));
    socket.on('error', reject);
    socket.setTimeout(10_000, () => socket.destroy(new Error('raw request timed out')));
  });
}

/** Polls until `check` passes; returns the milliseconds it took. */
export async function waitFor(check: () => Promise<boolean>, timeoutMs: number, intervalMs = 25): Promise<number> {
  const started = Date.now();
  for (;;) {
    if (await check()) return Date.now() - started;
    if (Date.now() - started > timeoutMs) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

export async function removeDir(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
}
