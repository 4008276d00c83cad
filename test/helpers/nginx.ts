import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ROOT, get, waitFor } from './server.ts';
import { freePort } from './cluster.ts';
import { edgeOptionsFromEnv, type EdgeOptions } from '../../nginx/render.ts';
import { writeEdgeConfig } from '../../astro-multi-tenant/server/cli/edge.ts';

const run = promisify(execFile);
export const NGINX = process.env.NGINX_BIN || '/usr/sbin/nginx';

export interface RunningNginx {
  port: number;
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
export async function startNginx(upstreamPort: number, sitesDir: string, env: Record<string, string> = {}): Promise<RunningNginx> {
  const outDir = await mkdtemp(join(tmpdir(), 'amt-nginx-'));
  const port = await freePort();
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
  const conf = await writeEdgeConfig(options);
  const child: ChildProcess = spawn(NGINX, ['-c', conf, '-p', outDir, '-g', 'daemon off;'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d.toString()));
  try {
    await waitFor(async () => {
      if (child.exitCode !== null) throw new Error(`nginx exited: ${stderr}`);
      return (await get(port, 'localhost', '/_platform/healthz').catch(() => ({ status: 0 }))).status === 200;
    }, 10_000, 50);
  } catch (error) {
    child.kill('SIGKILL');
    throw error;
  }
  return {
    port,
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
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGQUIT');
        await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
        if (child.exitCode === null) child.kill('SIGKILL');
      }
      await rm(outDir, { recursive: true, force: true });
    },
  };
}
