/**
 * Load generator child process: `node bench/load-worker.ts <options.json> <result.json>`.
 * A warm-up run with the same connections, then the measured run; writes a LoadResult.
 * Runs in its own process so the orchestrator never shares an event loop with the load.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import autocannon from 'autocannon';
import { summarize, type LoadOptions, type LoadResult } from './load.ts';

interface RunOutput {
  result: autocannon.Result;
  latencies: number[];
  statusCodes: Record<string, number>;
  bytes: number;
  errorMessages: Set<string>;
}

function once(options: LoadOptions, seconds: number, record: boolean): Promise<RunOutput> {
  const latencies: number[] = [];
  const statusCodes: Record<string, number> = {};
  const errorMessages = new Set<string>();
  let bytes = 0;
  const hosts = options.hosts;
  let next = 0;
  const pickHost = hosts?.length ? (options.pick === 'zipf' ? zipfPicker(hosts, options.zipfS ?? 1) : () => hosts[next++ % hosts.length]!) : undefined;
  // Spread mode: one round-robin shared by all connections, so every host is asked in turn
  // (autocannon's own `requests` cycling restarts at the first entry on every connection).
  const requests: autocannon.Request[] | undefined = pickHost
    ? [{ method: 'GET', path: options.path, setupRequest: (req) => ({ ...req, headers: { ...req.headers, host: pickHost() } }) }]
    : undefined;
  return new Promise((resolve, reject) => {
    const instance = autocannon(
      {
        url: `http://127.0.0.1:${options.port}${options.path}`,
        connections: options.connections,
        ...(options.amount !== undefined && record ? { amount: options.amount } : { duration: seconds }),
        headers: { host: options.host },
        timeout: 10,
        ...(requests ? { requests } : {}),
      },
      (error, result) => (error ? reject(error) : resolve({ result, latencies, statusCodes, bytes, errorMessages })),
    );
    if (record) {
      instance.on('response', (_client, statusCode, resBytes, responseTime) => {
        latencies.push(responseTime);
        statusCodes[statusCode] = (statusCodes[statusCode] ?? 0) + 1;
        bytes += resBytes;
      });
      instance.on('reqError', (error: Error) => errorMessages.add(error.message));
    }
  });
}

/**
 * Zipf's law over `hosts` by rank (P(rank k) ∝ 1/k^s): a few sites get most requests and there is
 * a long tail, like real traffic. Seeded (mulberry32) so every run asks the same sequence.
 */
function zipfPicker(hosts: readonly string[], s: number): () => string {
  const cdf = new Float64Array(hosts.length);
  let total = 0;
  for (let k = 0; k < hosts.length; k++) cdf[k] = total += 1 / (k + 1) ** s;
  let seed = 0x9e3779b9;
  const random = () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return () => {
    const x = random() * total;
    let lo = 0;
    let hi = cdf.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (cdf[mid]! < x) lo = mid + 1;
      else hi = mid;
    }
    return hosts[lo]!;
  };
}

const CLOCK_TICKS = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout?.trim()) || 100;

/** user + system CPU seconds of these processes (Linux /proc); undefined elsewhere. */
function cpuSeconds(pids: readonly number[]): number | undefined {
  try {
    let ticks = 0;
    for (const pid of pids) {
      const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
      ticks += Number(fields[11]) + Number(fields[12]);
    }
    return ticks / CLOCK_TICKS;
  } catch {
    return undefined;
  }
}

async function main() {
  const [optionsFile, resultFile] = process.argv.slice(2);
  if (!optionsFile || !resultFile) throw new Error('usage: load-worker.ts <options.json> <result.json>');
  const options = JSON.parse(await readFile(optionsFile, 'utf8')) as LoadOptions;
  const warmup = options.warmupSeconds > 0 && options.amount === undefined ? await once(options, options.warmupSeconds, false) : undefined;
  const pids = options.cpuPids ?? [];
  const cpuBefore = pids.length ? cpuSeconds(pids) : undefined;
  const run = await once(options, options.seconds, true);
  const cpuAfter = pids.length ? cpuSeconds(pids) : undefined;
  const serverCpuSeconds = cpuBefore !== undefined && cpuAfter !== undefined ? Math.round((cpuAfter - cpuBefore) * 100) / 100 : undefined;
  const r = run.result;
  const requests = run.latencies.length;
  const ok2xx = Object.entries(run.statusCodes).reduce((n, [code, count]) => (code.startsWith('2') ? n + count : n), 0);
  const out: LoadResult = {
    requests,
    ok2xx,
    non2xx: requests - ok2xx,
    errors: r.errors,
    timeouts: r.timeouts,
    seconds: r.duration,
    rps: Math.round((requests / r.duration) * 10) / 10,
    latencyMs: summarize(run.latencies),
    statusCodes: run.statusCodes,
    bytesPerResponse: requests ? Math.round(run.bytes / requests) : 0,
    warmupRequests: warmup ? warmup.result.requests.total : 0,
    ...(serverCpuSeconds !== undefined && requests > 0 ? { serverCpuSeconds, serverCpuUsPerRequest: Math.round((serverCpuSeconds * 1e7) / requests) / 10 } : {}),
  };
  await writeFile(resultFile, JSON.stringify(out));
  if (run.errorMessages.size) console.error(`errors: ${[...run.errorMessages].join('; ')}`);
  console.log(JSON.stringify(out));
}

await main();
