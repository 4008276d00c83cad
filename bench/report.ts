import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { LatencySummary, LoadResult } from './load.ts';
import type { BenchSettings } from './settings.ts';
import { renderFlood, type UnknownFloodResult } from './unknown-flood.ts';
import { renderNoisy, type NoisyNeighbourResult } from './noisy-neighbour.ts';

export type ScenarioId = 'host-ssr' | 'host-ssr-v8-defaults' | 'astro-baseline' | 'raw-node' | 'host-render-cache' | 'nginx-micro-cache' | 'host-spread';
export const SCENARIO_IDS: readonly ScenarioId[] = ['host-ssr', 'host-ssr-v8-defaults', 'astro-baseline', 'raw-node', 'host-render-cache', 'nginx-micro-cache', 'host-spread'];

export interface ScenarioResult {
  id: ScenarioId;
  label: string;
  /** What exactly was measured, in one sentence. */
  what: string;
  load?: LoadResult;
  /** Why the scenario did not run (nginx not installed). */
  skipped?: string;
  notes: string[];
}

export interface ColdLoadResult {
  sites: number;
  concurrency: number;
  /** The very first request to the benchmarked site after the host started. */
  first: { site: string; e2eMs: number; siteMs: number; pageMs: number };
  /** Server-Timing site + page of the first request to every site. */
  loadMs: LatencySummary;
  siteMs: LatencySummary;
  pageMs: LatencySummary;
  /** Client-side request → last byte of those first requests (keep-alive connection). */
  e2eMs: LatencySummary;
  non200: number;
  sweepSeconds: number;
}

export interface MemoryResult {
  /** Host (render cache off, default LRU), empty Markdown cache, after one request to every site. */
  hostFirstRenderAfterAllSitesBytes: number | undefined;
  /** The same after a restart (Markdown cache warm): the RSS target. */
  hostAfterAllSitesBytes: number | undefined;
  /** The restarted host without node flags (V8 heap defaults), after the sweep and after its load. */
  hostV8DefaultsAfterAllSitesBytes?: number;
  hostV8DefaultsAfterWarmBytes?: number;
  hostAfterWarmBytes: number | undefined;
  baselineAfterWarmBytes: number | undefined;
  /** Host with default settings (render cache on) after its runs, spread run included. */
  hostDefaultAfterSpreadBytes: number | undefined;
  /** The host's own view (status.json) after the sweep: rss and content-cache state. */
  hostStatus: { rssBytes: number; heapUsedBytes: number; cacheEntries: number; cacheBytes: number; evictions: number } | undefined;
}

export interface TargetResult {
  id: string;
  label: string;
  measured: string;
  threshold: string;
  value: number | undefined;
  pass: boolean;
}

export interface MachineInfo {
  cpu: string;
  cores: number;
  ramBytes: number;
  os: string;
  node: string;
  nginx: string | undefined;
  autocannon: string;
  date: string;
}

export interface BenchResults {
  version: 1;
  date: string;
  durationSeconds: number;
  settings: Pick<BenchSettings, 'sites' | 'seconds' | 'warmupSeconds' | 'connections' | 'coldConcurrency' | 'smoke' | 'accessLog'>;
  machine: MachineInfo;
  page: { site: string; host: string; path: string; bytes: { host: number; baseline: number; raw: number } };
  scenarios: ScenarioResult[];
  /** First request to every site after a restart: site and page not in memory, Markdown cache warm. */
  cold: ColdLoadResult;
  /** The same in a process whose Markdown cache was empty: every page rendered for the first time. */
  coldFirst?: ColdLoadResult;
  /** Markdown-cache hits and misses of the restarted host's sweep. */
  markdownAfterRestart?: { hits: number; misses: number };
  /** Node flags the host ran with (from ecosystem.config.js unless BENCH_HOST_DEFAULT_FLAGS=1). */
  hostNodeArgs?: string[];
  memory: MemoryResult;
  /** The known site alone and under an unknown-host flood, among BENCH_FLOOD_SITES folders (bench/unknown-flood.ts). */
  unknownFlood?: UnknownFloodResult;
  /** Site B alone and while site A floods uncached renders, without and with plans (bench/noisy-neighbour.ts). */
  noisyNeighbour?: NoisyNeighbourResult;
  targets: TargetResult[];
}

const MiB = 1024 * 1024;
const fmtInt = (n: number) => Math.round(n).toLocaleString('en-US');
const fmtMs = (n: number) => (n >= 100 ? n.toFixed(0) : n >= 10 ? n.toFixed(1) : n.toFixed(2));
const fmtMiB = (n: number | undefined) => (n === undefined ? 'n/a' : `${(n / MiB).toFixed(1)} MiB`);
const fmtSites = (n: number) => n.toLocaleString('en-US');

/** Ratios and limits from one run (the issue's targets). */
export function evaluateTargets(scenarios: ScenarioResult[], memory: MemoryResult, cold: ColdLoadResult, sites: number, coldFirst?: ColdLoadResult): TargetResult[] {
  const rps = (id: ScenarioId) => scenarios.find((s) => s.id === id)?.load?.rps;
  const ratio = (a: number | undefined, b: number | undefined) => (a !== undefined && b ? a / b : undefined);
  const targets: TargetResult[] = [];
  const ssr = ratio(rps('host-ssr'), rps('astro-baseline'));
  targets.push({
    id: 'ssr-vs-astro',
    label: `SSR of one site among ${fmtSites(sites)} vs single-site Astro (req/s)`,
    measured: ssr === undefined ? 'n/a' : `${ssr.toFixed(2)}× (${fmtInt(rps('host-ssr')!)} / ${fmtInt(rps('astro-baseline')!)})`,
    threshold: '≥ 0.95×',
    value: ssr,
    pass: ssr !== undefined && ssr >= 0.95,
  });
  const cache = ratio(rps('host-render-cache'), rps('raw-node'));
  targets.push({
    id: 'render-cache-vs-raw',
    label: 'Render-cache hit vs raw node:http (req/s)',
    measured: cache === undefined ? 'n/a' : `${cache.toFixed(2)}× (${fmtInt(rps('host-render-cache')!)} / ${fmtInt(rps('raw-node')!)})`,
    threshold: '≥ 0.5×',
    value: cache,
    pass: cache !== undefined && cache >= 0.5,
  });
  const host = memory.hostAfterAllSitesBytes;
  const base = memory.baselineAfterWarmBytes;
  const delta = host !== undefined && base !== undefined ? host - base : undefined;
  targets.push({
    id: 'rss',
    label: `Host RSS after ${fmtSites(sites)} sites vs Astro baseline RSS`,
    measured: delta === undefined ? 'n/a' : `${delta >= 0 ? '+' : ''}${(delta / MiB).toFixed(1)} MiB (${fmtMiB(host)} vs ${fmtMiB(base)})`,
    threshold: '≤ +64 MiB',
    value: delta === undefined ? undefined : delta / MiB,
    pass: delta !== undefined && delta <= 64 * MiB,
  });
  // Issue 12's goals: 3 ms for a site loaded again (after a restart or an eviction), 5 ms for the
  // first render ever of a page (its Markdown rendered too).
  const coldTarget = (id: string, label: string, result: ColdLoadResult, limitMs: number): TargetResult => ({
    id,
    label,
    measured: `${fmtMs(result.loadMs.p99)} ms`,
    threshold: `≤ ${limitMs} ms`,
    value: result.loadMs.p99,
    pass: result.loadMs.p99 <= limitMs,
  });
  targets.push(coldTarget('cold-load-p99', 'Cold site load p99: site not in memory, page rendered before (after a restart or eviction)', cold, 3));
  if (coldFirst) targets.push(coldTarget('cold-first-render-p99', 'Cold site load p99: first render ever of each page (empty Markdown cache)', coldFirst, 5));
  return targets;
}

function scenarioTable(results: BenchResults): string {
  const rows = [
    '| scenario | req/s | p50 ms | p99 ms | errors | non-2xx | requests | server CPU µs/req |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  ];
  for (const s of results.scenarios) {
    if (!s.load) {
      rows.push(`| ${s.label} | skipped: ${s.skipped ?? 'not run'} | | | | | | |`);
      continue;
    }
    const l = s.load;
    rows.push(`| ${s.label} | ${fmtInt(l.rps)} | ${fmtMs(l.latencyMs.p50)} | ${fmtMs(l.latencyMs.p99)} | ${l.errors + l.timeouts} | ${l.non2xx} | ${fmtInt(l.requests)} | ${l.serverCpuUsPerRequest === undefined ? 'n/a' : l.serverCpuUsPerRequest.toFixed(1)} |`);
  }
  return rows.join('\n');
}

function targetTable(results: BenchResults): string {
  const rows = ['| target | measured | goal | result |', '| --- | --- | --- | --- |'];
  for (const t of results.targets) rows.push(`| ${t.label} | ${t.measured} | ${t.threshold} | ${t.pass ? '✅ pass' : '❌ **MISS**'} |`);
  const rps = (id: ScenarioId) => results.scenarios.find((sc) => sc.id === id)?.load?.rps;
  const plain = rps('host-ssr-v8-defaults');
  const baseline = rps('astro-baseline');
  const m = results.memory;
  if (plain !== undefined && baseline) {
    rows.push('');
    rows.push(`The trade-off of the workers' heap bound, same run: on V8's heap defaults the host's SSR is ${(plain / baseline).toFixed(2)}× the baseline (${fmtInt(plain)} req/s) with RSS ${fmtMiB(m.hostV8DefaultsAfterAllSitesBytes)} after the sweep and ${fmtMiB(m.hostV8DefaultsAfterWarmBytes)} after its load, against ${fmtMiB(m.hostAfterAllSitesBytes)} and ${fmtMiB(m.hostAfterWarmBytes)} with the bound.`);
  }
  return rows.join('\n');
}

function coldAndMemory(results: BenchResults): string {
  const { cold, memory } = results;
  const first = results.coldFirst;
  const lat = (s: LatencySummary) => `p50 ${fmtMs(s.p50)} ms · p99 ${fmtMs(s.p99)} ms · max ${fmtMs(s.max)} ms`;
  const status = memory.hostStatus;
  return [
    '| measurement | value |',
    '| --- | --- |',
    ...(first
      ? [
          `| **first render ever** (empty Markdown cache): cold site load of each of ${fmtSites(first.sites)} sites (Server-Timing site + page) | ${lat(first.loadMs)} |`,
          `| … of which site.json (site) | ${lat(first.siteMs)} |`,
          `| … of which Markdown page (page) | ${lat(first.pageMs)} |`,
          `| … end to end | ${lat(first.e2eMs)} (${first.non200} not 200; sweep ${first.sweepSeconds.toFixed(1)} s, concurrency ${first.concurrency}) |`,
          `| host RSS after that sweep | ${fmtMiB(memory.hostFirstRenderAfterAllSitesBytes)} |`,
        ]
      : []),
    `| **after a restart** (Markdown cache warm): first request to ${cold.first.site} (end to end) | ${fmtMs(cold.first.e2eMs)} ms (site ${fmtMs(cold.first.siteMs)} ms + page ${fmtMs(cold.first.pageMs)} ms) |`,
    `| cold site load, first request to each of ${fmtSites(cold.sites)} sites (Server-Timing site + page) | ${lat(cold.loadMs)} |`,
    `| … of which site.json (site) | ${lat(cold.siteMs)} |`,
    `| … of which page (page) | ${lat(cold.pageMs)}${results.markdownAfterRestart ? ` (Markdown cache: ${fmtInt(results.markdownAfterRestart.hits)} hits, ${fmtInt(results.markdownAfterRestart.misses)} misses)` : ''} |`,
    `| … end to end | ${lat(cold.e2eMs)} (${cold.non200} not 200; sweep ${cold.sweepSeconds.toFixed(1)} s, concurrency ${cold.concurrency}) |`,
    `| host RSS after one request to each of ${fmtSites(cold.sites)} sites (render cache off, default LRU) | ${fmtMiB(memory.hostAfterAllSitesBytes)}${status ? ` (content cache ${fmtInt(status.cacheEntries)} entries, ${fmtMiB(status.cacheBytes)}, ${fmtInt(status.evictions)} evictions)` : ''} |`,
    `| host RSS after its warm SSR run | ${fmtMiB(memory.hostAfterWarmBytes)} |`,
    ...(memory.hostV8DefaultsAfterAllSitesBytes !== undefined
      ? [`| the same host on V8 heap defaults (no node flags): RSS after the sweep / after its SSR run | ${fmtMiB(memory.hostV8DefaultsAfterAllSitesBytes)} / ${fmtMiB(memory.hostV8DefaultsAfterWarmBytes)} |`]
      : []),
    `| Astro baseline RSS after its warm run | ${fmtMiB(memory.baselineAfterWarmBytes)} |`,
    `| host RSS, default settings (render cache on), after the spread run | ${fmtMiB(memory.hostDefaultAfterSpreadBytes)} |`,
  ].join('\n');
}

function machineLine(m: MachineInfo): string {
  return `${m.cpu}, ${m.cores} cores, ${(m.ramBytes / 1024 ** 3).toFixed(1)} GiB RAM, ${m.os}, Node ${m.node}, ${m.nginx ?? 'no nginx'}, autocannon ${m.autocannon}`;
}

export function renderMarkdown(results: BenchResults): string {
  const s = results.settings;
  const missed = results.targets.filter((t) => !t.pass);
  return `# Benchmark results

${results.date} · ${fmtSites(s.sites)} generated sites · ${s.connections} connections · ${s.seconds} s per scenario after ${s.warmupSeconds} s warm-up · one process each · loopback${s.smoke ? ' · **smoke run (tiny, not representative)**' : ''}${s.accessLog ? ' · access logs on' : ''}

Host node flags: ${results.hostNodeArgs?.length ? results.hostNodeArgs.map((a) => `\`${a}\``).join(' ') : 'none (V8 defaults)'} (the PM2 workers' \`node_args\` from ecosystem.config.js); the Astro baseline and raw node run on V8's defaults.

Page: \`http://${results.page.host}${results.page.path}\` (${fmtInt(results.page.bytes.host)} bytes from the host, ${fmtInt(results.page.bytes.baseline)} bytes from the Astro baseline, raw node sends the host's bytes).

${scenarioTable(results)}

${results.scenarios.map((sc) => `- **${sc.label}**: ${sc.what}${sc.notes.length ? ` ${sc.notes.join(' ')}` : ''}`).join('\n')}

## Targets

${targetTable(results)}

${missed.length ? `**${missed.length} of ${results.targets.length} targets missed**: ${missed.map((t) => t.id).join(', ')} (see bench/README.md for the profile and the proposed fixes).` : `All ${results.targets.length} targets met.`}

## Cold loads and memory

${coldAndMemory(results)}
${results.unknownFlood ? `
## Unknown-host flood

${renderFlood(results.unknownFlood)}
` : ''}${results.noisyNeighbour ? `
## Noisy neighbour

${renderNoisy(results.noisyNeighbour)}
` : ''}
## Machine

- CPU: ${results.machine.cpu} (${results.machine.cores} cores)
- RAM: ${(results.machine.ramBytes / 1024 ** 3).toFixed(1)} GiB
- OS: ${results.machine.os}
- Node: ${results.machine.node}
- nginx: ${results.machine.nginx ?? 'not installed'}
- autocannon: ${results.machine.autocannon}
- date: ${results.machine.date}
- run took ${results.durationSeconds.toFixed(0)} s
`;
}

/** The block between the README markers: the table, the targets and where the rest is. */
export function renderReadmeBlock(results: BenchResults): string {
  return `${scenarioTable(results)}

${targetTable(results)}

Cold site load p50/p99 after a restart: ${fmtMs(results.cold.loadMs.p50)} / ${fmtMs(results.cold.loadMs.p99)} ms${results.coldFirst ? ` (first render ever: ${fmtMs(results.coldFirst.loadMs.p50)} / ${fmtMs(results.coldFirst.loadMs.p99)} ms)` : ''}; host RSS after ${fmtSites(results.settings.sites)} sites ${fmtMiB(results.memory.hostAfterAllSitesBytes)} vs Astro baseline ${fmtMiB(results.memory.baselineAfterWarmBytes)}.
${results.date.slice(0, 10)}, ${machineLine(results.machine)}; ${results.settings.connections} connections, ${results.settings.seconds} s per scenario. Details: [bench/results/latest.md](bench/results/latest.md).`;
}

const escapeXml = (text: string) => text.replace(/[<>&"']/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&apos;' })[c]!);

/** Horizontal bar chart of req/s per scenario, p99 latency in each label. Plain SVG, no dependency. */
export function renderSvg(results: BenchResults): string {
  const width = 860;
  const labelWidth = 250;
  const barMax = 400;
  const rowHeight = 38;
  const top = 56;
  const height = top + results.scenarios.length * rowHeight + 36;
  const max = Math.max(1, ...results.scenarios.map((s) => s.load?.rps ?? 0));
  const colors: Record<ScenarioId, string> = {
    'host-ssr': '#2563eb',
    'host-ssr-v8-defaults': '#60a5fa',
    'astro-baseline': '#7c3aed',
    'raw-node': '#6b7280',
    'host-render-cache': '#059669',
    'nginx-micro-cache': '#d97706',
    'host-spread': '#0891b2',
  };
  const rows = results.scenarios.map((s, i) => {
    const y = top + i * rowHeight;
    const w = s.load ? Math.max(1, Math.round((s.load.rps / max) * barMax)) : 0;
    const value = s.load ? `${fmtInt(s.load.rps)} req/s · p99 ${fmtMs(s.load.latencyMs.p99)} ms` : `skipped: ${s.skipped ?? 'not run'}`;
    return `  <g>
    <text x="${labelWidth - 10}" y="${y + 19}" text-anchor="end" class="label">${escapeXml(s.label)}</text>
    <rect class="bar" data-scenario="${s.id}" x="${labelWidth}" y="${y + 4}" width="${w}" height="${rowHeight - 12}" rx="3" fill="${colors[s.id]}"><title>${escapeXml(`${s.label}: ${value}`)}</title></rect>
    <text x="${labelWidth + w + 8}" y="${y + 19}" class="value">${escapeXml(value)}</text>
  </g>`;
  });
  const st = results.settings;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" role="img" aria-label="Requests per second per benchmark scenario">
  <style>
    text { font-family: ui-sans-serif, system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; fill: #111827; }
    .title { font-size: 16px; font-weight: 600; }
    .sub { font-size: 12px; fill: #4b5563; }
    .label { font-size: 13px; }
    .value { font-size: 12px; fill: #374151; }
  </style>
  <rect width="100%" height="100%" fill="#ffffff"/>
  <text x="16" y="24" class="title">Requests per second (higher is better), p99 latency in the label</text>
  <text x="16" y="42" class="sub">${escapeXml(`${results.date.slice(0, 10)} · ${fmtSites(st.sites)} sites · ${st.connections} connections · ${st.seconds} s · ${results.machine.cpu}, ${results.machine.cores} cores · Node ${results.machine.node}${st.smoke ? ' · smoke run' : ''}`)}</text>
${rows.join('\n')}
  <text x="16" y="${height - 12}" class="sub">${escapeXml(results.targets.map((t) => `${t.id}: ${t.pass ? 'pass' : 'MISS'}`).join(' · '))}</text>
</svg>
`;
}

export async function writeResults(outDir: string, results: BenchResults): Promise<{ json: string; md: string; svg: string }> {
  await mkdir(outDir, { recursive: true });
  const files = { json: join(outDir, 'latest.json'), md: join(outDir, 'latest.md'), svg: join(outDir, 'latest.svg') };
  await writeFile(files.json, `${JSON.stringify(results, null, 2)}\n`);
  await writeFile(files.md, renderMarkdown(results));
  await writeFile(files.svg, renderSvg(results));
  return files;
}

export const README_START = '<!-- bench:start -->';
export const README_END = '<!-- bench:end -->';

/** Replaces what is between the markers; returns false (and writes nothing) when they are missing. */
export async function updateReadme(readmePath: string, results: BenchResults): Promise<boolean> {
  const text = await readFile(readmePath, 'utf8').catch(() => undefined);
  if (text === undefined) return false;
  const start = text.indexOf(README_START);
  const end = text.indexOf(README_END);
  if (start === -1 || end === -1 || end < start) return false;
  const next = `${text.slice(0, start + README_START.length)}\n${renderReadmeBlock(results)}\n${text.slice(end)}`;
  if (next !== text) await writeFile(readmePath, next);
  return true;
}
