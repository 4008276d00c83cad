/**
 * `npm run bench`: one run, loopback only, one server process per scenario, the same autocannon
 * settings for every load (in a separate process). See bench/README.md.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, readdir, rm, rmdir, writeFile } from 'node:fs/promises';
import { cpus, release, totalmem, type as osType, arch } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { edgeOptionsFromEnv } from '../nginx/render.ts';
import { writeEdgeConfig } from '../astro-multi-tenant/server/cli/edge.ts';
import { buildBaseline, hostPageProps } from './baseline-astro.ts';
import { generateSites, siteHost, siteId } from './generate-sites.ts';
import { metricSum } from './metrics-text.ts';
import { runLoad, summarize, type LoadOptions, type LoadResult } from './load.ts';
import { childPids, freePort, get, keepAlive, killAllNow, rssBytes, spawnLogged, stopAll, stopChild, waitForHttp, type Child } from './processes.ts';
import {
  evaluateTargets,
  renderMarkdown,
  updateReadme,
  writeResults,
  type BenchResults,
  type ColdLoadResult,
  type MachineInfo,
  type MemoryResult,
  type ScenarioResult,
} from './report.ts';
import { ROOT, WORK_ROOT, loadSettings, type BenchSettings } from './settings.ts';
import { floodTarget, renderFlood, runUnknownFlood, type UnknownFloodResult } from './unknown-flood.ts';
import { noisyTarget, renderNoisy, runNoisyNeighbour, type NoisyNeighbourResult } from './noisy-neighbour.ts';
import { renderColdSpread, runColdSpread, writeColdSpread, type ColdSpreadResult } from './cold-spread.ts';
import { buildPeer, startPeer, writePeerProject } from './compiled-in-peer.ts';
import { componentEditsTarget, renderComponentEdits, runComponentEdits, writeComponentEdits } from './component-edits.ts';
import { componentsPageTarget, renderComponentsPage, runComponentsPage, writeComponentsPage } from './components-page.ts';

const NGINX = process.env.NGINX_BIN || '/usr/sbin/nginx';
const MAIN = join(ROOT, 'astro-multi-tenant', 'server', 'main.ts');
const CSS_DIR = join(ROOT, 'astro-multi-tenant', 'site-css');
/** Host settings the benchmark controls: inherited values would silently change the defaults being measured. */
const HOST_ENV = [
  'PORT', 'HOST', 'SITES_DIR', 'PLATFORM_DOMAIN', 'REDIS_URL', 'REDIS_SENTINELS', 'REDIS_SENTINEL_NAME', 'REDIS_CLUSTER_NODES', 'REDIS_TIMEOUT_MS',
  'SESSION_KEYS', 'SESSION_MAX_AGE_S', 'TRUSTED_PROXIES', 'CONTENT_CHECK_MS', 'SITES_RESCAN_MS', 'SITE_CACHE_MAX_ENTRIES', 'SITE_CACHE_MAX_MB',
  'CSS_DIR', 'ASTRO_ENTRY', 'STATIC_MAX_AGE', 'RENDER_CACHE_MB', 'RENDER_CACHE_MAX_ENTRIES', 'EDGE_CACHE_S', 'LOG_LEVEL', 'ADMIN_ALLOW',
  'ADMIN_TOKEN', 'METRICS_SITE_LABELS', 'PEER_DIR', 'STATE_DIR', 'DRAIN_TIMEOUT_MS', 'SHUTDOWN_DELAY_MS', 'INSTANCES', 'pm_id', 'NODE_APP_INSTANCE', 'NODE_OPTIONS',
];

const startedAt = performance.now();
const say = (message: string) => console.log(`[bench ${((performance.now() - startedAt) / 1000).toFixed(1).padStart(6)} s] ${message}`);

/** Extra node flags for the servers under test, e.g. BENCH_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof". */
const nodeArgs = (process.env.BENCH_NODE_ARGS ?? '').split(/\s+/).filter(Boolean);
/**
 * The host runs with the node flags its PM2 workers get (ecosystem.config.js `node_args`, the
 * heap bound), so the numbers are those of the host as deployed; BENCH_HOST_DEFAULT_FLAGS=1 runs
 * it on V8's defaults instead. The Astro baseline and raw node run on V8's defaults, as a
 * single-site Astro server usually does.
 */
const hostNodeArgs: string[] = process.env.BENCH_HOST_DEFAULT_FLAGS === '1' ? [] : ((await import(pathToFileURL(join(ROOT, 'ecosystem.config.js')).href)) as { workerNodeArgs: string[] }).workerNodeArgs;

interface Server {
  child: Child;
  port: number;
}

function cleanEnv(): Record<string, string | undefined> {
  const env: Record<string, string | undefined> = { ...process.env };
  for (const name of HOST_ENV) delete env[name];
  return env;
}

async function startHost(work: string, name: string, settings: BenchSettings, sitesDir: string, extra: Record<string, string>, flags: string[] = hostNodeArgs, readyTimeoutMs = 120_000): Promise<Server> {
  const port = await freePort();
  const child = spawnLogged({
    name,
    command: process.execPath,
    args: [...flags, ...nodeArgs, MAIN],
    cwd: ROOT,
    env: {
      ...cleanEnv(),
      PORT: String(port),
      HOST: '127.0.0.1',
      SITES_DIR: sitesDir,
      REDIS_URL: '',
      LOG_LEVEL: settings.accessLog ? 'info' : 'warn',
      PEER_DIR: join(work, `peers-${name}`),
      STATE_DIR: join(work, `state-${name}`),
      DRAIN_TIMEOUT_MS: '1000',
      // Each host its own rendered-pages folder unless a scenario shares one: no scenario finds
      // pages another one rendered.
      RENDER_CACHE_DIR: join(work, `rendered-pages-${name}`),
      ...extra,
    },
    logFile: join(work, 'logs', `${name}.log`),
  });
  await waitForHttp(child, port, 'localhost', '/_platform/healthz', readyTimeoutMs);
  return { child, port };
}

function serverTiming(header: string | string[] | undefined): { site: number; page: number } | undefined {
  const text = Array.isArray(header) ? header.join(', ') : header;
  const site = /\bsite;dur=([\d.]+)/.exec(text ?? '')?.[1];
  const page = /\bpage;dur=([\d.]+)/.exec(text ?? '')?.[1];
  return site === undefined || page === undefined ? undefined : { site: Number(site), page: Number(page) };
}

/**
 * The first request to every site after start: the benchmarked site first (its numbers are the
 * "cold" request of that site), then all the others, in order, `concurrency` at a time.
 */
async function coldSweep(server: Server, sites: number, target: number, concurrency: number): Promise<ColdLoadResult> {
  const order = [target, ...Array.from({ length: sites }, (_, i) => i).filter((i) => i !== target)];
  const load: number[] = [];
  const site: number[] = [];
  const page: number[] = [];
  const e2e: number[] = [];
  let non200 = 0;
  let first: ColdLoadResult['first'] | undefined;
  const record = (index: number, res: Awaited<ReturnType<typeof get>>) => {
    const timing = serverTiming(res.headers['server-timing']);
    if (res.status !== 200 || !timing) {
      non200++;
      return;
    }
    load.push(timing.site + timing.page);
    site.push(timing.site);
    page.push(timing.page);
    e2e.push(res.ms);
    if (index === target) first = { site: siteId(index), e2eMs: res.ms, siteMs: timing.site, pageMs: timing.page };
  };
  const sweepStarted = performance.now();
  // The very first one alone, so nothing else overlaps it.
  record(target, await get(server.port, siteHost(target), '/', { agent: keepAlive }));
  let cursor = 1;
  const worker = async () => {
    while (cursor < order.length) {
      const index = order[cursor++]!;
      record(index, await get(server.port, siteHost(index), '/', { agent: keepAlive }));
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const sweepSeconds = (performance.now() - sweepStarted) / 1000;
  if (!first) throw new Error(`the first request to ${siteId(target)} did not answer 200 with Server-Timing`);
  return { sites, concurrency, first, loadMs: summarize(load), siteMs: summarize(site), pageMs: summarize(page), e2eMs: summarize(e2e), non200, sweepSeconds };
}

/** Sum of every sample of a Prometheus metric (optionally only those with the given labels). */
async function metric(port: number, name: string, labels: Record<string, string> = {}): Promise<number> {
  const res = await get(port, 'localhost', '/_platform/metrics', { agent: keepAlive });
  if (res.status !== 200) throw new Error(`/_platform/metrics answered ${res.status}`);
  return metricSum(res.body.toString('utf8'), name, labels);
}

async function hostStatus(port: number): Promise<MemoryResult['hostStatus']> {
  const res = await get(port, 'localhost', '/_platform/status.json', { timeoutMs: 60_000 });
  if (res.status !== 200) return undefined;
  const model = JSON.parse(res.body.toString('utf8')) as { workers: Array<{ memory: { rssBytes: number; heapUsedBytes: number }; cache: { entries: number; bytes: number; evictions: number } }> };
  const w = model.workers[0];
  return w ? { rssBytes: w.memory.rssBytes, heapUsedBytes: w.memory.heapUsedBytes, cacheEntries: w.cache.entries, cacheBytes: w.cache.bytes, evictions: w.cache.evictions } : undefined;
}

function machineInfo(): MachineInfo {
  const osRelease = existsSync('/etc/os-release') ? /^PRETTY_NAME="?([^"\n]*)"?/m.exec(readFileSync('/etc/os-release', 'utf8'))?.[1] : undefined;
  let nginx: string | undefined;
  if (existsSync(NGINX)) {
    const out = spawnSync(NGINX, ['-v'], { encoding: 'utf8' });
    nginx = /nginx\/[\w.]+/.exec(`${out.stderr}${out.stdout}`)?.[0];
  }
  const autocannon = (JSON.parse(readFileSync(join(ROOT, 'node_modules', 'autocannon', 'package.json'), 'utf8')) as { version: string }).version;
  return {
    cpu: cpus()[0]?.model.trim() ?? 'unknown',
    cores: cpus().length,
    ramBytes: totalmem(),
    os: `${osRelease ?? osType()} (${osType()} ${release()} ${arch()})`,
    node: process.version,
    nginx,
    autocannon,
    date: new Date().toISOString(),
  };
}

/**
 * Little's law: with N connections always busy, mean latency ≈ N / throughput. A measured mean far
 * above it means the latency figures are not to be trusted (see the nginx keep-alive note).
 */
function latencyNotes(load: LoadResult, connections: number): string[] {
  const expected = (connections / load.rps) * 1000;
  return load.latencyMs.mean > expected * 1.5 + 0.2
    ? [`⚠ Mean latency ${load.latencyMs.mean} ms is well above connections / throughput = ${expected.toFixed(2)} ms: latency figures look mis-measured.`]
    : [];
}

function checkLoad(name: string, load: LoadResult) {
  const problems = load.errors + load.timeouts + load.non2xx;
  say(`${name}: ${load.rps.toFixed(0)} req/s, p50 ${load.latencyMs.p50} ms, p99 ${load.latencyMs.p99} ms, ${load.requests} requests, ${load.serverCpuUsPerRequest ?? '?'} µs server CPU/request${problems ? `, ${load.errors} errors, ${load.timeouts} timeouts, ${load.non2xx} non-2xx (${JSON.stringify(load.statusCodes)})` : ''}`);
}

async function main(): Promise<void> {
  const settings = loadSettings();
  await mkdir(WORK_ROOT, { recursive: true });
  const work = await mkdtemp(join(WORK_ROOT, 'run-'));
  await mkdir(join(work, 'logs'));
  let interrupted = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (interrupted) return;
    interrupted = true;
    say(`${signal}: stopping every process`);
    void stopAll().finally(async () => {
      if (!settings.keep) await rm(work, { recursive: true, force: true }).catch(() => {});
      process.exit(130);
    });
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.on('exit', killAllNow);

  say(`work dir ${work}; ${settings.sites} sites, ${settings.connections} connections, ${settings.seconds} s (+${settings.warmupSeconds} s warm-up) per scenario${settings.smoke ? ', smoke' : ''}`);
  /** Rule 12's scenario: a known site's latency alone and during an unknown-host flood. */
  const flood = async (): Promise<UnknownFloodResult> => {
    const result = await runUnknownFlood({
      work,
      sites: settings.floodSites,
      connections: settings.connections,
      seconds: settings.seconds,
      warmupSeconds: settings.warmupSeconds,
      say,
      async startHost(dir) {
        const server = await startHost(work, 'host-flood', settings, dir, {}, hostNodeArgs, 600_000);
        return { port: server.port, pid: server.child.pid, stop: () => stopChild(server.child) };
      },
      async prime(port, host) {
        const res = await get(port, host, '/');
        if (res.status !== 200) throw new Error(`flood: http://${host}/ answered ${res.status}`);
        await get(port, host, '/');
      },
    });
    checkLoad('flood: known site alone', result.alone);
    checkLoad('flood: known site during the flood', result.withFlood);
    checkLoad('flood: unknown hosts', result.flood);
    return result;
  };
  /** The fairness issue's scenario: site B alone and while site A floods uncached renders, without and with plans. */
  const noisy = async (): Promise<NoisyNeighbourResult> => {
    const result = await runNoisyNeighbour({
      work,
      seconds: settings.seconds,
      warmupSeconds: settings.warmupSeconds,
      say,
      async startHost(name, dir, env) {
        const server = await startHost(work, name, settings, dir, env);
        return { port: server.port, pid: server.child.pid!, stop: () => stopChild(server.child) };
      },
      async prime(port, host) {
        const res = await get(port, host, '/');
        if (res.status !== 200) throw new Error(`noisy neighbour: http://${host}/ answered ${res.status}`);
      },
    });
    for (const phase of [result.unlimited, result.limited]) {
      checkLoad('noisy neighbour: B alone', phase.alone);
      checkLoad('noisy neighbour: B with A', phase.withNoisy);
    }
    return result;
  };
  /** Issue 12: cold, warm and Zipf spreads of the host against the compiled-in peer, on their own site folders. */
  const coldSpread = async (): Promise<ColdSpreadResult> => {
    const sitesDir = join(work, 'cold-spread-sites');
    await generateSites(sitesDir, settings.sites);
    const peerDir = join(work, 'compiled-in-peer');
    await writePeerProject(peerDir, sitesDir, await hostPageProps(join(sitesDir, siteId(0)), siteId(0), `http://${siteHost(0)}`));
    let builds = 0;
    return runColdSpread({
      work,
      sitesDir,
      sites: settings.sites,
      connections: settings.connections,
      seconds: settings.seconds,
      warmupSeconds: settings.warmupSeconds,
      say,
      async startHost(name, markdownCacheDir) {
        // The rendered pages on disk (RENDER_CACHE_DIR) live and start empty with the Markdown cache:
        // the second process finds what the first one rendered, as after a restart or a reload.
        const server = await startHost(work, name, settings, sitesDir, { MARKDOWN_CACHE_DIR: markdownCacheDir, RENDER_CACHE_DIR: `${markdownCacheDir}-rendered-pages` });
        return { port: server.port, pid: server.child.pid, rss: () => rssBytes(server.child.pid), stop: () => stopChild(server.child) };
      },
      buildPeer: () => buildPeer(peerDir, join(work, 'logs', `peer-build-${++builds}.log`)),
      async startPeer(build) {
        const port = await freePort();
        const child = startPeer(build, port, join(work, 'logs', 'compiled-in-peer.log'), cleanEnv(), nodeArgs);
        await waitForHttp(child, port, siteHost(0), '/', 120_000);
        return { port, pid: child.pid, rss: () => rssBytes(child.pid), stop: () => stopChild(child) };
      },
      get: (port, host) => get(port, host, '/', { timeoutMs: 60_000 }),
    });
  };
  try {
    if (settings.only === 'components-page') {
      const result = await runComponentsPage({
        work,
        seconds: settings.seconds,
        warmupSeconds: settings.warmupSeconds,
        connections: settings.connections,
        freshCount: settings.smoke ? 5 : 50,
        say,
        async startHost(name, dir, env) {
          const server = await startHost(work, name, settings, dir, env);
          return { port: server.port, pid: server.child.pid!, stop: () => stopChild(server.child) };
        },
        async timedGet(port, host, path) {
          const res = await get(port, host, path, { agent: keepAlive, timeoutMs: 60_000 });
          return { status: res.status, ms: res.ms, body: res.body.toString('utf8') };
        },
      });
      const md = await writeComponentsPage(settings.outDir, result, machineInfo());
      const target = componentsPageTarget(result);
      console.log(`\n${renderComponentsPage(result)}`);
      say(`${target.label}: ${target.measured} (goal ${target.threshold}) ${target.pass ? 'pass' : 'MISS'}; wrote ${md}`);
      return;
    }
    if (settings.only === 'component-edits') {
      const result = await runComponentEdits({ work: join(work, 'component-edits'), edits: settings.componentEdits, nodeArgs: [...hostNodeArgs, ...nodeArgs], say });
      const md = await writeComponentEdits(settings.outDir, result, machineInfo(), [...hostNodeArgs, ...nodeArgs]);
      const target = componentEditsTarget(result);
      console.log(`\n${renderComponentEdits(result)}`);
      say(`${target.label}: ${target.measured} (goal ${target.threshold}) ${target.pass ? 'pass' : 'MISS'}; wrote ${md}`);
      return;
    }
    if (settings.only === 'cold-spread') {
      const result = await coldSpread();
      const md = await writeColdSpread(settings.outDir, result, machineInfo());
      console.log(`\n${renderColdSpread(result)}`);
      say(`wrote ${md}`);
      return;
    }
    if (settings.only === 'noisy-neighbour') {
      const result = await noisy();
      const target = noisyTarget(result);
      await mkdir(settings.outDir, { recursive: true });
      await writeFile(join(settings.outDir, 'noisy-neighbour.json'), `${JSON.stringify({ date: new Date().toISOString(), machine: machineInfo(), settings: { seconds: settings.seconds, warmupSeconds: settings.warmupSeconds }, noisyNeighbour: result, target }, null, 2)}\n`);
      await writeFile(join(settings.outDir, 'noisy-neighbour.md'), `# Noisy neighbour\n\n${new Date().toISOString()} · ${settings.seconds} s after ${settings.warmupSeconds} s warm-up\n\n${renderNoisy(result)}\n\n${target.label}: ${target.measured}, goal ${target.threshold}: ${target.pass ? 'pass' : 'MISS'}\n`);
      say(`${target.label}: ${target.measured} (goal ${target.threshold}) ${target.pass ? 'pass' : 'MISS'}; wrote ${join(settings.outDir, 'noisy-neighbour.json')}`);
      return;
    }
    if (settings.only === 'unknown-flood') {
      const result = await flood();
      const target = floodTarget(result);
      await mkdir(settings.outDir, { recursive: true });
      await writeFile(join(settings.outDir, 'unknown-flood.json'), `${JSON.stringify({ date: new Date().toISOString(), machine: machineInfo(), settings: { connections: settings.connections, seconds: settings.seconds, warmupSeconds: settings.warmupSeconds }, unknownFlood: result, target }, null, 2)}\n`);
      await writeFile(join(settings.outDir, 'unknown-flood.md'), `# Unknown-host flood\n\n${new Date().toISOString()} · ${settings.connections} + ${settings.connections} connections · ${settings.seconds} s after ${settings.warmupSeconds} s warm-up\n\n${renderFlood(result)}\n\n${target.label}: ${target.measured}, goal ${target.threshold}: ${target.pass ? 'pass' : 'MISS'}\n`);
      say(`${target.label}: ${target.measured} (goal ${target.threshold}) ${target.pass ? 'pass' : 'MISS'}; wrote ${join(settings.outDir, 'unknown-flood.json')}`);
      return;
    }
    const sitesDir = join(work, 'sites');
    await generateSites(sitesDir, settings.sites);
    const target = Math.floor(settings.sites / 2);
    const targetId = siteId(target);
    const targetHost = siteHost(target);
    const allHosts = Array.from({ length: settings.sites }, (_, i) => siteHost(i));
    say(`generated ${settings.sites} site folders; benchmarked page: http://${targetHost}/`);

    const loadOptions = (port: number, extra: Partial<LoadOptions> = {}): LoadOptions => ({
      port,
      path: '/',
      host: targetHost,
      connections: settings.connections,
      seconds: settings.seconds,
      warmupSeconds: settings.warmupSeconds,
      ...extra,
    });

    // The Astro baseline is built first, so the build never overlaps a measurement.
    const props = await hostPageProps(join(sitesDir, targetId), targetId, `http://${targetHost}`);
    const baselineDir = join(work, 'astro-baseline');
    const baselineEntry = await buildBaseline(baselineDir, props, join(work, 'logs', 'astro-build.log'));
    say('built the single-site Astro baseline (@astrojs/node standalone)');

    const scenarios: ScenarioResult[] = [];
    const memory: MemoryResult = { hostFirstRenderAfterAllSitesBytes: undefined, hostAfterAllSitesBytes: undefined, hostAfterWarmBytes: undefined, baselineAfterWarmBytes: undefined, hostDefaultAfterSpreadBytes: undefined, hostStatus: undefined };

    // 1. The host, render cache off. First a process whose Markdown cache is empty: the first
    // request to every site renders its page for the first time ever. Then a second process on the
    // same folders and cache, as after a restart or a reload: every site is cold in its memory but
    // no page needs rendering again. That one then runs pure SSR under load.
    let cold: ColdLoadResult;
    let coldFirst: ColdLoadResult;
    let markdownAfterRestart: BenchResults['markdownAfterRestart'];
    let hostBody: Buffer;
    const markdownCacheDir = join(work, 'markdown-cache');
    await mkdir(markdownCacheDir, { mode: 0o700 });
    /** A host with the render cache off, right after the first request to every site. */
    const sweptHost = async (name: string, flags?: string[]) => {
      const server = await startHost(work, name, settings, sitesDir, { RENDER_CACHE_MB: '0', MARKDOWN_CACHE_DIR: markdownCacheDir }, flags);
      try {
        say(`${name} up on ${server.port}; first request to each of ${settings.sites} sites…`);
        const sweep = await coldSweep(server, settings.sites, target, settings.coldConcurrency);
        await new Promise((r) => setTimeout(r, 500));
        const rss = rssBytes(server.child.pid);
        say(`${name}: site+page load p50 ${sweep.loadMs.p50} ms, p99 ${sweep.loadMs.p99} ms; e2e p50 ${sweep.e2eMs.p50} ms, p99 ${sweep.e2eMs.p99} ms; RSS ${((rss ?? 0) / 2 ** 20).toFixed(1)} MiB`);
        return { server, sweep, rss };
      } catch (error) {
        await stopChild(server.child);
        throw error;
      }
    };

    const first = await sweptHost('host-first-render');
    await stopChild(first.server.child);
    coldFirst = first.sweep;
    memory.hostFirstRenderAfterAllSitesBytes = first.rss;

    const { server: ssr, sweep: restarted, rss: restartedRss } = await sweptHost('host-ssr');
    try {
      cold = restarted;
      memory.hostAfterAllSitesBytes = restartedRss;
      memory.hostStatus = await hostStatus(ssr.port);
      markdownAfterRestart = { hits: await metric(ssr.port, 'amt_markdown_cache_hits_total'), misses: await metric(ssr.port, 'amt_markdown_cache_misses_total') };
      const page = await get(ssr.port, targetHost, '/');
      if (page.status !== 200) throw new Error(`host answered ${page.status} for http://${targetHost}/`);
      hostBody = page.body;
      await writeFile(join(work, 'page.html'), hostBody);
      const load = await runLoad(work, 'host-ssr', loadOptions(ssr.port, { cpuPids: [ssr.child.pid] }));
      checkLoad('host SSR', load);
      memory.hostAfterWarmBytes = rssBytes(ssr.child.pid);
      scenarios.push({
        id: 'host-ssr',
        label: `Host SSR, 1 of ${settings.sites.toLocaleString('en-US')} sites`,
        what: 'this host, RENDER_CACHE_MB=0 (every request renders with Astro), one site among all generated folders, in the restarted process after its cold sweep.',
        load,
        notes: [],
      });
    } finally {
      await stopChild(ssr.child);
    }

    // 1b. The same restarted host on V8's machine-sized heap defaults (no node flags): what the
    // deployed heap bound costs in SSR throughput and saves in memory, measured in the same run.
    if (hostNodeArgs.length > 0) {
      const { server: plain, rss } = await sweptHost('host-ssr-v8-defaults', []);
      try {
        memory.hostV8DefaultsAfterAllSitesBytes = rss;
        const load = await runLoad(work, 'host-ssr-v8-defaults', loadOptions(plain.port, { cpuPids: [plain.child.pid] }));
        checkLoad('host SSR, V8 defaults', load);
        memory.hostV8DefaultsAfterWarmBytes = rssBytes(plain.child.pid);
        scenarios.push({
          id: 'host-ssr-v8-defaults',
          label: 'Host SSR, V8 heap defaults',
          what: `the same as host SSR (after the same sweep), started without the workers' node flags (${hostNodeArgs.join(' ')}): V8 sizes the heap for the machine.`,
          load,
          notes: [`RSS after the sweep ${((memory.hostV8DefaultsAfterAllSitesBytes ?? 0) / 2 ** 20).toFixed(0)} MiB, after the load ${((memory.hostV8DefaultsAfterWarmBytes ?? 0) / 2 ** 20).toFixed(0)} MiB.`],
        });
      } finally {
        await stopChild(plain.child);
      }
    } else {
      scenarios.push({ id: 'host-ssr-v8-defaults', label: 'Host SSR, V8 heap defaults', what: 'the host without node flags.', skipped: 'the host already runs without node flags (BENCH_HOST_DEFAULT_FLAGS=1)', notes: [] });
    }

    // 2. Single-site Astro, standalone, same layout and data.
    let baselineBytes = 0;
    {
      const port = await freePort();
      const child = spawnLogged({
        name: 'astro-baseline',
        command: process.execPath,
        args: [...nodeArgs, baselineEntry],
        cwd: baselineDir,
        env: { ...cleanEnv(), HOST: '127.0.0.1', PORT: String(port), ASTRO_TELEMETRY_DISABLED: '1' },
        logFile: join(work, 'logs', 'astro-baseline.log'),
      });
      try {
        await waitForHttp(child, port, targetHost, '/', 60_000);
        const page = await get(port, targetHost, '/');
        const load = await runLoad(work, 'astro-baseline', loadOptions(port, { cpuPids: [child.pid] }));
        checkLoad('Astro baseline', load);
        memory.baselineAfterWarmBytes = rssBytes(child.pid);
        const same = page.body.equals(hostBody);
        const diff = page.body.length - hostBody.length;
        say(`baseline page ${page.body.length} bytes vs host ${hostBody.length} bytes (${same ? 'identical' : `${diff >= 0 ? '+' : ''}${diff} bytes`})`);
        scenarios.push({
          id: 'astro-baseline',
          label: 'Astro single site (standalone)',
          what: 'a one-page Astro project, @astrojs/node standalone, SSR page (prerender=false) rendering the same PageLayout with the same props.',
          load,
          notes: [same ? 'Its HTML is byte-identical to the host’s.' : `Its HTML is ${page.body.length} bytes (host: ${hostBody.length}).`],
        });
        baselineBytes = page.body.length;
      } finally {
        await stopChild(child);
      }
    }

    // 3. Raw node:http with the host's exact bytes.
    {
      const port = await freePort();
      const child = spawnLogged({
        name: 'raw-node',
        command: process.execPath,
        args: [...nodeArgs, join(ROOT, 'bench', 'raw-node.ts')],
        cwd: ROOT,
        env: { ...cleanEnv(), HOST: '127.0.0.1', PORT: String(port), BODY_FILE: join(work, 'page.html') },
        logFile: join(work, 'logs', 'raw-node.log'),
      });
      try {
        await waitForHttp(child, port, targetHost, '/', 30_000);
        const load = await runLoad(work, 'raw-node', loadOptions(port, { cpuPids: [child.pid] }));
        checkLoad('raw node:http', load);
        scenarios.push({ id: 'raw-node', label: 'Raw node:http, same bytes', what: 'node:http answering every request with the host’s page bytes from memory: the ceiling for Node.', load, notes: [] });
      } finally {
        await stopChild(child);
      }
    }

    // 4. The host with default settings: render-cache hits, nginx micro-cache hits, then the spread run.
    const host = await startHost(work, 'host-default', settings, sitesDir, { MARKDOWN_CACHE_DIR: markdownCacheDir });
    try {
      say(`host (default settings) up on ${host.port}`);
      await get(host.port, targetHost, '/');
      const primed = await get(host.port, targetHost, '/');
      if (primed.headers['x-render-cache'] !== 'hit') throw new Error(`expected a render-cache hit after priming, got X-Render-Cache: ${String(primed.headers['x-render-cache'])}`);
      if (!primed.body.equals(hostBody)) say('note: the render-cache page differs from the SSR page');
      const hitsBefore = await metric(host.port, 'amt_render_cache_hits_total');
      const missesBefore = await metric(host.port, 'amt_render_cache_misses_total');
      const cacheLoad = await runLoad(work, 'host-render-cache', loadOptions(host.port, { cpuPids: [host.child.pid] }));
      checkLoad('host render cache', cacheLoad);
      const hits = (await metric(host.port, 'amt_render_cache_hits_total')) - hitsBefore;
      const misses = (await metric(host.port, 'amt_render_cache_misses_total')) - missesBefore;
      scenarios.push({
        id: 'host-render-cache',
        label: 'Host, render-cache hit',
        what: 'this host with default settings (render cache on), the same page, primed.',
        load: cacheLoad,
        notes: [`Render cache during the run (warm-up included): ${hits.toLocaleString('en-US')} hits, ${misses} misses.`],
      });

      if (existsSync(NGINX)) {
        const nginxPort = await freePort();
        const outDir = join(work, 'nginx');
        const options = edgeOptionsFromEnv(
          {
            NGINX_OUT: outDir,
            NGINX_LISTEN: `127.0.0.1:${nginxPort}`,
            NGINX_UPSTREAM: `127.0.0.1:${host.port}`,
            SITES_DIR: sitesDir,
            CSS_DIR,
            NGINX_RATE: '1000000r/s',
            NGINX_BURST: '1000000',
            NGINX_ACCESS_LOG: settings.accessLog ? join(outDir, 'access.log') : 'off',
            NGINX_ERROR_LOG: join(outDir, 'error.log'),
            ...(process.getuid?.() === 0 ? { NGINX_USER: 'root' } : {}),
          },
          ROOT,
        );
        const configStarted = performance.now();
        const conf = await writeEdgeConfig(options);
        // The one change to the generated config: autocannon mis-times every request after a
        // server closes a keep-alive connection (it pairs later responses with the request lost on
        // the closed socket), and nginx closes one after keepalive_requests (1000) requests. Raising
        // it keeps the latency numbers true; browsers never get near either limit.
        const confText = await readFile(conf, 'utf8');
        const anchor = /^(\s*)keepalive_timeout [^;]+;$/m;
        const keepaliveRaised = anchor.test(confText);
        if (keepaliveRaised) await writeFile(conf, confText.replace(anchor, (line, indent: string) => `${line}\n${indent}keepalive_requests 10000000;`));
        say(`nginx config for ${settings.sites} sites written in ${((performance.now() - configStarted) / 1000).toFixed(1)} s`);
        const nginx = spawnLogged({
          name: 'nginx',
          command: NGINX,
          args: ['-c', conf, '-p', outDir, '-g', 'daemon off;'],
          cwd: outDir,
          env: { ...process.env },
          logFile: join(work, 'logs', 'nginx.log'),
          stopSignal: 'SIGQUIT',
        });
        try {
          await waitForHttp(nginx, nginxPort, 'localhost', '/_platform/healthz', 20_000);
          await get(nginxPort, targetHost, '/');
          const edgePrimed = await get(nginxPort, targetHost, '/');
          const status = String(edgePrimed.headers['x-cache-status']);
          if (status !== 'HIT') throw new Error(`expected an nginx cache HIT after priming, got X-Cache-Status: ${status}`);
          const upstreamBefore = await metric(host.port, 'amt_site_requests_total', { site: targetId });
          const edgeLoad = await runLoad(work, 'nginx-micro-cache', loadOptions(nginxPort, { cpuPids: [...childPids(nginx.pid), host.child.pid] }));
          checkLoad('nginx micro-cache', edgeLoad);
          const upstream = (await metric(host.port, 'amt_site_requests_total', { site: targetId })) - upstreamBefore;
          scenarios.push({
            id: 'nginx-micro-cache',
            label: 'nginx micro-cache hit',
            what: `nginx (generated config, EDGE_CACHE_S=1, limit_req raised out of the way) in front of the default host; the page is served from nginx's cache.`,
            load: edgeLoad,
            notes: [
              `The host saw ${upstream} of the ${(edgeLoad.requests + edgeLoad.warmupRequests).toLocaleString('en-US')} requests (one background refresh per second).`,
              keepaliveRaised
                ? 'The bench adds `keepalive_requests 10000000;` to the generated config (see bench/README.md: autocannon mis-times requests after nginx closes a connection); CPU per request counts nginx workers + the host.'
                : 'Could not raise keepalive_requests in the generated config: latency figures may be inflated (see bench/README.md).',
            ],
          });
        } finally {
          await stopChild(nginx);
        }
      } else {
        scenarios.push({ id: 'nginx-micro-cache', label: 'nginx micro-cache hit', what: 'nginx in front of the host.', skipped: `${NGINX} not installed`, notes: [] });
      }

      const missesSiteBefore = await metric(host.port, 'amt_site_cache_misses_total');
      const spread = await runLoad(work, 'host-spread', loadOptions(host.port, { hosts: allHosts, cpuPids: [host.child.pid] }));
      checkLoad('host spread over all sites', spread);
      const contentMisses = (await metric(host.port, 'amt_site_cache_misses_total')) - missesSiteBefore;
      memory.hostDefaultAfterSpreadBytes = rssBytes(host.child.pid);
      const passes = (spread.requests + spread.warmupRequests) / settings.sites;
      scenarios.push({
        id: 'host-spread',
        label: `Host, spread over ${settings.sites.toLocaleString('en-US')} hosts`,
        what: `the default host, each request to the next of all ${settings.sites.toLocaleString('en-US')} hosts in turn (one round-robin shared by all connections).`,
        load: spread,
        notes: [`${passes.toFixed(2)} passes over all hosts (warm-up included); ${contentMisses.toLocaleString('en-US')} content-cache misses (site configs + pages) during it.`],
      });
    } finally {
      await stopChild(host.child);
    }

    // 5. Rule 12: the known site alone and during an unknown-host flood, among BENCH_FLOOD_SITES folders.
    const unknownFlood = settings.floodSites > 0 ? await flood() : undefined;
    // 6. Fairness: site B alone and while site A floods uncached renders, without and with plans (not in the smoke run).
    const noisyNeighbour = settings.smoke ? undefined : await noisy();
    // 7. Issue 12: cold, warm and Zipf spreads against the compiled-in peer (not in the smoke run:
    // two Astro builds); written as cold-spread.json / .md next to latest.*.
    if (!settings.smoke) say(`wrote ${await writeColdSpread(settings.outDir, await coldSpread(), machineInfo())}`);

    for (const scenario of scenarios) if (scenario.load) scenario.notes.push(...latencyNotes(scenario.load, settings.connections));
    const results: BenchResults = {
      version: 1,
      date: new Date().toISOString(),
      durationSeconds: (performance.now() - startedAt) / 1000,
      settings: {
        sites: settings.sites,
        seconds: settings.seconds,
        warmupSeconds: settings.warmupSeconds,
        connections: settings.connections,
        coldConcurrency: settings.coldConcurrency,
        smoke: settings.smoke,
        accessLog: settings.accessLog,
      },
      machine: machineInfo(),
      page: { site: targetId, host: targetHost, path: '/', bytes: { host: hostBody.length, baseline: baselineBytes, raw: hostBody.length } },
      scenarios,
      cold,
      coldFirst,
      markdownAfterRestart,
      hostNodeArgs: [...hostNodeArgs, ...nodeArgs],
      memory,
      unknownFlood,
      noisyNeighbour,
      targets: [...evaluateTargets(scenarios, memory, cold, settings.sites, coldFirst), ...(unknownFlood ? [floodTarget(unknownFlood)] : []), ...(noisyNeighbour ? [noisyTarget(noisyNeighbour)] : [])],
    };
    const files = await writeResults(settings.outDir, results);
    console.log(`\n${renderMarkdown(results)}`);
    say(`wrote ${files.json}, ${files.md}, ${files.svg}`);
    if (settings.updateReadme) {
      const updated = await updateReadme(join(ROOT, 'README.md'), results);
      say(updated ? 'updated the bench block in README.md' : 'README.md has no bench markers; left it alone');
    }
    const missed = results.targets.filter((t) => !t.pass);
    say(missed.length ? `targets MISSED: ${missed.map((t) => `${t.id} (${t.measured}, goal ${t.threshold})`).join('; ')}` : 'all targets met');
  } finally {
    keepAlive.destroy();
    await stopAll();
    if (settings.keep) say(`kept ${work} (BENCH_KEEP=1)`);
    else {
      await rm(work, { recursive: true, force: true });
      if ((await readdir(WORK_ROOT).catch(() => ['?'])).length === 0) await rmdir(WORK_ROOT).catch(() => {});
    }
  }
}

try {
  await main();
} catch (error) {
  console.error(`bench failed: ${(error as Error).stack ?? String(error)}`);
  process.exitCode = 1;
}
