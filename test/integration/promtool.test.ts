import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ROOT, copySites, get, removeDir, startServer, type RunningServer } from '../helpers/server.ts';

/** promtool comes with Debian's `prometheus` package (README, .ci/run). */
function promtool(args: string[], input?: string) {
  const run = spawnSync('promtool', args, { input, encoding: 'utf8' });
  if (run.error) throw new Error(`cannot run promtool: ${run.error.message} (apt-get install prometheus)`);
  return { status: run.status, output: `${run.stdout}${run.stderr}` };
}

describe('the operator files and our metrics against Prometheus\'s own checker', () => {
  let sitesDir: string;
  let server: RunningServer;

  beforeAll(async () => {
    sitesDir = await copySites();
    server = await startServer(sitesDir);
  }, 30_000);

  afterAll(async () => {
    await server?.stop();
    if (sitesDir) await removeDir(sitesDir);
  });

  it('ships alert rules promtool accepts, covering errors, latency, throttling, restarts, Redis and unreachable workers', async () => {
    const file = join(ROOT, 'deploy/prometheus/alerts.yml');
    const check = promtool(['check', 'rules', file]);
    expect(check.output).toContain('SUCCESS');
    expect(check.status).toBe(0);
    const rules = await readFile(file, 'utf8');
    for (const alert of ['AmtHighErrorRate', 'AmtSlowResponses', 'AmtSiteThrottled', 'AmtWorkersRestarting', 'AmtRedisUnreachable', 'AmtMetricsWorkersUnreachable']) expect(rules).toContain(`alert: ${alert}`);
  });

  it('serves /_platform/metrics that promtool check metrics finds nothing wrong with, after traffic of every kind', async () => {
    for (const [host, path] of [['acme.localhost', '/'], ['acme.localhost', '/nothing-here'], ['nowhere.test', '/'], ['docs.localhost', '/guide']]) await get(server.port, host!, path);
    const metrics = await get(server.port, '127.0.0.1', '/_platform/metrics');
    expect(metrics.status).toBe(200);
    const check = promtool(['check', 'metrics'], metrics.body);
    expect(check.output).toBe('');
    expect(check.status).toBe(0);
    // The per-type gauges stay; only their misnamed `_total` sums are gone.
    expect(metrics.body).toMatch(/^nodejs_active_handles\{/m);
    expect(metrics.body).not.toMatch(/^nodejs_active_\w+_total/m);
  });

  it('ships a Grafana dashboard whose every query names series the server writes', async () => {
    const dashboard = JSON.parse(await readFile(join(ROOT, 'deploy/grafana/astro-multi-tenant.json'), 'utf8'));
    const exprs: string[] = dashboard.panels.flatMap((p: { targets?: Array<{ expr: string }> }) => (p.targets ?? []).map((t) => t.expr));
    expect(exprs.length).toBeGreaterThan(8);
    const metrics = (await get(server.port, '127.0.0.1', '/_platform/metrics')).body;
    const written = new Set([...metrics.matchAll(/^# TYPE (\w+) (\w+)/gm)].flatMap(([, name, type]) => (type === 'histogram' ? [`${name}_bucket`, `${name}_count`, `${name}_sum`] : [name!])));
    // Series only written once they have a reason to exist (a throttle, Redis configured) are checked against the source.
    const source = (await readFile(join(ROOT, 'astro-multi-tenant/server/ops/metrics.ts'), 'utf8')) + (await readFile(join(ROOT, 'astro-multi-tenant/server/ops/cluster-metrics.ts'), 'utf8'));
    for (const expr of exprs) {
      for (const [name] of expr.matchAll(/\b(?:amt|nodejs|process)_[a-z_]+\b/g)) {
        const known = written.has(name!) || source.includes(`'${name}'`) || source.includes(`'${name!.replace(/_(bucket|count|sum)$/, '')}'`);
        expect(known, `${name} in ${expr}`).toBe(true);
      }
    }
  });
});
