import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { generateSites, siteHost } from './generate-sites.ts';
import { runLoad, type LoadOptions, type LoadResult } from './load.ts';
import type { TargetResult } from './report.ts';

/**
 * The noisy neighbour (fairness issue): site B's latency alone, then while site A saturates
 * uncached renders from `noisyConnections` connections, in one host process with the render cache
 * off (every request renders). Twice in the same run: without plans (every site on the built-in
 * default: what happened before plans existed) and with A on a small plan (PLANS_FILE).
 */
export interface NoisyPhase {
  /** B alone. */
  alone: LoadResult;
  /** B while A floods. */
  withNoisy: LoadResult;
  /** A's flood itself (200s that rendered, 429s that were shed). */
  noisy: LoadResult;
}

export interface NoisyNeighbourResult {
  quietHost: string;
  noisyHost: string;
  quietConnections: number;
  noisyConnections: number;
  /** The plan A is on in `limited` (PLANS_FILE contents). */
  plan: Record<string, unknown>;
  unlimited: NoisyPhase;
  limited: NoisyPhase;
}

export interface NoisyDeps {
  work: string;
  seconds: number;
  warmupSeconds: number;
  quietConnections?: number;
  noisyConnections?: number;
  /** Starts the host on a sites folder with extra environment; returns its port and pid, and how to stop it. */
  startHost(name: string, sitesDir: string, env: Record<string, string>): Promise<{ port: number; pid: number; stop(): Promise<void> }>;
  /** One request that must answer 200. */
  prime(port: number, host: string): Promise<void>;
  say(message: string): void;
}

/** A's plan: a tenth of a core of rendering per worker, one render at a time, 50 renders/s. */
export const NOISY_PLAN = { renderCpuMsPerSecond: 100, renderConcurrency: 1, rendersPerSecond: 50 };

export async function runNoisyNeighbour(deps: NoisyDeps): Promise<NoisyNeighbourResult> {
  const sitesDir = join(deps.work, 'sites-noisy');
  await generateSites(sitesDir, 2);
  const noisyHost = siteHost(0);
  const quietHost = siteHost(1);
  const quietConnections = deps.quietConnections ?? 4;
  const noisyConnections = deps.noisyConnections ?? 64;
  const plansFile = join(deps.work, 'noisy-plans.json');
  const plan = { plans: { noisy: NOISY_PLAN }, sites: { 'site-00000': 'noisy' } };
  await writeFile(plansFile, JSON.stringify(plan));

  async function phase(name: string, env: Record<string, string>): Promise<NoisyPhase> {
    // Render cache off: every request of either site is a real render, the expensive path.
    const host = await deps.startHost(`host-noisy-${name}`, sitesDir, { RENDER_CACHE_MB: '0', ...env });
    try {
      await deps.prime(host.port, quietHost);
      await deps.prime(host.port, noisyHost);
      const quiet: LoadOptions = { port: host.port, path: '/', host: quietHost, connections: quietConnections, seconds: deps.seconds, warmupSeconds: deps.warmupSeconds, cpuPids: [host.pid] };
      const alone = await runLoad(deps.work, `noisy-${name}-quiet-alone`, quiet);
      const [withNoisy, noisy] = await Promise.all([
        runLoad(deps.work, `noisy-${name}-quiet-with-noisy`, quiet),
        runLoad(deps.work, `noisy-${name}-noisy`, { ...quiet, host: noisyHost, connections: noisyConnections, cpuPids: [] }),
      ]);
      deps.say(`noisy neighbour, ${name}: B p99 alone ${alone.latencyMs.p99} ms, with A ${withNoisy.latencyMs.p99} ms; A ${Math.round(noisy.rps)} req/s (${Object.entries(noisy.statusCodes).map(([c, n]) => `${c}: ${n}`).join(', ')})`);
      return { alone, withNoisy, noisy };
    } finally {
      await host.stop();
    }
  }

  const unlimited = await phase('unlimited', {});
  const limited = await phase('limited', { PLANS_FILE: plansFile });
  return { quietHost, noisyHost, quietConnections, noisyConnections, plan, unlimited, limited };
}

const ratio = (p: NoisyPhase) => (p.alone.latencyMs.p99 > 0 ? p.withNoisy.latencyMs.p99 / p.alone.latencyMs.p99 : undefined);

/** The issue's target: B's p99 with the noisy neighbour at most 1.5× B alone, with A on its plan. */
export function noisyTarget(result: NoisyNeighbourResult): TargetResult {
  const limited = ratio(result.limited);
  const before = ratio(result.unlimited);
  return {
    id: 'noisy-neighbour-p99',
    label: `Site B's p99 while site A floods uncached renders (${result.noisyConnections} connections) vs alone, A on a plan (without plans: ${before === undefined ? 'n/a' : `${before.toFixed(2)}×`})`,
    measured: limited === undefined ? 'n/a' : `${limited.toFixed(2)}× (${result.limited.withNoisy.latencyMs.p99} / ${result.limited.alone.latencyMs.p99} ms)`,
    threshold: '≤ 1.5×',
    value: limited,
    pass: limited !== undefined && limited <= 1.5,
  };
}

/** The scenario's table for latest.md. */
export function renderNoisy(result: NoisyNeighbourResult): string {
  const row = (name: string, l: LoadResult) =>
    `| ${name} | ${Math.round(l.rps).toLocaleString('en-US')} | ${l.latencyMs.p50} | ${l.latencyMs.p99} | ${l.errors + l.timeouts} | ${Object.entries(l.statusCodes).map(([c, n]) => `${c}: ${n.toLocaleString('en-US')}`).join(', ')} |`;
  const r = (p: NoisyPhase) => ratio(p)?.toFixed(2) ?? 'n/a';
  return [
    `Render cache off (every request renders). B = \`${result.quietHost}\` from ${result.quietConnections} connections; A = \`${result.noisyHost}\` from ${result.noisyConnections}. With plans, A is on \`${JSON.stringify(result.plan.plans)}\`; B on the default.`,
    '',
    '| load | req/s | p50 ms | p99 ms | errors | status codes |',
    '| --- | ---: | ---: | ---: | ---: | --- |',
    row('no plans: B alone', result.unlimited.alone),
    row('no plans: B with A', result.unlimited.withNoisy),
    row('no plans: A', result.unlimited.noisy),
    row('A on its plan: B alone', result.limited.alone),
    row('A on its plan: B with A', result.limited.withNoisy),
    row('A on its plan: A', result.limited.noisy),
    '',
    `B's p99 with A / alone: ${r(result.unlimited)}× without plans, ${r(result.limited)}× with A on its plan.`,
  ].join('\n');
}
