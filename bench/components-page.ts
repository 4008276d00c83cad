import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runLoad, summarize, type LatencySummary, type LoadResult } from './load.ts';
import type { MachineInfo, TargetResult } from './report.ts';

/**
 * `BENCH_ONLY=components-page npm run bench` (issue 15): what a page's site components cost.
 *
 * One host process (render cache off, so every request renders; the page's Markdown and its
 * components are warm: loaded once, then taken from the caches), one site with two pages of the
 * same text: `with` calls two site components (a leaf and a container with Markdown children),
 * `without` has the same HTML written inline. Loaded in turn, without / with / without / with,
 * each `seconds` after `warmupSeconds`, from `connections` connections; each page's numbers are
 * the mean of its two runs. Goal: `with` costs at most 1.2 × `without` in server CPU per request
 * and in p50 latency, both from this one run.
 *
 * Then the first compile over HTTP: `freshCount` times, a new component with a text never seen
 * (so the compile cache misses) and a page calling it are written, and the page's first request is
 * timed; the same for a new page without a component, for comparison. p50/p99 of both.
 */
export interface PageLoad {
  rps: number;
  cpuUsPerRequest: number;
  latencyMs: LatencySummary;
  runs: LoadResult[];
}

export interface ComponentsPageResult {
  connections: number;
  seconds: number;
  without: PageLoad;
  with: PageLoad;
  cpuRatio: number;
  p50Ratio: number;
  p99Ratio: number;
  /** First request of a page calling a component just written (compile + load + render), ms. */
  firstCompileMs: LatencySummary & { count: number };
  /** First request of a page just written, calling no component (Markdown render + render), ms. */
  firstPlainMs: LatencySummary & { count: number };
}

export interface ComponentsPageDeps {
  work: string;
  seconds: number;
  warmupSeconds: number;
  connections: number;
  freshCount?: number;
  startHost(name: string, sitesDir: string, env: Record<string, string>): Promise<{ port: number; pid: number; stop(): Promise<void> }>;
  /** One timed GET (ms) that must answer 200. */
  timedGet(port: number, host: string, path: string): Promise<{ status: number; ms: number; body: string }>;
  say(message: string): void;
}

export const COMPONENTS_PAGE_GOAL = 1.2;
const HOST = 'bench.example';

const PRICE = `---
interface Props { amount: number; currency?: string; label?: string }
const { amount, currency = '€', label = 'per month' } = Astro.props;
---
<p class="price"><strong class="amount">{currency}{amount.toLocaleString('en-US')}</strong> <span class="label">{label}</span></p>
<style>.price { font-size: 1.5rem; } .amount { color: var(--color-primary); }</style>
`;

const CALLOUT = `---
interface Props { title: string; tone?: string }
const { title, tone = 'info' } = Astro.props;
---
<aside class="callout" data-tone={tone}><h3 class="callout-title">{title}</h3><div class="callout-body"><slot /></div></aside>
<style>.callout { border-left: 4px solid var(--color-accent); padding: 1rem; }</style>
`;

const PROSE = Array.from({ length: 6 }, (_, i) => `Paragraph ${i + 1} of the page: a few sentences of ordinary prose with *emphasis*, a [link](/about) and \`code\`, as a real page would have.`).join('\n\n');

const WITH = `---\ntitle: With components\n---\n\n${PROSE}\n\n::Price{amount=49 label="per seat and month"}\n\n:::Callout{title="Good to know" tone="tip"}\nEvery plan can be **cancelled** at any time.\n:::\n\n${PROSE}\n`;
const WITHOUT = `---\ntitle: Without components\n---\n\n${PROSE}\n\n<p class="price"><strong class="amount">€49</strong> <span class="label">per seat and month</span></p>\n\n<aside class="callout" data-tone="tip"><h3 class="callout-title">Good to know</h3><div class="callout-body"><p>Every plan can be <strong>cancelled</strong> at any time.</p></div></aside>\n\n${PROSE}\n`;

async function writeSite(sitesDir: string): Promise<void> {
  const dir = join(sitesDir, 'bench');
  for (const folder of ['pages', 'components']) await mkdir(join(dir, folder), { recursive: true });
  await writeFile(join(dir, 'site.json'), JSON.stringify({ name: 'Component bench', domains: [HOST], layout: 'page' }));
  await writeFile(join(dir, 'components/Price.astro'), PRICE);
  await writeFile(join(dir, 'components/Callout.astro'), CALLOUT);
  await writeFile(join(dir, 'pages/with.md'), WITH);
  await writeFile(join(dir, 'pages/without.md'), WITHOUT);
}

function mean(loads: LoadResult[]): PageLoad {
  const avg = (pick: (l: LoadResult) => number) => loads.reduce((sum, l) => sum + pick(l), 0) / loads.length;
  return {
    rps: avg((l) => l.rps),
    cpuUsPerRequest: avg((l) => l.serverCpuUsPerRequest ?? NaN),
    latencyMs: { p50: avg((l) => l.latencyMs.p50), p90: avg((l) => l.latencyMs.p90), p99: avg((l) => l.latencyMs.p99), max: Math.max(...loads.map((l) => l.latencyMs.max)), mean: avg((l) => l.latencyMs.mean) },
    runs: loads,
  };
}

export async function runComponentsPage(deps: ComponentsPageDeps): Promise<ComponentsPageResult> {
  const sitesDir = join(deps.work, 'sites-components');
  await writeSite(sitesDir);
  const freshCount = deps.freshCount ?? 50;
  // No render cache: every request renders. A compile cache of its own, empty: fresh components compile.
  const host = await deps.startHost('components-page', sitesDir, { RENDER_CACHE_MB: '0', COMPONENT_CACHE_DIR: join(deps.work, 'component-cache') });
  try {
    for (const path of ['/with', '/without']) {
      const res = await deps.timedGet(host.port, HOST, path);
      if (res.status !== 200) throw new Error(`components page: ${HOST}${path} answered ${res.status}`);
    }
    const runs: Record<'with' | 'without', LoadResult[]> = { with: [], without: [] };
    for (const page of ['without', 'with', 'without', 'with'] as const) {
      deps.say(`components page: /${page}, ${deps.connections} connections, ${deps.seconds} s`);
      const result = await runLoad(deps.work, `components-${page}-${runs[page].length + 1}`, {
        port: host.port,
        host: HOST,
        path: `/${page}`,
        connections: deps.connections,
        seconds: deps.seconds,
        warmupSeconds: deps.warmupSeconds,
        cpuPids: [host.pid],
      });
      if (result.non2xx > 0 || result.errors > 0) throw new Error(`components page: /${page} had ${result.non2xx} non-2xx answers and ${result.errors} errors`);
      runs[page].push(result);
    }
    const without = mean(runs.without);
    const withComponents = mean(runs.with);

    const compile: number[] = [];
    const plain: number[] = [];
    const dir = join(sitesDir, 'bench');
    for (let i = 0; i < freshCount; i++) {
      const tag = `${process.pid}-${Date.now()}-${i}`;
      await writeFile(join(dir, `components/Fresh${i}.astro`), `---\nconst { n } = Astro.props;\n---\n<p class="fresh" data-tag="${tag}">Fresh {n}</p>\n<style>.fresh { margin: ${i}px; }</style>\n`);
      await writeFile(join(dir, `pages/fresh-${i}.md`), `---\ntitle: Fresh ${i}\n---\n\nPage ${tag}.\n\n::Fresh${i}{n=${i}}\n`);
      await writeFile(join(dir, `pages/plain-${i}.md`), `---\ntitle: Plain ${i}\n---\n\nPage ${tag}.\n\n<p class="fresh">Fresh ${i}</p>\n`);
      const withCall = await deps.timedGet(host.port, HOST, `/fresh-${i}`);
      if (withCall.status !== 200 || !withCall.body.includes(tag)) throw new Error(`components page: /fresh-${i} answered ${withCall.status}`);
      compile.push(withCall.ms);
      const without = await deps.timedGet(host.port, HOST, `/plain-${i}`);
      if (without.status !== 200) throw new Error(`components page: /plain-${i} answered ${without.status}`);
      plain.push(without.ms);
    }
    return {
      connections: deps.connections,
      seconds: deps.seconds,
      without,
      with: withComponents,
      cpuRatio: withComponents.cpuUsPerRequest / without.cpuUsPerRequest,
      p50Ratio: withComponents.latencyMs.p50 / without.latencyMs.p50,
      p99Ratio: withComponents.latencyMs.p99 / without.latencyMs.p99,
      firstCompileMs: { ...summarize(compile), count: compile.length },
      firstPlainMs: { ...summarize(plain), count: plain.length },
    };
  } finally {
    await host.stop();
  }
}

/** The goal: CPU per request and p50 latency of `with` both within 1.2 × `without`. */
export function componentsPageTarget(result: ComponentsPageResult): TargetResult {
  const value = Math.max(result.cpuRatio, result.p50Ratio);
  return {
    id: 'components-page',
    label: 'a warm page with two site components vs the same page without them (server CPU per request, p50 latency)',
    measured: `${result.cpuRatio.toFixed(2)}× CPU, ${result.p50Ratio.toFixed(2)}× p50 (${result.p99Ratio.toFixed(2)}× p99)`,
    threshold: `≤ ${COMPONENTS_PAGE_GOAL}×`,
    value,
    pass: value <= COMPONENTS_PAGE_GOAL,
  };
}

const ms = (n: number) => n.toFixed(2);

export function renderComponentsPage(r: ComponentsPageResult): string {
  const row = (name: string, p: PageLoad) => `| ${name} | ${Math.round(p.rps).toLocaleString('en-US')} | ${Math.round(p.cpuUsPerRequest)} | ${ms(p.latencyMs.p50)} | ${ms(p.latencyMs.p99)} |`;
  return [
    `| page | req/s | server CPU µs/req | p50 ms | p99 ms |`,
    `| --- | ---: | ---: | ---: | ---: |`,
    row('without components', r.without),
    row('with two components', r.with),
    `| ratio | ${(r.with.rps / r.without.rps).toFixed(2)}× | ${r.cpuRatio.toFixed(2)}× | ${r.p50Ratio.toFixed(2)}× | ${r.p99Ratio.toFixed(2)}× |`,
    '',
    `First request of a page calling a component just written (compile, load, render), ${r.firstCompileMs.count} components: p50 ${ms(r.firstCompileMs.p50)} ms, p99 ${ms(r.firstCompileMs.p99)} ms, max ${ms(r.firstCompileMs.max)} ms; a page just written without one: p50 ${ms(r.firstPlainMs.p50)} ms, p99 ${ms(r.firstPlainMs.p99)} ms.`,
  ].join('\n');
}

export async function writeComponentsPage(outDir: string, result: ComponentsPageResult, machine: MachineInfo): Promise<string> {
  const target = componentsPageTarget(result);
  await mkdir(outDir, { recursive: true });
  await writeFile(join(outDir, 'components-page.json'), `${JSON.stringify({ date: new Date().toISOString(), machine, componentsPage: result, target }, null, 2)}\n`);
  const md = join(outDir, 'components-page.md');
  await writeFile(md, `# Site components on a page\n\n${new Date().toISOString()} · ${machine.cpu} × ${machine.cores} · node ${machine.node} · ${result.connections} connections · ${result.seconds} s per run, two runs per page\n\n${renderComponentsPage(result)}\n\n${target.label}: ${target.measured}, goal ${target.threshold}: ${target.pass ? 'pass' : 'MISS'}\n`);
  return md;
}
