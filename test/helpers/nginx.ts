import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ROOT, get, waitFor } from './server.ts';
import { freePort } from './cluster.ts';
import { StartError, isAlive, stopPid } from './processes.ts';
import { childPids } from '../../bench/processes.ts';
import { edgeOptionsFromEnv, type EdgeOptions } from '../../nginx/render.ts';
import { writeEdgeConfig } from '../../astro-multi-tenant/server/cli/edge.ts';

const run = promisify(execFile);
export const NGINX = process.env.NGINX_BIN || '/usr/sbin/nginx';

export interface RunningNginx {
  port: number;
  /** The master's pid. */
  pid: number;
  options: EdgeOptions;
  conf: string;
  /** nginx -t on the running config. */
  test(): Promise<{ ok: boolean; output: string }>;
  /** nginx -s reload: new workers, old ones finish what they have. */
  reload(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * A real nginx (Debian's package) from the generated config, on a free loopback port, in front of
 * the app at `upstreamPort`. Its pid, logs, cache and temp files live in a temp dir it owns.
 */
export async function startNginx(
  upstreamPort: number,
  sitesDir: string,
  env: Record<string, string> = {},
  /** `edit`: changes each generated .conf file before nginx reads it (tests that remove a directive to show it matters). */
  settings: { readyTimeoutMs?: number; edit?: (file: string, text: string) => string } = {},
): Promise<RunningNginx> {
  const outDir = await mkdtemp(join(tmpdir(), 'amt-nginx-'));
  // A caller that must know the port first (pebble validates HTTP-01 on it) names it in NGINX_LISTEN.
  const port = env.NGINX_LISTEN ? Number(/(\d+)$/.exec(env.NGINX_LISTEN)?.[1]) : await freePort();
  const options = edgeOptionsFromEnv(
    {
      NGINX_OUT: outDir,
      NGINX_LISTEN: `127.0.0.1:${port}`,
      NGINX_UPSTREAM: `127.0.0.1:${upstreamPort}`,
      SITES_DIR: sitesDir,
      CSS_DIR: join(ROOT, 'astro-multi-tenant/site-css'),
      // The master runs as whoever runs the tests; as root, workers must be root too to read the
      // test's 0700 temp folders.
      ...(process.getuid?.() === 0 ? { NGINX_USER: 'root' } : {}),
      NGINX_RATE: '10000r/s',
      NGINX_BURST: '10000',
      ...env,
    },
    ROOT,
  );
  let child: ChildProcess | undefined;
  try {
    const conf = await writeEdgeConfig(options);
    if (settings.edit) {
      for (const name of (await readdir(outDir)).filter((n) => n.endsWith('.conf'))) await writeFile(join(outDir, name), settings.edit(name, await readFile(join(outDir, name), 'utf8')));
    }
    child = spawn(NGINX, ['-c', conf, '-p', outDir, '-g', 'daemon off;'], { stdio: ['ignore', 'ignore', 'pipe'] });
    const spawned = child;
    let stderr = '';
    spawned.stderr!.on('data', (d) => (stderr += d.toString()));
    const spawnError = new Promise<never>((_, reject) => spawned.once('error', (error) => reject(new Error(`cannot run ${NGINX}: ${error.message} (is nginx installed?)`))));
    spawnError.catch(() => {});
    // An exit ends the wait at once: a readiness probe can hang on whatever holds a taken port
    // (it accepts and never answers), so the probe loop alone would only time out.
    const exited = new Promise<never>((_, reject) => spawned.once('close', () => reject(new Error(`nginx exited: ${stderr}`))));
    exited.catch(() => {});
    await Promise.race([
      spawnError,
      exited,
      waitFor(async () => {
        if (spawned.exitCode !== null) throw new Error(`nginx exited: ${stderr}`);
        return (await get(port, 'localhost', '/_platform/healthz').catch(() => ({ status: 0 }))).status === 200;
      }, settings.readyTimeoutMs ?? 10_000, 50),
    ]);
    return running(child, port, options, conf, outDir);
  } catch (error) {
    const pids = child?.pid === undefined ? [] : [child.pid, ...childPids(child.pid)];
    if (child?.pid !== undefined) await stopNginxMaster(child.pid);
    await rm(outDir, { recursive: true, force: true });
    throw new StartError(`nginx did not start: ${(error as Error).message}`, pids);
  }
}

/**
 * Stops an nginx master we may or may not be the parent of (a test's own, or the one
 * `npm run start:edge` started), and its workers: SIGQUIT (graceful), SIGKILL after `graceMs`.
 * A SIGKILLed master leaves its workers running, so they are stopped by pid too.
 */
export async function stopNginxMaster(pid: number, graceMs = 5000): Promise<void> {
  const workers = childPids(pid);
  await stopPid(pid, 'SIGQUIT', graceMs);
  for (const worker of workers) if (isAlive(worker)) await stopPid(worker, 'SIGKILL', 0);
}

/** The master pid from the `pid` file nginx writes under its prefix, if it is still running. */
export async function nginxPidFromPrefix(prefix: string): Promise<number | undefined> {
  const text = await readFile(join(prefix, 'nginx.pid'), 'utf8').catch(() => undefined);
  const pid = Number(text?.trim());
  return Number.isInteger(pid) && pid > 0 && isAlive(pid) ? pid : undefined;
}

function running(child: ChildProcess, port: number, options: EdgeOptions, conf: string, outDir: string): RunningNginx {
  return {
    port,
    pid: child.pid!,
    options,
    conf,
    async test() {
      try {
        const { stderr: out } = await run(NGINX, ['-t', '-c', conf, '-p', outDir]);
        return { ok: true, output: out };
      } catch (error) {
        return { ok: false, output: String((error as { stderr?: string }).stderr ?? error) };
      }
    },
    async reload() {
      await run(NGINX, ['-s', 'reload', '-c', conf, '-p', outDir]);
    },
    async stop() {
      await stopNginxMaster(child.pid!);
      await rm(outDir, { recursive: true, force: true });
    },
  };
}
