import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync, readdirSync } from 'node:fs';
import { Agent, request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { createServer } from 'node:net';

/**
 * Every process the benchmark starts is registered here, so that `stopAll()` (called from a
 * `finally` and from SIGINT/SIGTERM handlers) leaves nothing running, whatever failed.
 */
export interface Child {
  name: string;
  process: ChildProcess;
  pid: number;
  logFile: string;
  exited: Promise<number | null>;
  /** Signal used for a graceful stop (nginx wants SIGQUIT). */
  stopSignal: NodeJS.Signals;
}

const children = new Set<Child>();

export interface SpawnOptions {
  name: string;
  command: string;
  args: string[];
  cwd: string;
  env: Record<string, string | undefined>;
  logFile: string;
  stopSignal?: NodeJS.Signals;
}

/** Starts a process with stdout+stderr going to a log file (never through the orchestrator's event loop). */
export function spawnLogged(options: SpawnOptions): Child {
  const fd = openSync(options.logFile, 'a');
  let proc: ChildProcess;
  try {
    proc = spawn(options.command, options.args, { cwd: options.cwd, env: options.env as NodeJS.ProcessEnv, stdio: ['ignore', fd, fd] });
  } finally {
    closeSync(fd);
  }
  if (proc.pid === undefined) throw new Error(`could not start ${options.name} (${options.command})`);
  const exited = new Promise<number | null>((resolve) => {
    proc.once('exit', (code, signal) => resolve(code ?? (signal ? 128 : null)));
    proc.once('error', () => resolve(-1));
  });
  const child: Child = { name: options.name, process: proc, pid: proc.pid, logFile: options.logFile, exited, stopSignal: options.stopSignal ?? 'SIGTERM' };
  children.add(child);
  void exited.then(() => children.delete(child));
  return child;
}

export function isRunning(child: Child): boolean {
  return child.process.exitCode === null && child.process.signalCode === null;
}

/** Graceful stop, then SIGKILL after `graceMs`. */
export async function stopChild(child: Child, graceMs = 5000): Promise<void> {
  if (!isRunning(child)) return;
  child.process.kill(child.stopSignal);
  const timer = new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), graceMs).unref());
  if ((await Promise.race([child.exited, timer])) === 'timeout' && isRunning(child)) {
    child.process.kill('SIGKILL');
    await child.exited;
  }
}

export async function stopAll(): Promise<void> {
  await Promise.all([...children].map((child) => stopChild(child).catch(() => child.process.kill('SIGKILL'))));
}

/** Synchronous last resort for process exit paths. */
export function killAllNow(): void {
  for (const child of children) if (isRunning(child)) child.process.kill('SIGKILL');
}

export function logTail(child: Child, lines = 30): string {
  try {
    return readFileSync(child.logFile, 'utf8').split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

/** Linux's default ephemeral range starts here; ports below it are never a connection's source port. */
const EPHEMERAL_START = 32768;
const LOW_PORT_START = 20000;

function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/**
 * A free loopback port for a process started later (nginx, pm2, a server). Picked below the
 * ephemeral range: a port the OS hands out for listen(0) comes from the same range as the source
 * ports of outgoing connections, so under load (autocannon, parallel test files) another process's
 * connection could take it before the server binds it, and the server failed with EADDRINUSE.
 */
export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = LOW_PORT_START + Math.floor(Math.random() * (EPHEMERAL_START - LOW_PORT_START));
    if (await canListen(port)) return port;
  }
  throw new Error(`no free loopback port found between ${LOW_PORT_START} and ${EPHEMERAL_START}`);
}

/** Resident set size of a process from /proc (Linux), in bytes; undefined elsewhere. */
export function rssBytes(pid: number): number | undefined {
  try {
    const match = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

export interface TimedResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
  /** Request start to last body byte, in milliseconds. */
  ms: number;
}

/** One keep-alive connection, so first-request timings measure the server, not TCP setup. */
export const keepAlive = new Agent({ keepAlive: true, maxSockets: 64 });

/** GET with an explicit Host header (fetch cannot set one). */
export function get(port: number, host: string, path = '/', options: { agent?: Agent | false; headers?: Record<string, string>; timeoutMs?: number } = {}): Promise<TimedResponse> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const req = httpRequest({ host: '127.0.0.1', port, path, method: 'GET', headers: { host, ...options.headers }, agent: options.agent ?? false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks), ms: performance.now() - started }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.setTimeout(options.timeoutMs ?? 15_000, () => req.destroy(new Error(`timeout: GET http://${host}${path} on port ${port}`)));
    req.end();
  });
}

/** Polls `GET path` until it answers 200, or fails with the child's log if it exits or times out. */
export async function waitForHttp(child: Child, port: number, host: string, path: string, timeoutMs = 60_000): Promise<void> {
  const started = Date.now();
  for (;;) {
    if (!isRunning(child)) throw new Error(`${child.name} exited before answering:\n${logTail(child)}`);
    const res = await get(port, host, path, { timeoutMs: 5000 }).catch(() => undefined);
    if (res?.status === 200) return;
    if (Date.now() - started > timeoutMs) throw new Error(`${child.name} did not answer 200 on ${path} within ${timeoutMs} ms:\n${logTail(child)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Direct children of a process (Linux /proc), e.g. nginx's workers. */
export function childPids(pid: number): number[] {
  const out: number[] = [];
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return out;
  }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const text = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(text.slice(text.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) out.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}
