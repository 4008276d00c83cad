import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { ROOT, copySites, get, removeDir, waitFor } from '../helpers/server.ts';
import { startCluster, type RunningCluster } from '../helpers/cluster.ts';
import { startLoad } from '../helpers/load.ts';
import { redisForTests } from '../helpers/redis.ts';
import { metricSum } from '../../bench/metrics-text.ts';

const TOKEN = 'test-admin-token-0123456789';
const SESSION_KEYS = 'k1:cluster-test-signing-secret-0123456789abcdef';

describe('the PM2 cluster (real pm2, two workers)', () => {
  let cluster: RunningCluster;
  let sitesDir: string;
  let redis: { url: string; stop(): Promise<void> };

  beforeAll(async () => {
    sitesDir = await copySites([join(ROOT, 'test/fixtures/broken-sites/broken')]);
    // More than one worker needs shared sessions: Redis and shared signing keys.
    redis = await redisForTests();
    cluster = await startCluster(sitesDir, { instances: 2, env: { ADMIN_TOKEN: TOKEN, REDIS_URL: redis.url, SESSION_KEYS: SESSION_KEYS } });
  }, 120_000);

  afterAll(async () => {
    await cluster?.stop();
    await redis?.stop();
    await removeDir(sitesDir);
  }, 60_000);

  const metrics = async () => {
    const res = await get(cluster.port, 'localhost', '/_platform/metrics');
    expect(res.status).toBe(200);
    return res.body;
  };

  it('counts every request exactly once in /_platform/metrics, whichever worker served it or answers the scrape', async () => {
    const before = await metrics();
    const pagesBefore = metricSum(before, 'amt_http_request_duration_seconds_count', { route: 'page' });
    const acmeBefore = metricSum(before, 'amt_site_requests_total', { site: 'acme' });

    const sent = 400;
    const load = startLoad({ port: cluster.port, host: 'acme.example', connections: 10, amount: sent });
    const result = await load.done;
    expect(result.ok2xx).toBe(sent);

    for (let scrape = 0; scrape < 4; scrape++) {
      // Each scrape may land on either worker; every one must report the same totals.
      const after = await metrics();
      expect(metricSum(after, 'amt_http_request_duration_seconds_count', { route: 'page' }) - pagesBefore).toBe(sent);
      expect(metricSum(after, 'amt_site_requests_total', { site: 'acme', status_class: '2xx' }) - acmeBefore).toBe(sent);
      expect(metricSum(after, 'amt_metrics_workers_reporting')).toBe(2);
      // Process metrics stay per worker: one series per pid, not a sum.
      const pids = new Set([...after.matchAll(/^process_resident_memory_bytes\{[^}]*pid="(\d+)"/gm)].map((m) => m[1]));
      expect(pids.size).toBe(2);
      expect(after).toMatch(/^nodejs_eventloop_lag_seconds\{/m);
      expect(after).toMatch(/^amt_site_cache_hits_total \d+/m);
      expect(after).toMatch(/^amt_site_load_duration_seconds_count \d+/m);
      expect(after).toMatch(/^amt_render_duration_seconds_count\{view="page"\} \d+/m);
    }
    // Both workers took part (connections are spread round-robin): each one counted some traffic.
    const status = JSON.parse((await get(cluster.port, 'localhost', '/_platform/status.json')).body);
    expect(status.workers).toHaveLength(2);
    for (const worker of status.workers) expect(worker.requestsPerSecond1m).toBeGreaterThan(0);
  }, 60_000);

  it('shows every site with its state, traffic and each worker on the status page, as HTML and JSON', async () => {
    await get(cluster.port, 'broken.example', '/'); // 503, counted as an error for "broken"
    const json = await get(cluster.port, 'localhost', '/_platform/status.json');
    expect(json.status).toBe(200);
    const model = JSON.parse(json.body);
    const ids = model.sites.map((s: { id: string }) => s.id).sort();
    expect(ids).toEqual(['acme', 'bakery', 'blog', 'broken', 'docs', 'studio']);
    const broken = model.sites.find((s: { id: string }) => s.id === 'broken');
    expect(broken.health).toBe('invalid');
    expect(broken.issues.length).toBeGreaterThan(0);
    expect(broken.issues[0].file).toBe('sites/broken/site.json');
    expect(broken.errors5m).toBeGreaterThanOrEqual(1);
    expect(model.sites.find((s: { id: string }) => s.id === 'acme')).toMatchObject({ health: 'ok', domains: ['acme.example'] });
    expect(model.totals).toMatchObject({ sites: 6, invalid: 1, workers: 2, unreachableWorkers: 0 });
    for (const worker of model.workers) {
      expect(worker.memory.rssBytes).toBeGreaterThan(10 * 1024 * 1024);
      // PM2 started the worker with ecosystem.config.js's node_args: the V8 heap is bounded
      // (1 GiB old space + young generation), not sized for the whole machine.
      expect(worker.memory.heapLimitBytes).toBeGreaterThan(1024 * 1024 * 1024);
      expect(worker.memory.heapLimitBytes).toBeLessThan(1200 * 1024 * 1024);
      expect(worker.uptimeSeconds).toBeGreaterThanOrEqual(0);
    }

    const html = await get(cluster.port, 'localhost', '/_platform/status');
    expect(html.status).toBe(200);
    expect(html.headers['content-type']).toMatch(/text\/html/);
    for (const id of ids) expect(html.body).toContain(`>${id}</a>`);
    expect(html.body).toContain('sites/broken/site.json');
    expect(html.body).toContain('invalid');
    expect(html.body).toMatch(/MiB/);
    // Invalid sites are listed first: the thing an operator must act on.
    expect(html.body.indexOf('>broken</a>')).toBeLessThan(html.body.indexOf('>acme</a>'));
  });

  it('keeps metrics and status from visitors behind a proxy, and opens them with the admin token', async () => {
    // Through nginx on loopback the peer is trusted, so the visitor is the X-Forwarded-For address.
    const remote = { 'X-Forwarded-For': '203.0.113.9' };
    expect((await get(cluster.port, 'acme.example', '/_platform/metrics', remote)).status).toBe(403);
    expect((await get(cluster.port, 'acme.example', '/_platform/status', remote)).status).toBe(403);
    expect((await get(cluster.port, 'acme.example', '/_platform/metrics', { ...remote, Authorization: 'Bearer wrong-token-wrong-token' })).status).toBe(401);
    const withToken = await get(cluster.port, 'acme.example', '/_platform/metrics', { ...remote, Authorization: `Bearer ${TOKEN}` });
    expect(withToken.status).toBe(200);
    expect(withToken.body).toContain('amt_http_request_duration_seconds');
    // Health stays public: load balancers probe it without credentials, on any host.
    expect((await get(cluster.port, 'unknown.example', '/_platform/healthz', remote)).status).toBe(200);
    const ready = await get(cluster.port, 'unknown.example', '/_platform/readyz', remote);
    expect(ready.status).toBe(200);
    expect(JSON.parse(ready.body).status).toBe('ready');
  });

  it('reloads twice under continuous load without a single failed or non-2xx response', async () => {
    const pidsBefore = (await cluster.processes()).map((p) => p.pid).sort();
    const load = startLoad({ port: cluster.port, host: 'acme.example', connections: 8, seconds: 60 });
    await waitFor(async () => load.ok > 200, 10_000);
    await cluster.pm2('reload', 'astro-multi-tenant');
    await cluster.pm2('reload', 'astro-multi-tenant');
    const okAfterReloads = load.ok;
    await waitFor(async () => load.ok > okAfterReloads + 200, 10_000);
    load.stop();
    const result = await load.done;

    expect(result.errorMessages).toEqual([]);
    expect(result.errors).toBe(0);
    expect(result.timeouts).toBe(0);
    expect(result.non2xx).toBe(0);
    expect(result.ok2xx).toBe(result.total);
    expect(result.total).toBeGreaterThan(400);
    const after = await cluster.processes();
    expect(after.every((p) => p.status === 'online')).toBe(true);
    // Both workers really were replaced, twice over.
    expect(after.map((p) => p.pid).filter((pid) => pidsBefore.includes(pid))).toEqual([]);
  }, 120_000);

  it('keeps serving when a worker is killed with SIGKILL, and PM2 brings it back', async () => {
    const before = await cluster.processes();
    const victim = before[0]!;
    const load = startLoad({ port: cluster.port, host: 'acme.example', connections: 8, seconds: 60 });
    await waitFor(async () => load.ok > 200, 10_000);
    process.kill(victim.pid, 'SIGKILL');
    const okAtKill = load.ok;
    // The survivor keeps answering while PM2 restarts the victim.
    await waitFor(async () => load.ok > okAtKill + 500, 15_000);
    await waitFor(async () => {
      const now = await cluster.processes();
      const slot = now.find((p) => p.pm_id === victim.pm_id);
      return Boolean(slot && slot.status === 'online' && slot.pid !== victim.pid && slot.pid > 0);
    }, 30_000, 200);
    load.stop();
    const result = await load.done;
    // Only requests in flight on the killed worker's connections can fail.
    expect(result.errors).toBeLessThanOrEqual(8);
    expect(result.non2xx).toBe(0);

    // And the restarted worker is a full member again: a clean run with no errors, both workers serving.
    await cluster.waitOnline(2);
    const clean = await startLoad({ port: cluster.port, host: 'acme.example', connections: 8, amount: 400 }).done;
    expect(clean.errors).toBe(0);
    expect(clean.ok2xx).toBe(400);
    const reporting = metricSum(await metrics(), 'amt_metrics_workers_reporting');
    expect(reporting).toBe(2);
  }, 120_000);
});
