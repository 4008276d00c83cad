import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { APP_DIR, loadConfig } from '../config.ts';

/**
 * `npm start`: build once if the Astro bundle or the stylesheets are missing, then run the PM2
 * cluster in the foreground (pm2-runtime), so Docker, systemd or a terminal own its lifetime.
 */
const root = resolve(APP_DIR, '..');
const config = loadConfig();
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';

if (!existsSync(config.astroEntry) || !existsSync(join(config.cssDir, '_base', 'manifest.json'))) {
  console.log('start: no build found, running npm run build');
  const build = spawnSync(npm, ['run', 'build'], { cwd: root, stdio: 'inherit' });
  if (build.status !== 0) process.exit(build.status ?? 1);
}

const pm2Runtime = join(root, 'node_modules', 'pm2', 'bin', 'pm2-runtime');
const child = spawn(process.execPath, [pm2Runtime, 'start', join(root, 'ecosystem.config.js')], { cwd: root, stdio: 'inherit' });
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => child.kill(signal));
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
