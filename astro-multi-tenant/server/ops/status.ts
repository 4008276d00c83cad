import { getHeapStatistics } from 'node:v8';
import type { ContentIssue } from '../errors.ts';
import type { ContentCache } from '../sites/content-cache.ts';
import type { CertificateStatusRow } from '../tls/certificate-status.ts';
import { SITE_CACHE_PREFIX, type SiteState } from '../sites/loader.ts';
import type { SiteTraffic, SiteTrafficSnapshot } from './site-traffic.ts';
import type { FairnessSnapshot } from '../plans/fairness.ts';
import type { FairnessModel } from '../plans/usage.ts';
import type { DomainStatus } from '../tenant/domain-verifier.ts';

/** What one worker tells the status page about itself. */
export interface WorkerStatus {
  workerId: string;
  pid: number;
  uptimeSeconds: number;
  /** heapLimitBytes: V8's heap bound (WORKER_HEAP_MB under PM2), so a worker near it shows before it dies. */
  memory: { rssBytes: number; heapUsedBytes: number; heapTotalBytes: number; heapLimitBytes: number };
  draining: boolean;
  cache: { entries: number; bytes: number; hits: number; misses: number; evictions: number };
  /** Site configs this worker holds in memory. */
  sites: Array<{ id: string; ok: boolean; issues?: ContentIssue[] }>;
  traffic1m: SiteTrafficSnapshot;
  traffic5m: SiteTrafficSnapshot;
  /** Render usage and throttles by site in this worker (plans/fairness.ts). */
  fairness?: FairnessSnapshot;
}

export function workerStatus(deps: { workerId: string; cache: ContentCache; traffic: SiteTraffic; draining: boolean }): WorkerStatus {
  const memory = process.memoryUsage();
  const { cache } = deps;
  return {
    workerId: deps.workerId,
    pid: process.pid,
    uptimeSeconds: Math.round(process.uptime()),
    memory: { rssBytes: memory.rss, heapUsedBytes: memory.heapUsed, heapTotalBytes: memory.heapTotal, heapLimitBytes: getHeapStatistics().heap_size_limit },
    draining: deps.draining,
    cache: { entries: cache.size, bytes: cache.bytes, hits: cache.stats.hits, misses: cache.stats.misses, evictions: cache.stats.evictions },
    sites: cache.peekAll(SITE_CACHE_PREFIX).map(([, value]) => {
      const state = value as SiteState;
      return state.ok ? { id: state.site.id, ok: true } : { id: state.id, ok: false, issues: state.error.issues };
    }),
    traffic1m: deps.traffic.snapshot(60),
    traffic5m: deps.traffic.snapshot(300),
  };
}

export type SiteHealth = 'ok' | 'invalid' | 'unchecked';

export interface SiteStatusRow {
  id: string;
  url: string;
  domains: string[];
  aliases: string[];
  health: SiteHealth;
  issues: ContentIssue[];
  /** Hosts this site lists that another site already serves: its claims are refused (tenant/host-claims.ts). */
  refused: Array<{ host: string; owner: string }>;
  /** How many workers hold this site's config in memory, of `workers`. */
  cachedOn: number;
  requestsPerSecond1m: number;
  /** Share of the last 5 minutes' requests that got a 5xx; 4xx are visitors' mistakes, not the site's. */
  errorRate5m: number;
  requests5m: number;
  errors5m: number;
}

export interface StatusModel {
  generatedAt: string;
  platformDomain: string;
  totals: { sites: number; invalid: number; refusedClaims: number; workers: number; unreachableWorkers: number; requestsPerSecond1m: number };
  workers: Array<Omit<WorkerStatus, 'sites' | 'traffic1m' | 'traffic5m'> & { requestsPerSecond1m: number }>;
  unreachable: Array<{ pid: number; error: string }>;
  sites: SiteStatusRow[];
  /** Each site's plan, its usage against the plan's limits, and who is throttled now (plans/usage.ts). */
  fairness?: FairnessModel;
  /** DOMAIN_VERIFICATION=dns: each custom domain and alias with its ownership check (tenant/domain-status.ts). */
  domains?: DomainStatus[];
  /** ACME_DIRECTORY_URL: each custom domain's and alias's certificate (tls/certificate-status.ts). */
  certificates?: CertificateStatusRow[];
}

export interface StatusInput {
  now: Date;
  platformDomain: string;
  known: ReadonlyArray<{ id: string; domains: readonly string[]; aliases: readonly string[]; refused?: ReadonlyArray<{ host: string; owner: string }> }>;
  workers: WorkerStatus[];
  unreachable: Array<{ pid: number; error: string }>;
  /** Fresh validation results from disk, for the sites that were checked this time. */
  checked: Map<string, { ok: boolean; issues: ContentIssue[] }>;
}

const sum = (values: number[]) => values.reduce((a, b) => a + b, 0);

/** Merges the workers' views with the folder scan into one row per known site. Pure. */
export function buildStatusModel(input: StatusInput): StatusModel {
  const { workers } = input;
  const heldBy = new Map<string, WorkerStatus['sites']>();
  for (const w of workers) for (const s of w.sites) heldBy.set(s.id, [...(heldBy.get(s.id) ?? []), s]);
  const rows: SiteStatusRow[] = input.known.map((site) => {
    const held = heldBy.get(site.id) ?? [];
    const fresh = input.checked.get(site.id);
    const cachedInvalid = held.find((s) => !s.ok);
    const health: SiteHealth = fresh ? (fresh.ok ? 'ok' : 'invalid') : cachedInvalid ? 'invalid' : held.length > 0 ? 'ok' : 'unchecked';
    const issues = fresh ? fresh.issues : (cachedInvalid?.issues ?? []);
    const t1 = workers.map((w) => w.traffic1m.sites[site.id]);
    const t5 = workers.map((w) => w.traffic5m.sites[site.id]);
    const window1 = workers[0]?.traffic1m.windowSeconds ?? 60;
    const requests5m = sum(t5.map((t) => t?.requests ?? 0));
    const errors5m = sum(t5.map((t) => t?.errors ?? 0));
    const primary = site.domains[0] ?? `${site.id}.${input.platformDomain}`;
    return {
      id: site.id,
      url: `//${primary}/`,
      domains: [...site.domains],
      aliases: [...site.aliases],
      health,
      issues,
      refused: (site.refused ?? []).map((r) => ({ host: r.host, owner: r.owner })),
      cachedOn: held.length,
      requestsPerSecond1m: sum(t1.map((t) => t?.requests ?? 0)) / window1,
      errorRate5m: requests5m === 0 ? 0 : errors5m / requests5m,
      requests5m,
      errors5m,
    };
  });
  const order: Record<SiteHealth, number> = { invalid: 0, ok: 1, unchecked: 2 };
  // Sites needing their owner's attention first: invalid ones, then those with refused claims.
  rows.sort((a, b) => order[a.health] - order[b.health] || Number(b.refused.length > 0) - Number(a.refused.length > 0) || b.requests5m - a.requests5m || (a.id < b.id ? -1 : 1));
  const workerRows = workers
    .map(({ sites: _s, traffic1m, traffic5m: _t, ...rest }) => ({
      ...rest,
      requestsPerSecond1m: sum(Object.values(traffic1m.sites).map((t) => t.requests)) / traffic1m.windowSeconds,
    }))
    .sort((a, b) => a.workerId.localeCompare(b.workerId, 'en', { numeric: true }) || a.pid - b.pid);
  return {
    generatedAt: input.now.toISOString(),
    platformDomain: input.platformDomain,
    totals: {
      sites: rows.length,
      invalid: rows.filter((r) => r.health === 'invalid').length,
      refusedClaims: rows.reduce((n, r) => n + r.refused.length, 0),
      workers: workers.length,
      unreachableWorkers: input.unreachable.length,
      requestsPerSecond1m: sum(workerRows.map((w) => w.requestsPerSecond1m)),
    },
    workers: workerRows,
    unreachable: input.unreachable,
    sites: rows,
  };
}
