import { appendFile, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { siteHost, siteId } from './generate-sites.ts';
import { runLoad, type LoadOptions, type LoadResult } from './load.ts';
import type { PeerBuild } from './compiled-in-peer.ts';
import type { TargetResult } from './report.ts';

/**
 * Issue 12: cold sites against the compiled-in peer (compiled-in-peer.ts), in one run.
 *
 * - cold spread: a fresh process, one pass over every site (each request a site the process has
 *   not seen), `connections` at a time: the host once with an empty Markdown cache, once with the
 *   cache the first pass filled (after a deploy or a reload); the peer once (it has no such cache:
 *   its Markdown was rendered at build time);
 * - warm spread: the same processes right after their pass, round-robin over all sites;
 * - Zipf mix: s = 1 over all sites (a few sites get most requests), the host with its render cache
 *   on (default settings);
 * - edit-to-live: from writing a page to the new text being served: the host as it runs; the
 *   peer rebuilt (`astro build`, its content cache warm) and restarted.
 */
export interface ColdSpreadResult {
  sites: number;
  connections: number;
  peerBuild: { seconds: number; peakRssBytes: number | undefined; sites: number };
  host: { coldEmpty: LoadResult; coldWarm: LoadResult; warmSpread: LoadResult; zipf: LoadResult; rssBytes: number | undefined; editToLiveMs: number };
  peer: { cold: LoadResult; warmSpread: LoadResult; zipf: LoadResult; rssBytes: number | undefined; editToLiveMs: number; rebuildSeconds: number };
}

export interface Running {
  port: number;
  pid: number;
  rss(): number | undefined;
  stop(): Promise<void>;
}

export interface ColdSpreadDeps {
  work: string;
  sitesDir: string;
  sites: number;
  connections: number;
  seconds: number;
  warmupSeconds: number;
  say(message: string): void;
  /** The host with default settings and this Markdown cache folder, fresh. */
  startHost(name: string, markdownCacheDir: string): Promise<Running>;
  /** Builds the peer over `sitesDir` (timed). */
  buildPeer(): Promise<PeerBuild>;
  startPeer(build: PeerBuild): Promise<Running>;
  get(port: number, host: string): Promise<{ status: number; body: Buffer }>;
}

const hostsOf = (sites: number) => Array.from({ length: sites }, (_, i) => siteHost(i));

/** Polls `host` until its page contains `marker`; milliseconds since `since`. */
async function visibleAfter(deps: ColdSpreadDeps, port: () => number | undefined, host: string, marker: string, since: number, limitMs = 600_000): Promise<number> {
  for (;;) {
    const p = port();
    if (p !== undefined) {
      const res = await deps.get(p, host).catch(() => undefined);
      if (res?.status === 200 && res.body.includes(marker)) return performance.now() - since;
    }
    if (performance.now() - since > limitMs) throw new Error(`edit to ${host} not visible within ${limitMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export async function runColdSpread(deps: ColdSpreadDeps): Promise<ColdSpreadResult> {
  const hosts = hostsOf(deps.sites);
  const base = (port: number, pid: number, extra: Partial<LoadOptions>): LoadOptions => ({
    port,
    path: '/',
    host: hosts[0]!,
    hosts,
    connections: deps.connections,
    seconds: deps.seconds,
    warmupSeconds: deps.warmupSeconds,
    cpuPids: [pid],
    ...extra,
  });
  const onePass = { amount: deps.sites, warmupSeconds: 0 };
  const zipf = { pick: 'zipf' as const, zipfS: 1 };

  // The peer first: its build must not overlap any measurement.
  deps.say(`compiled-in peer: astro build over ${deps.sites} sites…`);
  const build = await deps.buildPeer();
  deps.say(`compiled-in peer built in ${build.buildSeconds.toFixed(1)} s, peak RSS ${((build.buildPeakRssBytes ?? 0) / 2 ** 20).toFixed(0)} MiB`);
  let peer = await deps.startPeer(build);
  let peerResult: ColdSpreadResult['peer'];
  try {
    const cold = await runLoad(deps.work, 'peer-cold', base(peer.port, peer.pid, onePass));
    deps.say(`peer cold pass: ${cold.rps} req/s, ${cold.serverCpuUsPerRequest} µs CPU/req`);
    const warmSpread = await runLoad(deps.work, 'peer-warm-spread', base(peer.port, peer.pid, {}));
    const zipfLoad = await runLoad(deps.work, 'peer-zipf', base(peer.port, peer.pid, zipf));
    const rssBytes = peer.rss();
    deps.say(`peer warm spread ${warmSpread.rps} req/s, Zipf ${zipfLoad.rps} req/s`);
    // Edit-to-live: one line in one page, then what a compiled-in app needs: a build and a restart.
    const marker = `edited-${Date.now()}`;
    const edited = siteId(1);
    await appendFile(join(deps.sitesDir, edited, 'pages', 'index.md'), `\n${marker}\n`);
    const since = performance.now();
    await peer.stop();
    let current: Running | undefined;
    const rebuild = await deps.buildPeer();
    current = peer = await deps.startPeer(rebuild);
    const editToLiveMs = await visibleAfter(deps, () => current?.port, siteHost(1), marker, since);
    deps.say(`peer edit-to-live ${(editToLiveMs / 1000).toFixed(1)} s (rebuild ${rebuild.buildSeconds.toFixed(1)} s)`);
    peerResult = { cold, warmSpread, zipf: zipfLoad, rssBytes, editToLiveMs, rebuildSeconds: rebuild.buildSeconds };
  } finally {
    await peer.stop();
  }

  // The host: a fresh Markdown cache, then a fresh process on the cache the first one filled.
  const markdownCacheDir = join(deps.work, 'cold-spread-markdown-cache');
  await mkdir(markdownCacheDir, { mode: 0o700, recursive: true });
  let hostResult: ColdSpreadResult['host'];
  const first = await deps.startHost('host-cold-empty', markdownCacheDir);
  let coldEmpty: LoadResult;
  try {
    coldEmpty = await runLoad(deps.work, 'host-cold-empty', base(first.port, first.pid, onePass));
    deps.say(`host cold pass, empty Markdown cache: ${coldEmpty.rps} req/s, ${coldEmpty.serverCpuUsPerRequest} µs CPU/req`);
    // Let background cache writes land before the next process reads them.
    await new Promise((r) => setTimeout(r, 1000));
  } finally {
    await first.stop();
  }
  const host = await deps.startHost('host-cold-warm', markdownCacheDir);
  try {
    const coldWarm = await runLoad(deps.work, 'host-cold-warm', base(host.port, host.pid, onePass));
    deps.say(`host cold pass, warm Markdown cache: ${coldWarm.rps} req/s, ${coldWarm.serverCpuUsPerRequest} µs CPU/req`);
    const warmSpread = await runLoad(deps.work, 'host-warm-spread', base(host.port, host.pid, {}));
    const zipfLoad = await runLoad(deps.work, 'host-zipf', base(host.port, host.pid, zipf));
    const rssBytes = host.rss();
    deps.say(`host warm spread ${warmSpread.rps} req/s, Zipf ${zipfLoad.rps} req/s`);
    const marker = `edited-${Date.now()}`;
    const since = performance.now();
    await appendFile(join(deps.sitesDir, siteId(2), 'pages', 'index.md'), `\n${marker}\n`);
    const editToLiveMs = await visibleAfter(deps, () => host.port, siteHost(2), marker, since);
    deps.say(`host edit-to-live ${editToLiveMs.toFixed(0)} ms`);
    hostResult = { coldEmpty, coldWarm, warmSpread, zipf: zipfLoad, rssBytes, editToLiveMs };
  } finally {
    await host.stop();
  }
  return { sites: deps.sites, connections: deps.connections, peerBuild: { seconds: build.buildSeconds, peakRssBytes: build.buildPeakRssBytes, sites: deps.sites }, host: hostResult, peer: peerResult };
}

const ratio = (a: number | undefined, b: number | undefined) => (a !== undefined && b !== undefined && b > 0 ? a / b : undefined);
const fmt = (x: number | undefined, digits = 2) => (x === undefined ? '?' : x.toFixed(digits));

/** The targets, from this run's ratios. */
export function coldSpreadTargets(r: ColdSpreadResult): TargetResult[] {
  const peerCpu = r.peer.warmSpread.serverCpuUsPerRequest;
  const rows: Array<[string, number | undefined, string, (x: number) => boolean]> = [
    ['cold spread, Markdown cache and rendered pages warm: CPU/request vs the peer\'s spread', ratio(r.host.coldWarm.serverCpuUsPerRequest, peerCpu), '≤ 1.0×', (x) => x <= 1],
    ['cold spread, Markdown cache and rendered pages empty: CPU/request vs the peer\'s spread', ratio(r.host.coldEmpty.serverCpuUsPerRequest, peerCpu), '≤ 1.5×', (x) => x <= 1.5],
    ['warm spread: req/s vs the peer\'s', ratio(r.host.warmSpread.rps, r.peer.warmSpread.rps), '≥ 2×', (x) => x >= 2],
    ['Zipf mix (s = 1): req/s vs the peer\'s', ratio(r.host.zipf.rps, r.peer.zipf.rps), '≥ 2×', (x) => x >= 2],
  ];
  return rows.map(([label, value, threshold, ok]) => ({ id: label, label, measured: `${fmt(value)}×`, threshold, value, pass: value !== undefined && ok(value) }));
}

/** Tables for cold-spread.md and the README. */
export function renderColdSpread(r: ColdSpreadResult): string {
  const row = (name: string, l: LoadResult) => `| ${name} | ${l.rps.toLocaleString('en-US')} | ${l.latencyMs.p50} | ${l.latencyMs.p99} | ${l.serverCpuUsPerRequest ?? '?'} | ${l.non2xx + l.errors + l.timeouts} |`;
  const mib = (b: number | undefined) => (b === undefined ? '?' : `${(b / 2 ** 20).toFixed(0)} MiB`);
  const lines = [
    `${r.sites.toLocaleString('en-US')} sites, ${r.connections} connections; cold passes are exactly one request per site.`,
    '',
    '| scenario | req/s | p50 ms | p99 ms | server CPU µs/req | failed |',
    '| --- | ---: | ---: | ---: | ---: | ---: |',
    row('peer: cold pass (fresh process)', r.peer.cold),
    row('peer: warm spread', r.peer.warmSpread),
    row('peer: Zipf s=1', r.peer.zipf),
    row('host: cold pass, Markdown cache and rendered pages empty', r.host.coldEmpty),
    row('host: cold pass, Markdown cache and rendered pages warm', r.host.coldWarm),
    row('host: warm spread', r.host.warmSpread),
    row('host: Zipf s=1 (render cache on)', r.host.zipf),
    '',
    `| | peer | host |`,
    '| --- | ---: | ---: |',
    `| build | ${fmt(r.peerBuild.seconds, 1)} s, peak ${mib(r.peerBuild.peakRssBytes)} | none |`,
    `| edit-to-live (one line of one page) | ${fmt(r.peer.editToLiveMs / 1000, 1)} s (rebuild ${fmt(r.peer.rebuildSeconds, 1)} s + restart) | ${fmt(r.host.editToLiveMs / 1000, 2)} s |`,
    `| RSS after the Zipf run | ${mib(r.peer.rssBytes)} | ${mib(r.host.rssBytes)} |`,
    '',
    '| target | measured | goal | result |',
    '| --- | ---: | ---: | --- |',
    ...coldSpreadTargets(r).map((t) => `| ${t.label} | ${t.measured} | ${t.threshold} | ${t.pass ? 'pass' : '**miss**'} |`),
  ];
  return lines.join('\n');
}

/** Writes cold-spread.json / .md into `outDir`. */
export async function writeColdSpread(outDir: string, r: ColdSpreadResult, machine: unknown): Promise<string> {
  await mkdir(outDir, { recursive: true });
  await writeFile(join(outDir, 'cold-spread.json'), `${JSON.stringify({ date: new Date().toISOString(), machine, coldSpread: r, targets: coldSpreadTargets(r) }, null, 2)}\n`);
  const md = join(outDir, 'cold-spread.md');
  await writeFile(md, `# Cold sites vs the compiled-in peer\n\n${new Date().toISOString()}\n\n${renderColdSpread(r)}\n`);
  return md;
}
