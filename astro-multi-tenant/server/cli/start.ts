import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { availableParallelism } from 'node:os';
import { APP_DIR, loadConfig } from '../config.ts';
import { clusterProblem } from '../session/embedded-mode.ts';

/**
 * `npm start`: build once if the Astro bundle or the stylesheets are missing, then run the PM2
 * cluster in the foreground (pm2-runtime), so Docker, systemd or a terminal own its lifetime.
 */
const root = resolve(APP_DIR, '..');
let config;
try {
  config = loadConfig();
} catch (error) {
  console.error(`start: configuration error: ${(error as Error).message}`);
  process.exit(78);
}
// Same rule the workers enforce, said once and up front instead of by a crash-looping cluster.
const requested = process.env.INSTANCES || (config.redis ? 'max' : '1');
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
