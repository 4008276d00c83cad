import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { childPids } from '../../bench/processes.ts';

/**
 * Stopping what a test started, on every path. A helper that gives up on a start (timeout, early
 * exit) stops what it spawned before it throws, and says which pids those were (StartError), so a
 * test can prove nothing was left behind.
 */

/** A start that failed; `pids` are every process it had spawned, all stopped before the throw. */
export class StartError extends Error {
  readonly pids: number[];
  constructor(message: string, pids: Array<number | undefined>) {
    super(message);
    this.name = 'StartError';
    this.pids = pids.filter((pid): pid is number => pid !== undefined);
  }
}

/**
 * Whether `pid` is a running process. `kill(pid, 0)` alone is not enough: an orphan (reparented
 * away from us) that exits stays a zombie until its new parent reaps it, and pid 1 in a container
 * may never do that. A zombie runs nothing, holds no port, and counts as gone (Linux /proc state Z).
 */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ESRCH') return false;
    throw error;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false; // gone between the two checks
  }
}

/** Every process below `pid` (children, their children, …) at this moment, from /proc. */
export function descendantPids(pid: number): number[] {
  const out: number[] = [];
  const queue = [pid];
  while (queue.length > 0) {
    for (const child of childPids(queue.shift()!)) {
      out.push(child);
      queue.push(child);
    }
  }
  return out;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Sends `signal` to a process we may not be the parent of (an orphaned nginx, the pm2 daemon),
 * waits up to `graceMs` for it to go, then SIGKILLs it and waits up to 5 s more.
 * Throws if it is still alive after that (naming the pid), so a leak is a failure, not a silence.
 */
export async function stopPid(pid: number, signal: NodeJS.Signals = 'SIGTERM', graceMs = 5000): Promise<void> {
  const send = (s: NodeJS.Signals) => {
    try {
      process.kill(pid, s);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error;
    }
  };
  if (!isAlive(pid)) return;
  send(signal);
  for (const [deadline, then] of [[graceMs, 'SIGKILL'], [5000, undefined]] as const) {
    const started = Date.now();
    while (isAlive(pid) && Date.now() - started < deadline) await sleep(25);
    if (!isAlive(pid)) return;
    if (then) send(then);
  }
  throw new Error(`process ${pid} is still alive after ${signal}, ${graceMs} ms and SIGKILL`);
}

/**
 * Stops a child we spawned: `signal`, up to `graceMs` for it to exit, then SIGKILL; resolves only
 * once it has exited (and been reaped), so its pid is free and its ports are closed.
 */
export async function stopChild(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM', graceMs = 5000): Promise<void> {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill(signal);
  const timedOut = await Promise.race([exited.then(() => false), sleep(graceMs).then(() => true)]);
  if (timedOut && child.exitCode === null && child.signalCode === null) {
    child.kill('SIGKILL');
    await exited;
  }
}

/**
 * Starts several things at once (each a promise of something with stop()). When any start fails,
 * the ones that did start are stopped before the error is thrown: Promise.all would reject at the
 * first failure and orphan the others. The StartError lists every failure and every pid involved.
 */
export async function startAll<const P extends readonly Promise<{ stop(): Promise<void>; pid?: number }>[]>(
  starts: P,
): Promise<{ -readonly [K in keyof P]: Awaited<P[K]> }> {
  const settled = await Promise.allSettled(starts);
  const failures = settled.filter((s): s is PromiseRejectedResult => s.status === 'rejected').map((s) => s.reason as Error);
  if (failures.length === 0) return settled.map((s) => (s as PromiseFulfilledResult<unknown>).value) as { -readonly [K in keyof P]: Awaited<P[K]> };
  const started = settled.filter((s) => s.status === 'fulfilled').map((s) => s.value);
  const stopErrors: string[] = [];
  for (const item of started) await item.stop().catch((error: Error) => stopErrors.push(error.message));
  const pids = [...failures.flatMap((f) => (f instanceof StartError ? f.pids : [])), ...started.map((s) => s.pid)];
  const message = [`${failures.length} of ${starts.length} starts failed; the ${started.length} started were stopped`, ...failures.map((f) => f.message), ...stopErrors.map((m) => `stop failed: ${m}`)].join('\n');
  throw new StartError(message, pids);
}
