import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ROOT } from './settings.ts';
import { logTail, spawnLogged } from './processes.ts';

/** What the orchestrator asks of bench/load-worker.ts (passed as a JSON file). */
export interface LoadOptions {
  port: number;
  path: string;
  /** Host header of every request, unless `hosts` is given. */
  host: string;
  /** Spread mode: requests cycle through these Host headers (one global round-robin). */
  hosts?: string[];
  /**
   * With `hosts`: `zipf` picks each request's host at random with probability ∝ 1 / rank^zipfS
   * (rank = position in `hosts`, from a seeded generator, the same sequence every run) instead
   * of the round-robin.
   */
  pick?: 'round-robin' | 'zipf';
  zipfS?: number;
  /** Exactly this many requests (no warm-up, no duration): e.g. one pass over `hosts`. */
  amount?: number;
  connections: number;
  seconds: number;
  warmupSeconds: number;
  /** Processes serving the load: their CPU time over the measured run is reported per request. */
  cpuPids?: number[];
}

export interface LatencySummary {
  p50: number;
  p90: number;
  p99: number;
  max: number;
  mean: number;
}

/** What the worker writes (a JSON file) for the measured run. */
export interface LoadResult {
  /** Completed responses in the measured window. */
  requests: number;
  ok2xx: number;
  non2xx: number;
  errors: number;
  timeouts: number;
  /** Measured wall seconds (autocannon's own). */
  seconds: number;
  rps: number;
  /** Latency of every response, from autocannon's per-response timings (ms, sub-ms precision). */
  latencyMs: LatencySummary;
  statusCodes: Record<string, number>;
  bytesPerResponse: number;
  warmupRequests: number;
  /** CPU seconds (user + system) the `cpuPids` used during the measured run. */
  serverCpuSeconds?: number;
  /** The same per completed request, in microseconds: a throughput-independent cost measure. */
  serverCpuUsPerRequest?: number;
}

/** Nearest-rank percentiles of a list of milliseconds. */
export function summarize(values: ArrayLike<number>): LatencySummary {
  const sorted = Float64Array.from(values).sort();
  const n = sorted.length;
  if (n === 0) return { p50: 0, p90: 0, p99: 0, max: 0, mean: 0 };
  const at = (p: number) => sorted[Math.min(n - 1, Math.max(0, Math.ceil((p / 100) * n) - 1))]!;
  let sum = 0;
  for (const v of sorted) sum += v;
  const round = (v: number) => Math.round(v * 1000) / 1000;
  return { p50: round(at(50)), p90: round(at(90)), p99: round(at(99)), max: round(sorted[n - 1]!), mean: round(sum / n) };
}

/**
 * Runs autocannon in its own process (bench/load-worker.ts), so the load generator never shares an
 * event loop with the orchestrator or the server under test, and returns its measurements.
 */
export async function runLoad(workDir: string, name: string, options: LoadOptions): Promise<LoadResult> {
  const optionsFile = join(workDir, `load-${name}.json`);
  const resultFile = join(workDir, `load-${name}.result.json`);
  await writeFile(optionsFile, JSON.stringify(options));
  const child = spawnLogged({
    name: `load:${name}`,
    command: process.execPath,
    args: [join(ROOT, 'bench', 'load-worker.ts'), optionsFile, resultFile],
    cwd: ROOT,
    env: { ...process.env },
    logFile: join(workDir, 'logs', `load-${name}.log`),
  });
  // One pass of `amount` cold requests may take minutes on a busy machine.
  const limitMs = (options.seconds + options.warmupSeconds) * 1000 + 60_000 + (options.amount ?? 0) * 100;
  const timer = setTimeout(() => child.process.kill('SIGKILL'), limitMs);
  const code = await child.exited;
  clearTimeout(timer);
  if (code !== 0) throw new Error(`load worker for ${name} failed (exit ${code}):\n${logTail(child)}`);
  return JSON.parse(await readFile(resultFile, 'utf8')) as LoadResult;
}
