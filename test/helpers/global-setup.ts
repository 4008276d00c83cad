import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';

/** Integration tests drive the real built server: build once if the bundle is missing. */
export default function setup() {
  const root = resolve(import.meta.dirname, '../..');
  const entry = resolve(root, 'astro-multi-tenant/dist/server/entry.mjs');
  const css = resolve(root, 'astro-multi-tenant/site-css/_base/manifest.json');
  if (existsSync(entry) && existsSync(css)) return;
  const result = spawnSync('npm', ['run', 'build'], { cwd: root, stdio: 'inherit' });
  if (result.status !== 0) throw new Error('npm run build failed; integration tests need the built server');
}
