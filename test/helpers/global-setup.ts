import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { buildStaleness, type BuildPart } from './build-freshness.ts';

const root = resolve(import.meta.dirname, '../..');

/**
 * The sample sites' page, component and layout folders: `npm run css` scans each for one site's
 * Tailwind classes (a folder a site does not have is no input).
 */
function sitePages(): string[] {
  return readdirSync(join(root, 'sites'), { withFileTypes: true })
    .filter((e) => e.isDirectory())
    .flatMap((e) => ['pages', 'components', 'layouts'].map((folder) => join('sites', e.name, folder)));
}

function siteIds(): string[] {
  return readdirSync(join(root, 'sites'), { withFileTypes: true })
    .filter((e) => e.isDirectory())
    .map((e) => e.name);
}

/**
 * What `npm run build` is made of (package.json "build" = build:astro + css). The Astro bundle is
 * the view layer: src/, the shared components it imports, its config and the view model the
 * components import from the server; the stylesheets are Tailwind over the shared components and
 * each site's pages (server/css/build-css.ts). The lock file stands for the Astro and Tailwind
 * versions. Both scripts rewrite their outputs on every run, so an output's mtime is its build time.
 */
function buildParts(): BuildPart[] {
  return [
    {
      script: 'build:astro',
      inputs: ['astro-multi-tenant/src', 'shared-components', 'astro-multi-tenant/astro.config.mjs', 'astro-multi-tenant/server/render/view.ts', 'package-lock.json'],
      outputs: ['astro-multi-tenant/dist/server/entry.mjs'],
    },
    {
      script: 'css',
      inputs: ['shared-components', 'astro-multi-tenant/server/css/build-css.ts', 'astro-multi-tenant/server/cli/css.ts', 'package-lock.json', ...sitePages()],
      outputs: ['_base', ...siteIds()].map((owner) => `astro-multi-tenant/site-css/${owner}/manifest.json`),
    },
  ];
}

// Outside the checkout (nothing to show up in git status if a run is killed mid-build), one per checkout.
const LOCK = join(tmpdir(), `amt-test-build-${createHash('sha256').update(root).digest('hex').slice(0, 12)}.lock`);

/** The pid recorded in the lock, if that process still runs (0 while the holder is writing it). */
function lockHolderAlive(): boolean {
  let pid = 0;
  try {
    pid = Number(readFileSync(join(LOCK, 'pid'), 'utf8').trim());
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * Several vitest runs can start at once on a shared checkout; two builds into one dist/ break
 * both. The lock is a folder (mkdir is atomic) holding the builder's pid; a lock whose holder has
 * been gone for over a second is taken over.
 */
async function withBuildLock(build: () => Promise<void>): Promise<void> {
  let deadSince: number | undefined;
  const started = Date.now();
  for (;;) {
    try {
      mkdirSync(LOCK);
      writeFileSync(join(LOCK, 'pid'), String(process.pid));
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      if (lockHolderAlive()) deadSince = undefined;
      else if (deadSince === undefined) deadSince = Date.now();
      else if (Date.now() - deadSince > 1000) rmSync(LOCK, { recursive: true, force: true });
      if (Date.now() - started > 10 * 60_000) throw new Error(`another test run has held ${LOCK} for 10 minutes`);
      await new Promise((r) => setTimeout(r, 250));
    }
  }
  try {
    await build();
  } finally {
    rmSync(LOCK, { recursive: true, force: true });
  }
}

async function staleParts(): Promise<Array<BuildPart & { reason: string }>> {
  const parts: Array<BuildPart & { reason: string }> = [];
  for (const part of buildParts()) {
    const { stale, reason } = await buildStaleness(root, part);
    if (stale) parts.push({ ...part, reason });
  }
  return parts;
}

/**
 * Integration tests drive the real built server: build the parts whose outputs are missing or
 * older than their sources (only those), and nothing when all are up to date (a few dozen stats).
 */
export default async function setup() {
  if ((await staleParts()).length === 0) return;
  await withBuildLock(async () => {
    // Decided again under the lock: the run that held it may just have built everything.
    for (const part of await staleParts()) {
      console.log(`global-setup: npm run ${part.script} (${part.reason})`);
      const result = spawnSync('npm', ['run', part.script], { cwd: root, stdio: 'inherit' });
      if (result.status !== 0) throw new Error(`npm run ${part.script} failed; integration tests need the built server`);
    }
  });
}
