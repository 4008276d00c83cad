import { isAbsolute, join, resolve } from 'node:path';

/** The repository root (bench/ lives directly below it). */
export const ROOT = resolve(import.meta.dirname, '..');
/** Every temp dir of a run lives below this (git-ignored), so the Astro baseline resolves astro from ROOT/node_modules. */
export const WORK_ROOT = join(ROOT, 'bench', '.work');
export const DEFAULT_OUT = join(ROOT, 'bench', 'results');

export interface BenchSettings {
  /** Generated site folders. */
  sites: number;
  /** Measured seconds per load scenario. */
  seconds: number;
  /** Warm-up seconds with the same load before every measured run (not counted). */
  warmupSeconds: number;
  /** Keep-alive connections autocannon opens, the same for every scenario. */
  connections: number;
  /** Concurrency of the first-request sweep over all sites (1 = strictly sequential). */
  coldConcurrency: number;
  smoke: boolean;
  /** Where latest.json / .md / .svg are written. */
  outDir: string;
  /** Keep bench/.work/<run> (sites, Astro project, logs) after the run. */
  keep: boolean;
  /** Replace the bench block in README.md. */
  updateReadme: boolean;
  /**
   * Per-request access logs on (host LOG_LEVEL=info, nginx access_log to a file). Off by default:
   * the Astro baseline and raw node log nothing per request, so the comparison is of serving only.
   */
  accessLog: boolean;
  /** Site folders of the unknown-host flood scenario (its own folder); 0 skips it. */
  floodSites: number;
  /** `unknown-flood`: run only that scenario and write unknown-flood.json / .md. */
  only: 'unknown-flood' | 'noisy-neighbour' | 'cold-spread' | 'component-edits' | 'components-page' | undefined;
  /** Edits of one component in `component-edits` (BENCH_COMPONENT_EDITS). */
  componentEdits: number;
}

type Env = Record<string, string | undefined>;

function positive(env: Env, name: string, fallback: number, options: { integer?: boolean; min?: number } = {}): number {
  const integer = options.integer ?? true;
  const min = options.min ?? (integer ? 1 : 0.1);
  const raw = env[name]?.trim();
  if (!raw) return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value < min || (integer && !Number.isInteger(value))) {
    throw new Error(`${name}: "${raw}" must be ${integer ? 'a whole number' : 'a number'} ≥ ${min}`);
  }
  return value;
}

const flag = (env: Env, name: string) => env[name] === '1' || env[name] === 'true';

function onlyScenario(raw: string | undefined): BenchSettings['only'] {
  const value = raw?.trim();
  if (!value) return undefined;
  if (value === 'unknown-flood' || value === 'noisy-neighbour' || value === 'cold-spread' || value === 'component-edits' || value === 'components-page') return value;
  throw new Error(`BENCH_ONLY: "${value}" is not a scenario that runs alone (unknown-flood, noisy-neighbour, cold-spread, component-edits, components-page)`);
}

export function loadSettings(env: Env = process.env): BenchSettings {
  const smoke = flag(env, 'BENCH_SMOKE');
  const outRaw = env.BENCH_OUT?.trim();
  const outDir = outRaw ? (isAbsolute(outRaw) ? outRaw : resolve(process.cwd(), outRaw)) : DEFAULT_OUT;
  const sites = positive(env, 'BENCH_SITES', smoke ? 30 : 10_000);
  if (sites > 99_999) throw new Error('BENCH_SITES: at most 99999 (site ids are site-00000 … site-99999)');
  return {
    sites,
    seconds: positive(env, 'BENCH_SECONDS', smoke ? 1 : 8, { integer: false }),
    warmupSeconds: positive(env, 'BENCH_WARMUP_SECONDS', smoke ? 0.5 : 1, { integer: false, min: 0 }),
    connections: positive(env, 'BENCH_CONNECTIONS', 16),
    coldConcurrency: positive(env, 'BENCH_COLD_CONCURRENCY', 1),
    smoke,
    outDir,
    keep: flag(env, 'BENCH_KEEP'),
    // Only a full run into the committed results may rewrite the README; smoke runs and runs into
    // another folder (the test) never touch it.
    updateReadme: env.BENCH_README !== '0' && !smoke && outDir === DEFAULT_OUT,
    accessLog: flag(env, 'BENCH_ACCESS_LOG'),
    floodSites: env.BENCH_FLOOD_SITES?.trim() === '0' ? 0 : positive(env, 'BENCH_FLOOD_SITES', smoke ? 200 : 100_000),
    only: onlyScenario(env.BENCH_ONLY),
    componentEdits: positive(env, 'BENCH_COMPONENT_EDITS', smoke ? 100 : 1000),
  };
}
