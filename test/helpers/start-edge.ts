import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from './server.ts';
import { freePort, stopPm2 } from './cluster.ts';
import { nginxPidFromPrefix, stopNginxMaster } from './nginx.ts';
import { descendantPids, isAlive, stopChild, stopPid } from './processes.ts';

export interface RunningStartEdge {
  child: ChildProcess;
  appPort: number;
  edgePort: number;
  /** NGINX_OUT: nginx's prefix, where it writes nginx.pid. */
  nginxDir: string;
  pm2Home: string;
  /** Everything the edge process and its children printed so far. */
  output(): string;
  exited: Promise<number | null>;
  /**
   * Leaves nothing behind, whatever state the run is in: SIGKILLs the edge process if it is still
   * running; gives the processes that were below it `settleMs` to exit by themselves; then stops
   * the nginx master it started (found by the pid file under its prefix: a SIGKILLed edge cannot
   * stop it), the PM2 runtime (stopPm2), and any other process that was below the edge process;
   * removes the work folder. Resolves with the pids that had to be stopped that way; throws,
   * after cleaning up, if pm2 kill failed or anything could not be stopped.
   */
  cleanup(options?: { settleMs?: number }): Promise<{ orphans: number[] }>;
}

/** `npm run start:edge` (the edge CLI's `start`) with its own ports, PM2_HOME and nginx prefix. */
export async function spawnStartEdge(env: Record<string, string> = {}): Promise<RunningStartEdge> {
  const work = await mkdtemp(join(tmpdir(), 'amt-start-edge-'));
  const [appPort, edgePort] = [await freePort(), await freePort()];
  const pm2Home = join(work, 'pm2');
  const nginxDir = join(work, 'nginx');
  const child = spawn(process.execPath, [join(ROOT, 'astro-multi-tenant/server/cli/edge.ts'), 'start'], {
    cwd: ROOT,
    env: {
      ...process.env,
      PORT: String(appPort),
      HOST: '127.0.0.1',
      INSTANCES: '1',
      REDIS_URL: '',
      LOG_LEVEL: 'warn',
      PM2_HOME: pm2Home,
      PEER_DIR: join(work, 'peers'),
      NGINX_OUT: nginxDir,
      NGINX_LISTEN: `127.0.0.1:${edgePort}`,
      ...(process.getuid?.() === 0 ? { NGINX_USER: 'root' } : {}),
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (d) => (output += d));
  child.stderr!.on('data', (d) => (output += d));
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  // Snapshots of the tree below the edge process, taken while it runs: after a SIGKILL its
  // children are reparented and can no longer be found from its pid.
  const seen = new Set<number>();
  const snapshot = () => {
    if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) for (const pid of descendantPids(child.pid)) seen.add(pid);
  };
  const timer = setInterval(snapshot, 250);
  child.once('exit', () => clearInterval(timer));

  return {
    child,
    appPort,
    edgePort,
    nginxDir,
    pm2Home,
    output: () => output,
    exited,
    async cleanup({ settleMs = 10_000 } = {}) {
      clearInterval(timer);
      snapshot();
      const nginxPid = await nginxPidFromPrefix(nginxDir);
      if (nginxPid !== undefined) seen.add(nginxPid);
      await stopChild(child, 'SIGKILL', 0);
      const started = Date.now();
      while ([...seen].some(isAlive) && Date.now() - started < settleMs) await new Promise((r) => setTimeout(r, 50));
      const orphans = [...seen].filter(isAlive);
      const problems: string[] = [];
      if (nginxPid !== undefined && isAlive(nginxPid)) await stopNginxMaster(nginxPid).catch((error: Error) => problems.push(error.message));
      await stopPm2(pm2Home, { timeoutMs: 15_000 }).catch((error: Error) => problems.push(error.message));
      for (const pid of orphans) if (isAlive(pid)) await stopPid(pid, 'SIGKILL', 0).catch((error: Error) => problems.push(error.message));
      await rm(work, { recursive: true, force: true });
      if (problems.length > 0) throw new Error(`stopping what npm run start:edge left behind (${orphans.join(', ')}) failed:\n${problems.join('\n')}`);
      return { orphans };
    },
  };
}
