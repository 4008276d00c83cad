import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { get } from 'node:http';
import { join, resolve } from 'node:path';
import { availableParallelism } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { APP_DIR, loadConfig, type ServerConfig } from '../config.ts';
import { clusterProblem } from '../session/embedded-mode.ts';
import { createSiteRegistry } from '../tenant/registry.ts';
import { httpOrigin, servingLine } from './serving-line.ts';

/**
 * `npm start`: build once if the Astro bundle or the stylesheets are missing, then run the PM2
 * cluster in the foreground (pm2-runtime), so Docker, systemd or a terminal own its lifetime.
 * Once a worker answers readyz, one human line on stdout says how many sites it serves and which
 * URLs to open (cli/serving-line.ts); everything else on stdout stays the workers' JSON logs.
 */
const root = resolve(APP_DIR, '..');
let config: ServerConfig;
try {
  config = loadConfig();
} catch (error) {
  console.error(`start: configuration error: ${(error as Error).message}`);
  process.exit(78);
}
// Same rule the workers enforce, said once and up front instead of by a crash-looping cluster.
const requested = process.env.INSTANCES || (config.redis ? 'max' : '1');
// PM2's own forms only ('max', or a count: 0 = every core, -1 = all but one): PM2 reads anything
// else as NaN and fails with an unrelated message about TypeScript interpreters.
if (!/^(max|-?\d+)$/.test(requested)) {
  console.error(`start: configuration error: INSTANCES: "${requested}" must be a number of workers or max`);
  process.exit(78);
}
// Read only by ecosystem.config.js, which would fall back to its default on a typo without a word.
const pm2Settings = [
  ['WORKER_HEAP_MB', /^\d+$/, 'a whole number of MiB (0 = no bound)'],
  ['MAX_MEMORY_RESTART', /^\d+[KMG]?$/, 'bytes, or a number with K, M or G (1G, 512M)'],
] as const;
for (const [name, form, expected] of pm2Settings) {
  const value = process.env[name];
  if (value !== undefined && value !== '' && !form.test(value)) {
    console.error(`start: configuration error: ${name}: "${value}" must be ${expected}`);
    process.exit(78);
  }
}
const problem = clusterProblem({ exec_mode: 'cluster_mode', instances: requested === 'max' ? String(availableParallelism()) : requested }, config.redis !== undefined, config.sessionKeys !== undefined);
if (problem) {
  console.error(`start: ${problem}`);
  process.exit(78);
}
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';

if (!existsSync(config.astroEntry) || !existsSync(join(config.cssDir, '_base', 'manifest.json'))) {
  console.log('start: no build found, running npm run build');
  const build = spawnSync(npm, ['run', 'build'], { cwd: root, stdio: 'inherit' });
  if (build.status !== 0) process.exit(build.status ?? 1);
}

const pm2Runtime = join(root, 'node_modules', 'pm2', 'bin', 'pm2-runtime');
const child = spawn(process.execPath, [pm2Runtime, 'start', join(root, 'ecosystem.config.js')], {
  cwd: root,
  stdio: 'inherit',
  env: { PM2_OUT_FILE: '/dev/null', PM2_ERROR_FILE: '/dev/null', ...process.env },
});
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => child.kill(signal));
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));

/** How long a first worker may take to answer readyz before start says so (PM2's listen_timeout is 15 s, plus a build-free cold start). */
const READY_WAIT_MS = 120_000;
const running = () => child.exitCode === null && child.signalCode === null;

/** true when readyz answers 200 (ready or degraded); false on 503, no answer or a refused connection. */
function answersReady(host: string, port: number): Promise<boolean> {
  return new Promise((resolveReady) => {
    const req = get({ host, port, path: '/_platform/readyz', timeout: 1000, headers: { connection: 'close' } }, (res) => {
      res.resume();
      resolveReady(res.statusCode === 200);
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolveReady(false));
  });
}

async function announceWhenReady(port: number): Promise<void> {
  const probeHost = config.host === undefined || ['0.0.0.0', '::', '[::]'].includes(config.host) ? '127.0.0.1' : config.host.replace(/^\[(.*)\]$/, '$1');
  const deadline = Date.now() + READY_WAIT_MS;
  while (running()) {
    if (await answersReady(probeHost, port)) break;
    if (Date.now() > deadline) {
      console.error(`start: no worker answered ${httpOrigin(probeHost, port)}/_platform/readyz within ${READY_WAIT_MS / 1000} s; the logs above say why`);
      return;
    }
    await sleep(250);
  }
  if (!running()) return;
  // Counted by the same scan the workers run (tenant/registry.ts over sites/site-source.ts: a valid
  // id, a folder or a symlink to one, holding a site.json), so the line and the status page agree.
  const registry = createSiteRegistry({ sitesDir: config.sitesDir, platformDomain: config.platformDomain, rescanIntervalMs: 0, follow: false });
  try {
    await registry.scan();
  } catch (error) {
    console.error(`start: cannot read SITES_DIR ${config.sitesDir} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
    return;
  }
  process.stdout.write(`${servingLine({ siteIds: registry.siteIds, platformDomain: config.platformDomain, port, host: config.host, sitesDir: config.sitesDir })}\n`);
}

// PORT=0 lets each worker pick its own port: there is no one URL to give.
if (config.port !== 0) void announceWhenReady(config.port);
