import { describe, it, expect } from 'vitest';
import { aggregateMetrics } from '../../astro-multi-tenant/server/ops/aggregate-metrics.ts';
import { createMetrics, type WorkerMetricsJson } from '../../astro-multi-tenant/server/ops/metrics.ts';
import { createContentCache, type CacheSource } from '../../astro-multi-tenant/server/sites/content-cache.ts';

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Parses the Prometheus text exposition into samples (enough for prom-client's output). */
function parse(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match) throw new Error(`unparsable line: ${line}`);
    const labels: Record<string, string> = {};
    for (const [, key, value] of (match[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[key!] = value!;
    samples.push({ name: match[1]!, labels, value: Number(match[3]) });
  }
  return samples;
}

/** Samples of `name` whose labels include every one of `labels`. */
function find(samples: Sample[], name: string, labels: Record<string, string> = {}): Sample[] {
  return samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
}

/** The one sample of `name` with exactly these labels; fails when there is none or several. */
function value(samples: Sample[], name: string, labels: Record<string, string> = {}): number {
  const exact = find(samples, name, labels).filter((s) => Object.keys(s.labels).length === Object.keys(labels).length);
  expect(exact, `${name}${JSON.stringify(labels)}`).toHaveLength(1);
  return exact[0]!.value;
}

/** The value one worker reported in its own JSON for a per-worker gauge. */
function workerValue(json: WorkerMetricsJson, name: string): number {
  const metric = json.worker.find((m) => m.name === name);
  expect(metric, name).toBeDefined();
  expect(metric!.values).toHaveLength(1);
  return metric!.values[0]!.value;
}

const source: CacheSource<string> = {
  fingerprint: async () => 'v1',
  load: async () => ({ value: 'config', bytes: 10 }),
};

function worker(workerId: string, siteLabelLimit = 100) {
  const cache = createContentCache({ maxEntries: 100, maxBytes: 1_000_000, checkIntervalMs: 60_000 });
  return { cache, metrics: createMetrics({ workerId, cache, siteLabelLimit }) };
}

const GET = 'GET';

describe('aggregateMetrics', () => {
  it("sums one counter across workers but keeps each worker's memory series apart", async () => {
    const a = worker('0');
    const b = worker('1');
    a.metrics.observeRequest({ method: GET, status: 200, route: 'page', site: 'alpha', seconds: 0.002 });
    a.metrics.observeRequest({ method: GET, status: 404, route: 'page', site: 'alpha', seconds: 0.02 });
    b.metrics.observeRequest({ method: GET, status: 200, route: 'page', site: 'alpha', seconds: 0.2 });
    b.metrics.observeRequest({ method: GET, status: 200, route: 'page', site: 'beta', seconds: 0.002 });
    b.metrics.observeRequest({ method: 'POST', status: 503, route: 'error', site: undefined, seconds: 1.5 });

    const jsonA = await a.metrics.toJson();
    const jsonB = await b.metrics.toJson();
    const { text, contentType } = await aggregateMetrics([jsonA, jsonB]);
    const samples = parse(text);

    expect(contentType).toMatch(/^text\/plain/);
    expect(value(samples, 'amt_site_requests_total', { site: 'alpha', status_class: '2xx' })).toBe(2);
    expect(value(samples, 'amt_site_requests_total', { site: 'alpha', status_class: '4xx' })).toBe(1);
    expect(value(samples, 'amt_site_requests_total', { site: 'beta', status_class: '2xx' })).toBe(1);
    // A request without a site (unknown host, error page) counts in the histogram but not per site.
    expect(find(samples, 'amt_site_requests_total').reduce((n, s) => n + s.value, 0)).toBe(4);

    for (const name of ['process_resident_memory_bytes', 'process_start_time_seconds', 'nodejs_eventloop_lag_seconds']) {
      const series = find(samples, name);
      expect(series.map((s) => s.labels.worker).sort(), name).toEqual(['0', '1']);
      expect(series.every((s) => s.labels.pid === String(process.pid)), name).toBe(true);
      // Each worker's series carries exactly what that worker reported: not summed, not averaged.
      expect(value(samples, name, { worker: '0', pid: String(process.pid) }), name).toBe(workerValue(jsonA, name));
      expect(value(samples, name, { worker: '1', pid: String(process.pid) }), name).toBe(workerValue(jsonB, name));
    }
  });

  it('sums histogram counts, sums and buckets across workers', async () => {
    const a = worker('0');
    const b = worker('1');
    a.metrics.observeRequest({ method: GET, status: 200, route: 'page', site: 'alpha', seconds: 0.002 });
    a.metrics.observeRequest({ method: GET, status: 200, route: 'page', site: 'alpha', seconds: 0.2 });
    b.metrics.observeRequest({ method: GET, status: 200, route: 'page', site: 'beta', seconds: 0.002 });
    b.metrics.observeRequest({ method: GET, status: 200, route: 'static', site: 'beta', seconds: 0.004 });
    a.metrics.observeSiteLoad(0.003);
    b.metrics.observeSiteLoad(0.03);
    b.metrics.observeSiteLoad(0.3);

    const samples = parse((await aggregateMetrics([await a.metrics.toJson(), await b.metrics.toJson()])).text);
    const page = { method: 'GET', status_class: '2xx', route: 'page' };
    expect(value(samples, 'amt_http_request_duration_seconds_count', page)).toBe(3);
    expect(value(samples, 'amt_http_request_duration_seconds_sum', page)).toBeCloseTo(0.204, 10);
    expect(value(samples, 'amt_http_request_duration_seconds_bucket', { ...page, le: '0.0025' })).toBe(2);
    expect(value(samples, 'amt_http_request_duration_seconds_bucket', { ...page, le: '0.25' })).toBe(3);
    expect(value(samples, 'amt_http_request_duration_seconds_bucket', { ...page, le: '+Inf' })).toBe(3);
    expect(value(samples, 'amt_http_request_duration_seconds_count', { method: 'GET', status_class: '2xx', route: 'static' })).toBe(1);
    expect(value(samples, 'amt_site_load_duration_seconds_count')).toBe(3);
    // 0.3 s is past the largest site-load bucket (0.25): only +Inf holds all three.
    expect(value(samples, 'amt_site_load_duration_seconds_bucket', { le: '0.25' })).toBe(2);
    expect(value(samples, 'amt_site_load_duration_seconds_bucket', { le: '+Inf' })).toBe(3);
  });

  it("sums the cache counters and gauges read from each worker's own content cache", async () => {
    const a = worker('0');
    const b = worker('1');
    // a: 2 misses, 3 hits; b: 1 miss, 1 hit.
    await a.cache.get('site\0alpha', source);
    await a.cache.get('site\0beta', source);
    for (let i = 0; i < 3; i++) await a.cache.get('site\0alpha', source);
    await b.cache.get('site\0alpha', source);
    await b.cache.get('site\0alpha', source);

    const samples = parse((await aggregateMetrics([await a.metrics.toJson(), await b.metrics.toJson()])).text);
    expect(value(samples, 'amt_site_cache_hits_total')).toBe(4);
    expect(value(samples, 'amt_site_cache_misses_total')).toBe(3);
    expect(value(samples, 'amt_site_cache_evictions_total')).toBe(0);
    expect(value(samples, 'amt_site_cache_entries')).toBe(3);
    expect(value(samples, 'amt_site_cache_bytes')).toBe(30);
  });

  it('reports cache counters as they are now on every scrape, not added up over scrapes', async () => {
    const a = worker('0');
    await a.cache.get('site\0alpha', source);
    await a.metrics.toJson();
    await a.metrics.toJson();
    await a.cache.get('site\0alpha', source);
    const samples = parse((await aggregateMetrics([await a.metrics.toJson()])).text);
    expect(value(samples, 'amt_site_cache_misses_total')).toBe(1);
    expect(value(samples, 'amt_site_cache_hits_total')).toBe(1);
  });

  it('sums session store errors and latencies by operation', async () => {
    const a = worker('0');
    const b = worker('1');
    a.metrics.observeSessionStore('get', 0.001, false);
    a.metrics.observeSessionStore('get', 0.1, true);
    b.metrics.observeSessionStore('get', 0.2, true);
    b.metrics.observeSessionStore('set', 0.001, false);
    b.metrics.observeRender('page', 0.01);
    a.metrics.observeRender('page', 0.02);

    const samples = parse((await aggregateMetrics([await a.metrics.toJson(), await b.metrics.toJson()])).text);
    expect(value(samples, 'amt_session_store_errors_total', { operation: 'get' })).toBe(2);
    expect(find(samples, 'amt_session_store_errors_total', { operation: 'set' })).toEqual([]);
    expect(value(samples, 'amt_session_store_duration_seconds_count', { operation: 'get' })).toBe(3);
    expect(value(samples, 'amt_session_store_duration_seconds_count', { operation: 'set' })).toBe(1);
    expect(value(samples, 'amt_render_duration_seconds_count', { view: 'page' })).toBe(2);
  });

  it('counts a site past the label limit as site="_other" and still sums it across workers', async () => {
    const a = worker('0', 2);
    const b = worker('1', 2);
    for (const site of ['alpha', 'beta', 'gamma']) a.metrics.observeRequest({ method: GET, status: 200, route: 'page', site, seconds: 0.001 });
    // Worker b sees the sites in another order, so it labels a different pair.
    for (const site of ['gamma', 'alpha', 'beta', 'delta']) b.metrics.observeRequest({ method: GET, status: 200, route: 'page', site, seconds: 0.001 });

    const samples = parse((await aggregateMetrics([await a.metrics.toJson(), await b.metrics.toJson()])).text);
    const sites = find(samples, 'amt_site_requests_total');
    expect(Object.fromEntries(sites.map((s) => [s.labels.site, s.value]))).toEqual({ alpha: 2, beta: 1, gamma: 1, _other: 3 });
    expect(find(samples, 'amt_site_requests_total', { site: 'delta' })).toEqual([]);
  });

  it('bounds the method and status labels a client can influence', async () => {
    const a = worker('0');
    a.metrics.observeRequest({ method: 'BREW', status: 200, route: 'page', site: 'alpha', seconds: 0.001 });
    a.metrics.observeRequest({ method: 'PROPFIND', status: 999, route: 'page', site: 'alpha', seconds: 0.001 });
    const samples = parse((await aggregateMetrics([await a.metrics.toJson()])).text);
    expect(value(samples, 'amt_http_request_duration_seconds_count', { method: 'OTHER', status_class: '2xx', route: 'page' })).toBe(1);
    expect(value(samples, 'amt_http_request_duration_seconds_count', { method: 'OTHER', status_class: 'other', route: 'page' })).toBe(1);
    expect(value(samples, 'amt_site_requests_total', { site: 'alpha', status_class: 'other' })).toBe(1);
  });

  it('survives the JSON round trip a worker makes over its peer socket', async () => {
    const a = worker('0');
    const b = worker('1');
    a.metrics.observeRequest({ method: GET, status: 200, route: 'page', site: 'alpha', seconds: 0.001 });
    b.metrics.observeRequest({ method: GET, status: 200, route: 'page', site: 'alpha', seconds: 0.001 });
    const overTheWire = (json: WorkerMetricsJson) => JSON.parse(JSON.stringify(json)) as WorkerMetricsJson;
    const samples = parse((await aggregateMetrics([overTheWire(await a.metrics.toJson()), overTheWire(await b.metrics.toJson())])).text);
    expect(value(samples, 'amt_site_requests_total', { site: 'alpha', status_class: '2xx' })).toBe(2);
    expect(find(samples, 'process_start_time_seconds').map((s) => s.labels.worker).sort()).toEqual(['0', '1']);
  });
});
