import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ROOT, get, waitFor } from './server.ts';
import { freePort } from '../../bench/processes.ts';

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
  env: Record<string, string>;
  pm2(...args: string[]): Promise<string>;
  processes(): Promise<Pm2Process[]>;
  /** Waits until `count` workers are online and the port answers. */
  waitOnline(count: number, timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
}


/**
 * Runs the real ecosystem.config.js under the real pm2, with its own PM2_HOME so the daemon,
 * logs and process list are the test's alone, and kills that daemon afterwards.
 */
export async function startCluster(sitesDir: string, options: { instances: number; env?: Record<string, string> }): Promise<RunningCluster> {
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
  const cluster: RunningCluster = {
    port,
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
      await pm2('kill').catch(() => {});
      await rm(home, { recursive: true, force: true });
    },
  };
  try {
    await pm2('start', 'ecosystem.config.js');
    await cluster.waitOnline(options.instances);
  } catch (error) {
    await cluster.stop();
    throw error;
  }
  return cluster;
}
