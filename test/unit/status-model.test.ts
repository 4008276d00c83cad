import { describe, it, expect } from 'vitest';
import type { ContentIssue } from '../../astro-multi-tenant/server/errors.ts';
import { buildStatusModel, type StatusInput, type WorkerStatus } from '../../astro-multi-tenant/server/ops/status.ts';
import type { SiteTrafficCounts } from '../../astro-multi-tenant/server/ops/site-traffic.ts';

interface WorkerSpec {
  workerId: string;
  pid?: number;
  sites?: WorkerStatus['sites'];
  traffic1m?: Record<string, SiteTrafficCounts>;
  traffic5m?: Record<string, SiteTrafficCounts>;
  windowSeconds?: number;
  draining?: boolean;
}

function worker(spec: WorkerSpec): WorkerStatus {
  return {
    workerId: spec.workerId,
    pid: spec.pid ?? 1000 + Number(spec.workerId),
    uptimeSeconds: 42,
    memory: { rssBytes: 100 * 1024 * 1024, heapUsedBytes: 20 * 1024 * 1024, heapTotalBytes: 40 * 1024 * 1024, heapLimitBytes: 560 * 1024 * 1024 },
    draining: spec.draining ?? false,
    cache: { entries: 3, bytes: 2048, hits: 10, misses: 2, evictions: 0 },
    sites: spec.sites ?? [],
    traffic1m: { windowSeconds: spec.windowSeconds ?? 60, sites: spec.traffic1m ?? {} },
    traffic5m: { windowSeconds: 300, sites: spec.traffic5m ?? {} },
  };
}

const site = (id: string, domains: string[] = [], aliases: string[] = []) => ({ id, domains, aliases });

function input(overrides: Partial<StatusInput>): StatusInput {
  return {
    now: new Date('2030-01-02T03:04:05.000Z'),
    platformDomain: 'example.test',
    known: [],
    workers: [],
    unreachable: [],
    checked: new Map(),
    ...overrides,
  };
}

const issue: ContentIssue = { file: 'sites/broken/site.json', field: 'title', reason: 'is required' };
const req = (requests: number, errors = 0): SiteTrafficCounts => ({ requests, errors });

describe('buildStatusModel', () => {
  it('lists invalid sites first, then by traffic over 5 minutes, then by id', () => {
    const model = buildStatusModel(
      input({
        known: [site('bravo'), site('alpha'), site('charlie'), site('zulu-broken'), site('quiet'), site('never-seen')],
        workers: [
          worker({
            workerId: '0',
            sites: [{ id: 'bravo', ok: true }, { id: 'alpha', ok: true }, { id: 'charlie', ok: true }, { id: 'quiet', ok: true }, { id: 'zulu-broken', ok: false, issues: [issue] }],
            traffic5m: { bravo: req(5), alpha: req(5), charlie: req(10) },
          }),
        ],
      }),
    );
    expect(model.sites.map((s) => s.id)).toEqual(['zulu-broken', 'charlie', 'alpha', 'bravo', 'quiet', 'never-seen']);
    expect(model.sites.map((s) => s.health)).toEqual(['invalid', 'ok', 'ok', 'ok', 'ok', 'unchecked']);
  });

  it('counts how many workers hold each site in memory', () => {
    const model = buildStatusModel(
      input({
        known: [site('alpha'), site('beta'), site('gamma')],
        workers: [
          worker({ workerId: '0', sites: [{ id: 'alpha', ok: true }, { id: 'beta', ok: true }] }),
          worker({ workerId: '1', sites: [{ id: 'alpha', ok: true }] }),
          worker({ workerId: '2', sites: [] }),
        ],
      }),
    );
    const byId = Object.fromEntries(model.sites.map((s) => [s.id, s.cachedOn]));
    expect(byId).toEqual({ alpha: 2, beta: 1, gamma: 0 });
  });

  it('trusts a fresh disk check over a stale cached state, in both directions', () => {
    const fixedIssue: ContentIssue = { file: 'sites/gamma/site.json', field: 'domains.0', reason: 'is not a host name' };
    const model = buildStatusModel(
      input({
        known: [site('alpha'), site('gamma')],
        workers: [
          worker({
            workerId: '0',
            sites: [
              { id: 'alpha', ok: false, issues: [issue] }, // since fixed on disk
              { id: 'gamma', ok: true }, // since broken on disk
            ],
          }),
        ],
        checked: new Map([
          ['alpha', { ok: true, issues: [] }],
          ['gamma', { ok: false, issues: [fixedIssue] }],
        ]),
      }),
    );
    const alpha = model.sites.find((s) => s.id === 'alpha')!;
    const gamma = model.sites.find((s) => s.id === 'gamma')!;
    expect(alpha).toMatchObject({ health: 'ok', issues: [], cachedOn: 1 });
    expect(gamma).toMatchObject({ health: 'invalid', issues: [fixedIssue], cachedOn: 1 });
    expect(model.totals.invalid).toBe(1);
  });

  it('reports a site invalid when any worker holds it as invalid and no fresh check says otherwise', () => {
    const model = buildStatusModel(
      input({
        known: [site('alpha')],
        workers: [
          worker({ workerId: '0', sites: [{ id: 'alpha', ok: true }] }),
          worker({ workerId: '1', sites: [{ id: 'alpha', ok: false, issues: [issue] }] }),
        ],
      }),
    );
    expect(model.sites[0]).toMatchObject({ id: 'alpha', health: 'invalid', issues: [issue], cachedOn: 2 });
  });

  it('leaves a site unchecked when neither a disk check nor any worker knows its state', () => {
    const model = buildStatusModel(input({ known: [site('alpha')], workers: [worker({ workerId: '0' })] }));
    expect(model.sites[0]).toMatchObject({ id: 'alpha', health: 'unchecked', issues: [], cachedOn: 0 });
    expect(model.totals.invalid).toBe(0);
  });

  it('computes a site request rate as requests in the window divided by its seconds, summed over workers', () => {
    const model = buildStatusModel(
      input({
        known: [site('alpha'), site('beta')],
        workers: [worker({ workerId: '0', traffic1m: { alpha: req(30), beta: req(6) } }), worker({ workerId: '1', traffic1m: { alpha: req(12) } })],
      }),
    );
    const alpha = model.sites.find((s) => s.id === 'alpha')!;
    const beta = model.sites.find((s) => s.id === 'beta')!;
    expect(alpha.requestsPerSecond1m).toBeCloseTo(42 / 60, 10);
    expect(beta.requestsPerSecond1m).toBeCloseTo(6 / 60, 10);
    expect(model.workers.map((w) => [w.workerId, w.requestsPerSecond1m])).toEqual([
      ['0', 36 / 60],
      ['1', 12 / 60],
    ]);
    expect(model.totals.requestsPerSecond1m).toBeCloseTo(48 / 60, 10);
  });

  it('uses the window the workers actually measured, not a nominal 60 s', () => {
    const model = buildStatusModel(
      input({ known: [site('alpha')], workers: [worker({ workerId: '0', windowSeconds: 20, traffic1m: { alpha: req(10) } })] }),
    );
    expect(model.sites[0]!.requestsPerSecond1m).toBeCloseTo(0.5, 10);
    expect(model.workers[0]!.requestsPerSecond1m).toBeCloseTo(0.5, 10);
  });

  it('reports the 5 minute error rate as the share of requests that got a 5xx, over all workers', () => {
    const model = buildStatusModel(
      input({
        known: [site('alpha'), site('idle')],
        workers: [worker({ workerId: '0', traffic5m: { alpha: req(40, 5) } }), worker({ workerId: '1', traffic5m: { alpha: req(10, 0) } })],
      }),
    );
    const alpha = model.sites.find((s) => s.id === 'alpha')!;
    expect(alpha).toMatchObject({ requests5m: 50, errors5m: 5 });
    expect(alpha.errorRate5m).toBeCloseTo(0.1, 10);
    // No requests means no error rate, not NaN.
    expect(model.sites.find((s) => s.id === 'idle')).toMatchObject({ requests5m: 0, errors5m: 0, errorRate5m: 0 });
  });

  it('links each site to its first domain, or to its platform subdomain when it has none', () => {
    const model = buildStatusModel(
      input({ known: [site('alpha', ['alpha.com', 'www.alpha.com'], ['old-alpha.com']), site('beta')] }),
    );
    expect(model.sites.find((s) => s.id === 'alpha')).toMatchObject({ url: '//alpha.com/', domains: ['alpha.com', 'www.alpha.com'], aliases: ['old-alpha.com'] });
    expect(model.sites.find((s) => s.id === 'beta')).toMatchObject({ url: '//beta.example.test/', domains: [], aliases: [] });
  });

  it('totals sites, invalid sites, workers and unreachable workers', () => {
    const model = buildStatusModel(
      input({
        known: [site('alpha'), site('beta'), site('gamma')],
        workers: [worker({ workerId: '0', sites: [{ id: 'beta', ok: false, issues: [issue] }] }), worker({ workerId: '1' })],
        unreachable: [{ pid: 4242, error: 'peer did not answer within 1000 ms' }],
        checked: new Map([['gamma', { ok: false, issues: [issue] }]]),
      }),
    );
    expect(model.totals).toEqual({ sites: 3, invalid: 2, refusedClaims: 0, workers: 2, unreachableWorkers: 1, requestsPerSecond1m: 0 });
    expect(model.unreachable).toEqual([{ pid: 4242, error: 'peer did not answer within 1000 ms' }]);
    expect(model.generatedAt).toBe('2030-01-02T03:04:05.000Z');
    expect(model.platformDomain).toBe('example.test');
  });

  it('sorts workers by numeric id and strips their per-site detail from the worker rows', () => {
    const model = buildStatusModel(
      input({
        known: [site('alpha')],
        workers: [
          worker({ workerId: '10', draining: true, sites: [{ id: 'alpha', ok: true }] }),
          worker({ workerId: '2' }),
          worker({ workerId: '1' }),
        ],
      }),
    );
    expect(model.workers.map((w) => w.workerId)).toEqual(['1', '2', '10']);
    expect(model.workers[2]).toMatchObject({ workerId: '10', pid: 1010, draining: true, uptimeSeconds: 42 });
    for (const w of model.workers) {
      expect(w).not.toHaveProperty('sites');
      expect(w).not.toHaveProperty('traffic1m');
      expect(w).not.toHaveProperty('traffic5m');
    }
  });

  it('keeps each worker\'s cache figures as counted: entries, and bytes as bytes (the page picks the unit)', () => {
    for (const [entries, bytes] of [[0, 0], [20, 40_960], [3, 1024], [50_000, 128 * 1024 * 1024]] as const) {
      const w = worker({ workerId: '0' });
      w.cache = { entries, bytes, hits: 1, misses: 2, evictions: 3 };
      const model = buildStatusModel(input({ workers: [w] }));
      expect(model.workers[0]!.cache, `${entries} entries`).toEqual({ entries, bytes, hits: 1, misses: 2, evictions: 3 });
      expect(model.workers[0]!.memory).toEqual(w.memory);
    }
  });

  it('ignores sites workers hold or saw traffic for that are no longer in the folder scan', () => {
    const model = buildStatusModel(
      input({
        known: [site('alpha')],
        workers: [worker({ workerId: '0', sites: [{ id: 'deleted', ok: true }], traffic1m: { deleted: req(60) }, traffic5m: { deleted: req(60) } })],
      }),
    );
    expect(model.sites.map((s) => s.id)).toEqual(['alpha']);
    expect(model.totals.sites).toBe(1);
    // The worker's own rate still counts everything it served.
    expect(model.totals.requestsPerSecond1m).toBe(1);
  });

  it('does not change its input', () => {
    const given = input({
      known: [site('b'), site('a')],
      workers: [worker({ workerId: '1' }), worker({ workerId: '0', sites: [{ id: 'a', ok: true }] })],
    });
    const before = structuredClone(given);
    buildStatusModel(given);
    expect(given).toEqual(before);
  });
});
