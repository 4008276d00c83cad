import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { generateSites, siteHost } from './generate-sites.ts';
import { runLoad, type LoadOptions, type LoadResult } from './load.ts';
import type { TargetResult } from './report.ts';

/**
 * The unknown-host flood (tenant-isolation issue, rule 12): among `sites` generated folders, a
 * known site's latency alone, then the same load on it while as many connections again send
 * requests for random host names no site claims, in the same process, in the same run.
 */
export interface UnknownFloodResult {
  sites: number;
  knownHost: string;
  /** Distinct random host names the flood cycles through (half custom names, half `<label>.localhost`). */
  unknownHosts: number;
  /** The known site alone. */
  alone: LoadResult;
  /** The known site while the flood runs. */
  withFlood: LoadResult;
  /** The flood itself (every answer a 404). */
  flood: LoadResult;
  /** Seconds the host took from spawn to ready (its first full scan of every site). */
  startSeconds: number;
}

export interface FloodDeps {
  work: string;
  sites: number;
  connections: number;
  seconds: number;
  warmupSeconds: number;
  /** Starts the host on a sites folder (default settings); returns its port and pid, and how to stop it. */
  startHost(sitesDir: string): Promise<{ port: number; pid: number; stop(): Promise<void> }>;
  /** Primes a host: one request, must answer 200. */
  prime(port: number, host: string): Promise<void>;
  say(message: string): void;
}

/** Random host names no generated site claims: `u<hex>.bench.test` and `<hex>.localhost`. */
export function unknownHosts(count: number): string[] {
  return Array.from({ length: count }, (_, i) => `${i % 2 ? '' : 'u'}${randomBytes(6).toString('hex')}.${i % 2 ? 'localhost' : 'bench.test'}`);
}

export async function runUnknownFlood(deps: FloodDeps): Promise<UnknownFloodResult> {
  const sitesDir = join(deps.work, `sites-flood-${deps.sites}`);
  const generated = performance.now();
  await generateSites(sitesDir, deps.sites);
  deps.say(`flood: generated ${deps.sites.toLocaleString('en-US')} site folders in ${((performance.now() - generated) / 1000).toFixed(1)} s`);
  const knownHost = siteHost(Math.floor(deps.sites / 2));
  const started = performance.now();
  const host = await deps.startHost(sitesDir);
  const startSeconds = (performance.now() - started) / 1000;
  try {
    await deps.prime(host.port, knownHost);
    const base: LoadOptions = { port: host.port, path: '/', host: knownHost, connections: deps.connections, seconds: deps.seconds, warmupSeconds: deps.warmupSeconds, cpuPids: [host.pid] };
    const alone = await runLoad(deps.work, 'flood-known-alone', base);
    const hosts = unknownHosts(20_000);
    const [withFlood, flood] = await Promise.all([
      runLoad(deps.work, 'flood-known-with-flood', base),
      runLoad(deps.work, 'flood-unknown', { ...base, hosts, cpuPids: [] }),
    ]);
    return { sites: deps.sites, knownHost, unknownHosts: hosts.length, alone, withFlood, flood, startSeconds };
  } finally {
    await host.stop();
  }
}

/** The issue's target: the known site's p99 under the flood at most 1.5× its p99 alone. */
export function floodTarget(result: UnknownFloodResult): TargetResult {
  const ratio = result.alone.latencyMs.p99 > 0 ? result.withFlood.latencyMs.p99 / result.alone.latencyMs.p99 : undefined;
  return {
    id: 'unknown-flood-p99',
    label: `Known-site p99 under an unknown-host flood vs alone, ${result.sites.toLocaleString('en-US')} sites`,
    measured: ratio === undefined ? 'n/a' : `${ratio.toFixed(2)}× (${result.withFlood.latencyMs.p99} / ${result.alone.latencyMs.p99} ms)`,
    threshold: '≤ 1.5×',
    value: ratio,
    pass: ratio !== undefined && ratio <= 1.5,
  };
}

/** The flood's table for latest.md and bench/README.md. */
export function renderFlood(result: UnknownFloodResult): string {
  const row = (name: string, l: LoadResult) =>
    `| ${name} | ${Math.round(l.rps).toLocaleString('en-US')} | ${l.latencyMs.p50} | ${l.latencyMs.p99} | ${l.errors + l.timeouts} | ${Object.entries(l.statusCodes).map(([c, n]) => `${c}: ${n.toLocaleString('en-US')}`).join(', ')} | ${l.serverCpuUsPerRequest ?? 'n/a'} |`;
  return [
    `${result.sites.toLocaleString('en-US')} site folders; known host \`${result.knownHost}\` (render cache on, default settings); the flood cycles through ${result.unknownHosts.toLocaleString('en-US')} random names no site claims; host ready ${result.startSeconds.toFixed(1)} s after spawn.`,
    '',
    '| load | req/s | p50 ms | p99 ms | errors | status codes | server CPU µs/req |',
    '| --- | ---: | ---: | ---: | ---: | --- | ---: |',
    row('known site alone', result.alone),
    row('known site during the flood', result.withFlood),
    row('the flood (unknown hosts)', result.flood),
  ].join('\n');
}
