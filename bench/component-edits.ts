import { spawn } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import type { MachineInfo, TargetResult } from './report.ts';
import { ROOT } from './settings.ts';

/**
 * `BENCH_ONLY=component-edits npm run bench` (issue 15): does memory stay bounded while a site
 * component is edited over and over, and what does a component's first compile cost?
 *
 * Two processes of bench/component-edits-worker.ts (with --expose-gc and the PM2 workers' node
 * flags), the same `edits` edits of one component, each compiled, loaded and rendered:
 * - `loader`: the host's component loader (compiled modules evaluated as plain functions, held by
 *   the content cache, dropped with it);
 * - `naive`: each version imported as an ES module, which Node never unloads (the comparison).
 * RSS and the heap after two forced GCs are sampled every 50 edits after a 20-edit warm-up.
 *
 * Target "bounded": growth of the heap after GC over the last 500 edits below 1 KiB per edit in
 * the loader process (the naive process shows what a leak per edit looks like on the same
 * machine). RSS is reported over the same window; it moves in steps (V8 and malloc take memory
 * in pages and keep them), so it is reported, not judged.
 */
export interface MemorySample {
  edit: number;
  rss: number;
  heapUsed: number;
}

export interface EditRun {
  mode: 'loader' | 'naive';
  edits: number;
  samples: MemorySample[];
  /** Over the last min(500, edits) edits, bytes per edit. */
  heapGrowthPerEdit: number;
  rssGrowthPerEdit: number;
}

export interface ComponentEditsResult {
  edits: number;
  loader: EditRun;
  naive: EditRun;
  /** First compile of a component (the Astro compiler, the import check and rewrite), ms. */
  compileMs: { p50: number; p99: number; max: number; count: number };
  /** First load of a component from cold (read, compile in the compiler child through an empty disk cache, link, make), ms. */
  firstLoadMs: { p50: number; p99: number; max: number; count: number };
}

export const HEAP_TARGET_BYTES_PER_EDIT = 1024;

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? NaN;
}

function summary(values: number[]): ComponentEditsResult['compileMs'] {
  const sorted = [...values].sort((a, b) => a - b);
  const round = (n: number) => Math.round(n * 1000) / 1000;
  return { p50: round(percentile(sorted, 50)), p99: round(percentile(sorted, 99)), max: round(sorted.at(-1) ?? NaN), count: sorted.length };
}

/** Growth per edit between the sample `window` edits before the last one and the last one. */
export function growthPerEdit(samples: MemorySample[], key: 'rss' | 'heapUsed', window = 500): number {
  const last = samples.at(-1)!;
  const from = [...samples].reverse().find((s) => s.edit <= last.edit - window) ?? samples[0]!;
  return last.edit === from.edit ? 0 : (last[key] - from[key]) / (last.edit - from.edit);
}

async function runWorker(work: string, edits: number, mode: 'loader' | 'naive', nodeArgs: string[], say: (m: string) => void): Promise<{ run: EditRun; compileMs: number[]; firstLoadMs: number[] }> {
  say(`component edits (${mode}): ${edits} edits, compiled, loaded and rendered`);
  const child = spawn(process.execPath, [...nodeArgs, '--expose-gc', join(ROOT, 'bench', 'component-edits-worker.ts'), work, String(edits), mode], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d));
  child.stderr.on('data', (d: Buffer) => (err += d));
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  if (code !== 0) throw new Error(`component-edits worker (${mode}) exited with ${code}: ${err.slice(-2000)}`);
  const parsed = JSON.parse(out.trim().split('\n').pop()!) as { samples: MemorySample[]; compileMs: number[]; firstLoadMs: number[] };
  const window = Math.min(500, edits);
  const run: EditRun = {
    mode,
    edits,
    samples: parsed.samples,
    heapGrowthPerEdit: Math.round(growthPerEdit(parsed.samples, 'heapUsed', window)),
    rssGrowthPerEdit: Math.round(growthPerEdit(parsed.samples, 'rss', window)),
  };
  return { run, compileMs: parsed.compileMs, firstLoadMs: parsed.firstLoadMs };
}

export async function runComponentEdits(options: { work: string; edits: number; nodeArgs: string[]; say: (m: string) => void }): Promise<ComponentEditsResult> {
  await mkdir(options.work, { recursive: true });
  const loader = await runWorker(options.work, options.edits, 'loader', options.nodeArgs, options.say);
  const naive = await runWorker(options.work, options.edits, 'naive', options.nodeArgs, options.say);
  return { edits: options.edits, loader: loader.run, naive: naive.run, compileMs: summary(loader.compileMs), firstLoadMs: summary(loader.firstLoadMs) };
}

export function componentEditsTarget(result: ComponentEditsResult): TargetResult {
  const window = Math.min(500, result.edits);
  const value = result.loader.heapGrowthPerEdit;
  return {
    id: 'component-edits-bounded',
    label: `heap growth per component edit over the last ${window} of ${result.edits} edits (after GC)`,
    measured: `${(value / 1024).toFixed(2)} KiB/edit (naive ES-module imports: ${(result.naive.heapGrowthPerEdit / 1024).toFixed(2)} KiB/edit)`,
    threshold: `< ${HEAP_TARGET_BYTES_PER_EDIT / 1024} KiB/edit`,
    value,
    pass: value < HEAP_TARGET_BYTES_PER_EDIT,
  };
}

const mib = (bytes: number) => (bytes / 1048576).toFixed(1);
const kib = (bytes: number) => (bytes / 1024).toFixed(2);

export function renderComponentEdits(result: ComponentEditsResult): string {
  const window = Math.min(500, result.edits);
  const row = (r: EditRun) => {
    const first = r.samples[0]!;
    const last = r.samples.at(-1)!;
    return `| ${r.mode === 'loader' ? 'host loader (functions, LRU)' : 'naive (`import()` per version)'} | ${mib(first.rss)} → ${mib(last.rss)} | ${kib(r.rssGrowthPerEdit)} | ${mib(first.heapUsed)} → ${mib(last.heapUsed)} | ${kib(r.heapGrowthPerEdit)} |`;
  };
  return [
    `| ${result.edits} edits of one component | RSS MiB (after warm-up → end) | RSS KiB/edit, last ${window} | heap after GC MiB | heap KiB/edit, last ${window} |`,
    '| --- | ---: | ---: | ---: | ---: |',
    row(result.loader),
    row(result.naive),
    '',
    '| first use of a component | p50 ms | p99 ms | max ms | count |',
    '| --- | ---: | ---: | ---: | ---: |',
    `| compile (Astro compiler + import check + rewrite) | ${result.compileMs.p50} | ${result.compileMs.p99} | ${result.compileMs.max} | ${result.compileMs.count} |`,
    `| first load (read, compile in the compiler child via empty disk cache, link, make) | ${result.firstLoadMs.p50} | ${result.firstLoadMs.p99} | ${result.firstLoadMs.max} | ${result.firstLoadMs.count} |`,
  ].join('\n');
}

export async function writeComponentEdits(outDir: string, result: ComponentEditsResult, machine: MachineInfo, nodeArgs: string[]): Promise<string> {
  const target = componentEditsTarget(result);
  await mkdir(outDir, { recursive: true });
  // Other work on the machine shows in the first-use times (and in nothing else here): say how busy it was.
  const load = loadavg().map((l) => l.toFixed(2)).join(' ');
  await writeFile(join(outDir, 'component-edits.json'), `${JSON.stringify({ date: new Date().toISOString(), machine, loadAverage: load, nodeArgs, componentEdits: result, target }, null, 2)}\n`);
  const md = join(outDir, 'component-edits.md');
  await writeFile(
    md,
    `# Component edits\n\n${new Date().toISOString()} · ${machine.cpu} × ${machine.cores} · load average ${load} at the end · node ${machine.node} · flags ${nodeArgs.join(' ') || '(none)'} --expose-gc\n\n${renderComponentEdits(result)}\n\n${target.label}: ${target.measured}, goal ${target.threshold}: ${target.pass ? 'pass' : 'MISS'}\n`,
  );
  return md;
}
