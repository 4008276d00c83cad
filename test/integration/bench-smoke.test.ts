import { describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from '../helpers/server.ts';
import { SCENARIO_IDS, type BenchResults } from '../../bench/report.ts';

const NGINX = process.env.NGINX_BIN || '/usr/sbin/nginx';

/** Runs `node bench/run.ts` in smoke mode; resolves with its exit code and output. */
function runBench(env: Record<string, string>): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(ROOT, 'bench', 'run.ts')], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    child.once('error', reject);
    child.once('exit', (code) => resolve({ code, output }));
  });
}

describe('npm run bench (smoke mode, end to end)', () => {
  it('measures every scenario into the results dir it is given, and nothing else', async () => {
    const out = await mkdtemp(join(tmpdir(), 'amt-bench-'));
    const readme = join(ROOT, 'README.md');
    const committed = join(ROOT, 'bench', 'results', 'latest.json');
    const benchBlock = () => /<!-- bench:start -->[\s\S]*?<!-- bench:end -->/.exec(readFileSync(readme, 'utf8'))?.[0];
    const readmeBefore = benchBlock();
    const committedBefore = existsSync(committed) ? statSync(committed).mtimeMs : undefined;
    try {
      const { code, output } = await runBench({ BENCH_SMOKE: '1', BENCH_OUT: out, BENCH_KEEP: '', BENCH_SITES: '', BENCH_SECONDS: '', BENCH_WARMUP_SECONDS: '', BENCH_CONNECTIONS: '', BENCH_NODE_ARGS: '', BENCH_FLOOD_SITES: '', BENCH_ONLY: '' });
      expect(code, output).toBe(0);

      const results = JSON.parse(await readFile(join(out, 'latest.json'), 'utf8')) as BenchResults;
      expect(results.settings.smoke).toBe(true);
      expect(results.scenarios.map((s) => s.id).sort()).toEqual([...SCENARIO_IDS].sort());
      for (const scenario of results.scenarios) {
        if (scenario.id === 'nginx-micro-cache' && !existsSync(NGINX)) {
          expect(scenario.skipped).toBeTruthy();
          continue;
        }
        const load = scenario.load;
        expect(load, `${scenario.id} has no load result`).toBeDefined();
        expect(load!.requests, scenario.id).toBeGreaterThan(0);
        expect(load!.rps, scenario.id).toBeGreaterThan(0);
        expect(load!.errors + load!.timeouts, `${scenario.id} errors`).toBe(0);
        expect(load!.non2xx, `${scenario.id} non-2xx: ${JSON.stringify(load!.statusCodes)}`).toBe(0);
        expect(load!.latencyMs.p99).toBeGreaterThanOrEqual(load!.latencyMs.p50);
      }

      // Memory and cold-load numbers are there.
      expect(results.memory.hostAfterAllSitesBytes).toBeGreaterThan(0);
      expect(results.memory.hostFirstRenderAfterAllSitesBytes).toBeGreaterThan(0);
      // Both sweeps ran: the first rendered every page, the restarted host found them on disk.
      expect(results.coldFirst?.sites).toBe(results.settings.sites);
      expect(results.coldFirst?.non200).toBe(0);
      expect(results.memory.hostV8DefaultsAfterAllSitesBytes).toBeGreaterThan(0);
      expect(results.markdownAfterRestart).toEqual({ hits: results.settings.sites, misses: 0 });
      // The host ran with the PM2 workers' node flags.
      expect(results.hostNodeArgs).toEqual([expect.stringMatching(/^--max-old-space-size=\d+$/), '--max-semi-space-size=16']);
      expect(results.memory.baselineAfterWarmBytes).toBeGreaterThan(0);
      expect(results.cold.sites).toBe(results.settings.sites);
      expect(results.cold.non200).toBe(0);
      expect(results.cold.loadMs.p99).toBeGreaterThan(0);
      expect(results.cold.e2eMs.p99).toBeGreaterThan(0);
      expect(results.cold.first.e2eMs).toBeGreaterThan(0);
      // The baseline renders the same layout with the same data: the pages are (nearly) the same size.
      expect(Math.abs(results.page.bytes.baseline - results.page.bytes.host)).toBeLessThan(results.page.bytes.host * 0.05);
      expect(results.targets.map((t) => t.id)).toEqual(['ssr-vs-astro', 'render-cache-vs-raw', 'rss', 'cold-load-p99', 'cold-first-render-p99', 'unknown-flood-p99']);

      // The unknown-host flood ran on its own folders: the known site answered 200 alone and during
      // the flood, and every flood request got the platform's 404, none an error.
      const flood = results.unknownFlood!;
      expect(flood.sites).toBe(200);
      for (const load of [flood.alone, flood.withFlood]) {
        expect(load.requests).toBeGreaterThan(0);
        expect(load.non2xx + load.errors + load.timeouts, JSON.stringify(load.statusCodes)).toBe(0);
      }
      expect(flood.flood.requests).toBeGreaterThan(0);
      expect(Object.keys(flood.flood.statusCodes)).toEqual(['404']);
      expect(flood.flood.errors + flood.flood.timeouts).toBe(0);
      expect(results.targets.find((t) => t.id === 'unknown-flood-p99')?.value).toBeGreaterThan(0);

      const md = await readFile(join(out, 'latest.md'), 'utf8');
      expect(md).toContain('| scenario | req/s |');
      expect(md).toMatch(/Node: v24/);
      for (const t of results.targets) expect(md).toContain(t.pass ? '✅ pass' : '❌ **MISS**');

      const svg = (await readFile(join(out, 'latest.svg'), 'utf8')).trim();
      expect(svg.startsWith('<svg')).toBe(true);
      expect(svg.endsWith('</svg>')).toBe(true);
      for (const id of SCENARIO_IDS) expect(svg).toContain(`data-scenario="${id}"`);
      expect(svg.match(/<rect class="bar"/g)).toHaveLength(SCENARIO_IDS.length);

      // A smoke run into another folder never touches the committed results or the README.
      expect(benchBlock()).toBe(readmeBefore);
      expect(existsSync(committed) ? statSync(committed).mtimeMs : undefined).toBe(committedBefore);
      // ...and leaves no temp dir of its own behind.
      const workDir = /work dir (\S+);/.exec(output)?.[1];
      expect(workDir, output).toBeTruthy();
      expect(existsSync(workDir!)).toBe(false);
    } finally {
      await rm(out, { recursive: true, force: true });
    }
  }, 180_000);
});
