import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ROOT, get, waitFor } from './server.ts';
import { freePort } from '../../bench/processes.ts';
import { StartError, isAlive, stopPid } from './processes.ts';

/** Free loopback ports below the ephemeral range (see bench/processes.ts for why). */
export { freePort };

const run = promisify(execFile);
const PM2 = join(ROOT, 'node_modules/.bin/pm2');
export const APP_NAME = 'astro-multi-tenant';

export interface Pm2Process {
  pid: number;
  pm_id: number;
  status: string;
  restarts: number;
}

export interface RunningCluster {
  port: number;
  /** The PM2 daemon's own folder (PM2_HOME), removed by stop() once the daemon is gone. */
  home: string;
  env: Record<string, string>;
  pm2(...args: string[]): Promise<string>;
  processes(): Promise<Pm2Process[]>;
  /** Waits until `count` workers are online and the port answers. */
  waitOnline(count: number, timeoutMs?: number): Promise<void>;
  /** pm2 kill; see stopPm2 for what happens when that fails. */
  stop(): Promise<void>;
}

/** The PM2 daemon's pid from PM2_HOME/pm2.pid, if that process is running. */
export async function pm2DaemonPid(home: string): Promise<number | undefined> {
  const pid = Number((await readFile(join(home, 'pm2.pid'), 'utf8').catch(() => '')).trim());
  return Number.isInteger(pid) && pid > 0 && isAlive(pid) ? pid : undefined;
}

/**
 * Stops the PM2 daemon of `home` and its workers, then removes `home`. `pm2 kill` is tried first
 * (bounded by `timeoutMs`); if it fails or leaves any of them running, they are SIGKILLed by pid,
 * and the pm2 failure is thrown afterwards, so it is reported rather than swallowed. `home` is
 * removed only once the daemon is gone (a daemon writing into a deleted folder is a leak nobody
 * sees). `alsoPids` are more processes of the same run to make sure of (e.g. pm2-runtime's parent).
 */
export async function stopPm2(home: string, options: { timeoutMs?: number; workerPids?: number[]; alsoPids?: number[] } = {}): Promise<void> {
  const daemon = await pm2DaemonPid(home);
  const pids = [...new Set([daemon, ...(options.workerPids ?? []), ...(options.alsoPids ?? [])])].filter((p): p is number => p !== undefined && p > 0);
  let failure: string | undefined;
  if (daemon !== undefined) {
    // Only with a daemon to talk to: `pm2 kill` without one would start a new one first.
    await run(PM2, ['kill'], { cwd: ROOT, env: { ...process.env, PM2_HOME: home }, timeout: options.timeoutMs ?? 30_000 }).catch((error: Error & { stderr?: string }) => {
      failure = `pm2 kill failed: ${error.message}${error.stderr ? `\n${error.stderr}` : ''}`;
    });
  }
  // pm2 kill returns once the daemon has been told to go; give it and its workers a moment to exit.
  const started = Date.now();
  while (pids.some(isAlive) && Date.now() - started < 5000) await new Promise((r) => setTimeout(r, 50));
  const left = pids.filter(isAlive);
  if (left.length > 0) failure = `${failure ?? 'pm2 kill returned'} but left pids ${left.join(', ')} running (daemon ${daemon}); SIGKILLed them`;
  const stuck: string[] = [];
  for (const pid of left) await stopPid(pid, 'SIGKILL', 0).catch((error: Error) => stuck.push(error.message));
  if (stuck.length > 0) throw new Error(`${failure}\n${stuck.join('\n')}\n(PM2_HOME ${home} kept for inspection)`);
  await rm(home, { recursive: true, force: true });
  if (failure) throw new Error(failure);
}

/**
 * Runs the real ecosystem.config.js under the real pm2, with its own PM2_HOME so the daemon,
 * logs and process list are the test's alone, and kills that daemon afterwards.
 */
export async function startCluster(sitesDir: string, options: { instances: number; env?: Record<string, string>; readyTimeoutMs?: number }): Promise<RunningCluster> {
  const home = await mkdtemp(join(tmpdir(), 'amt-pm2-'));
  const port = await freePort();
  const env: Record<string, string> = {
    ...(process.env as Record<string, string>),
    PM2_HOME: home,
    PORT: String(port),
    HOST: '127.0.0.1',
    INSTANCES: String(options.instances),
    SITES_DIR: sitesDir,
    LOG_LEVEL: 'warn',
    PEER_DIR: join(home, 'peers'),
    ...options.env,
  };
  const pm2 = async (...args: string[]) => (await run(PM2, args, { cwd: ROOT, env, timeout: 90_000 })).stdout;
  const processes = async (): Promise<Pm2Process[]> => {
    const list = JSON.parse(await pm2('jlist')) as Array<{ pid: number; pm_id: number; name: string; pm2_env: { status: string; restart_time: number } }>;
    return list.filter((p) => p.name === APP_NAME).map((p) => ({ pid: p.pid, pm_id: p.pm_id, status: p.pm2_env.status, restarts: p.pm2_env.restart_time }));
  };
  // Asked only of a running daemon: any pm2 command without one starts a new daemon first.
  const workerPids = async () => ((await pm2DaemonPid(home)) === undefined ? [] : (await processes().catch(() => [])).map((p) => p.pid).filter((pid) => pid > 0));
  const cluster: RunningCluster = {
    port,
    home,
    env,
    pm2,
    processes,
    async waitOnline(count, timeoutMs = 60_000) {
      await waitFor(async () => {
        const online = (await processes()).filter((p) => p.status === 'online' && p.pid > 0);
        if (online.length !== count) return false;
        return (await get(port, 'localhost', '/_platform/readyz').catch(() => ({ status: 0 }))).status === 200;
      }, timeoutMs, 250);
    },
    async stop() {
      await stopPm2(home, { workerPids: await workerPids() });
    },
  };
  try {
    await pm2('start', 'ecosystem.config.js');
    await cluster.waitOnline(options.instances, options.readyTimeoutMs);
  } catch (error) {
    const pids = [await pm2DaemonPid(home), ...(await workerPids())];
    const stopped = await cluster.stop().then(() => '', (stopError: Error) => `\nand stopping it failed: ${stopError.message}`);
    throw new StartError(`the pm2 cluster (PM2_HOME ${home}) did not start: ${(error as Error).message}${stopped}`, pids);
  }
  return cluster;
}
