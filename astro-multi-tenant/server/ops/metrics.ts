import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics, type MetricObjectWithValues, type MetricValue } from 'prom-client';
import type { ContentCache } from '../sites/content-cache.ts';
import { createBoundedLabels, methodLabel, statusClass } from './bounded-labels.ts';

/** What a request was, for the duration histogram: a handful of fixed values, never a path. */
export type RouteKind =
  | 'page'
  | 'static'
  | 'css'
  | 'redirect'
  | 'sitemap'
  | 'robots'
  | 'site_not_found'
  | 'unknown_host'
  | 'unavailable'
  | 'bad_request'
  | 'method_not_allowed'
  | 'health'
  | 'metrics'
  | 'status'
  | 'session'
  | 'platform'
  | 'forbidden'
  | 'throttled'
  | 'acme_challenge'
  | 'error';

export type MetricsJson = MetricObjectWithValues<MetricValue<string>>[];

export interface WorkerMetricsJson {
  /** Series that mean the same on every worker and are summed over workers. */
  shared: MetricsJson;
  /** Process-level series, labelled with the worker, never summed. */
  worker: MetricsJson;
}

export interface MetricsOptions {
  workerId: string;
  cache: ContentCache;
  /** At most this many distinct `site` label values per worker; the rest count as `_other`. */
  siteLabelLimit: number;
}

const DURATION_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

/**
 * The worker's Prometheus metrics, in two registries: `shared` holds counters and histograms that
 * are summed across PM2 workers when scraped; `worker` holds prom-client's default process metrics
 * and event-loop lag, labelled `worker` and `pid` so each worker keeps its own series.
 */
export function createMetrics(options: MetricsOptions) {
  const shared = new Registry();
  const worker = new Registry();
  worker.setDefaultLabels({ worker: options.workerId, pid: String(process.pid) });
  collectDefaultMetrics({ register: worker, eventLoopMonitoringPrecision: 10 });
  dropGaugeTotals(worker);

  const requestDuration = new Histogram({
    name: 'amt_http_request_duration_seconds',
    help: 'Time from request to response end, by method, status class and route kind (no site label: see amt_site_requests_total).',
    labelNames: ['method', 'status_class', 'route'] as const,
    buckets: DURATION_BUCKETS,
    registers: [shared],
  });
  const siteRequests = new Counter({
    name: 'amt_site_requests_total',
    help: `Requests per site and status class. Each worker labels the first ${options.siteLabelLimit} sites it sees; later ones count as site="_other".`,
    labelNames: ['site', 'status_class'] as const,
    registers: [shared],
  });
  const siteLoad = new Histogram({
    name: 'amt_site_load_duration_seconds',
    help: 'Time to load a site config on a cache miss or after an edit.',
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25],
    registers: [shared],
  });
  const render = new Histogram({
    name: 'amt_render_duration_seconds',
    help: 'Time Astro spent rendering a page, platform page or error page.',
    labelNames: ['view'] as const,
    buckets: DURATION_BUCKETS,
    registers: [shared],
  });
  const sessionStoreErrors = new Counter({
    name: 'amt_session_store_errors_total',
    help: 'Session store operations that failed (Redis unreachable, timeout).',
    labelNames: ['operation'] as const,
    registers: [shared],
  });
  const sessionStoreDuration = new Histogram({
    name: 'amt_session_store_duration_seconds',
    help: 'Latency of session store operations.',
    labelNames: ['operation'] as const,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5],
    registers: [shared],
  });

  // The cache keeps plain numbers; these mirror them at scrape time instead of instrumenting the
  // cache's hot path.
  const { cache } = options;
  const cacheCounter = (name: string, help: string, read: () => number) =>
    new Counter({
      name,
      help,
      registers: [shared],
      collect() {
        this.reset();
        this.inc(read());
      },
    });
  cacheCounter('amt_site_cache_hits_total', 'Site cache lookups answered from memory.', () => cache.stats.hits);
  cacheCounter('amt_site_cache_misses_total', 'Site cache lookups that had to load from disk.', () => cache.stats.misses);
  cacheCounter('amt_site_cache_evictions_total', 'Entries evicted to stay within the entry or byte bound.', () => cache.stats.evictions);
  cacheCounter('amt_site_cache_reloads_total', 'Entries reloaded because their files changed.', () => cache.stats.reloads);
  new Gauge({
    name: 'amt_site_cache_entries',
    help: 'Entries (site configs and pages) held in the site cache, summed over workers.',
    registers: [shared],
    collect() {
      this.set(cache.size);
    },
  });
  new Gauge({
    name: 'amt_site_cache_bytes',
    help: 'Approximate bytes held in the site cache, summed over workers.',
    registers: [shared],
    collect() {
      this.set(cache.bytes);
    },
  });

  const siteLabels = createBoundedLabels(options.siteLabelLimit);
  const throttled = new Counter({
    name: 'amt_throttled_requests_total',
    help: `Requests answered 429 because their site was over a limit of its plan, by reason (requests, renders, render_concurrency, render_cpu) and plan; site labels bounded like amt_site_requests_total.`,
    labelNames: ['site', 'reason', 'plan'] as const,
    registers: [shared],
  });
  const siteRenderSeconds = new Counter({
    name: 'amt_site_render_seconds_total',
    help: 'Time spent rendering each site\'s pages (render-cache misses and members pages), the account its render budget is checked against; site labels bounded.',
    labelNames: ['site'] as const,
    registers: [shared],
  });

  /** Whether site limits are shared through Redis right now (1) or counted per process (0). */
  function watchFairness(fairness: { limiter: { shared: boolean } }) {
    new Gauge({
      name: 'amt_site_limits_shared',
      help: 'Whether this worker counts site limits in Redis (1) or in its own memory because Redis is unreachable or not configured (0).',
      registers: [worker],
      collect() {
        this.set(fairness.limiter.shared ? 1 : 0);
      },
    });
  }

  /** Mirrors the render cache's counters at scrape time (registered once, when there is one). */
  function watchRenderCache(renderCache: { stats: { hits: number; misses: number }; size: number; bytes: number }) {
    cacheCounter('amt_render_cache_hits_total', 'Anonymous page requests answered from the render cache.', () => renderCache.stats.hits);
    cacheCounter('amt_render_cache_misses_total', 'Anonymous page requests that had to render.', () => renderCache.stats.misses);
    new Gauge({ name: 'amt_render_cache_entries', help: 'Rendered pages held, summed over workers.', registers: [shared], collect() { this.set(renderCache.size); } });
    new Gauge({ name: 'amt_render_cache_bytes', help: 'Bytes of rendered pages held, summed over workers.', registers: [shared], collect() { this.set(renderCache.bytes); } });
  }

  function watchRenderedPages(folder: { stats: { hits: number; misses: number; writeErrors: number } }) {
    cacheCounter('amt_render_cache_disk_hits_total', 'Anonymous page requests the in-memory render cache missed that were answered from rendered pages on disk (RENDER_CACHE_DIR).', () => folder.stats.hits);
    cacheCounter('amt_render_cache_disk_misses_total', 'Anonymous page requests that missed both render caches and rendered.', () => folder.stats.misses);
    cacheCounter('amt_render_cache_disk_write_errors_total', 'Rendered pages that could not be written to RENDER_CACHE_DIR.', () => folder.stats.writeErrors);
  }

  function watchMarkdownCache(markdownCache: { stats: { hits: number; misses: number; writeErrors: number } }) {
    cacheCounter('amt_markdown_cache_hits_total', 'Cold page loads whose HTML was read from the Markdown cache on disk.', () => markdownCache.stats.hits);
    cacheCounter('amt_markdown_cache_misses_total', 'Cold page loads that rendered Markdown.', () => markdownCache.stats.misses);
    cacheCounter('amt_markdown_cache_write_errors_total', 'Rendered pages that could not be written to the Markdown cache.', () => markdownCache.stats.writeErrors);
  }

  /** Mirrors the refusal pacer's count at scrape time (pipeline/refusal-pacer.ts). */
  function watchRefusalPacer(pacer: { delayed: number }) {
    cacheCounter('amt_refusals_delayed_total', 'Refusals (unknown-host 404s, plan 429s) whose answer waited because the worker was busy (REFUSAL_DELAY_MS).', () => pacer.delayed);
  }

  const acmeErrors = new Counter({
    name: 'amt_acme_errors_total',
    help: 'Failed ACME certificate orders, by kind (rate_limited, validation, ca, network, store, other); only the worker holding a domain\'s lock orders, so the sum over workers counts each failure once.',
    labelNames: ['kind'] as const,
    registers: [shared],
  });

  /**
   * Certificates by state and the earliest expiry, from the shared store as this worker last read
   * it (tls/certificate-manager.ts). Every worker reads the same store, so workers are combined
   * with max (by state) and min (expiry), never summed.
   */
  function watchCertificates(certificates: { statuses(): ReadonlyArray<{ state: string; notAfter?: number }> }, states: readonly string[]) {
    new Gauge({
      name: 'amt_certificates',
      help: 'Certificates of custom domains and aliases, by state (pending, valid, due, failing, failed, expired, revoked).',
      labelNames: ['state'] as const,
      aggregator: 'max',
      registers: [shared],
      collect() {
        const counts = new Map(states.map((s) => [s, 0]));
        for (const c of certificates.statuses()) counts.set(c.state, (counts.get(c.state) ?? 0) + 1);
        for (const [state, n] of counts) this.set({ state }, n);
      },
    });
    new Gauge({
      name: 'amt_certificate_earliest_expiry_seconds',
      help: 'Seconds until the earliest certificate expiry (negative once expired; /86400 for days); absent while there is no certificate.',
      aggregator: 'min',
      registers: [shared],
      collect() {
        const ends = certificates.statuses().flatMap((c) => (c.notAfter !== undefined ? [c.notAfter] : []));
        this.reset();
        if (ends.length > 0) this.set((Math.min(...ends) - Date.now()) / 1000);
      },
    });
  }

  return {
    shared,
    worker,
    watchCertificates,
    observeAcmeError(kind: string) {
      acmeErrors.inc({ kind });
    },
    watchRenderCache,
    watchRefusalPacer,
    watchMarkdownCache,
    watchRenderedPages,
    watchFairness,
    observeThrottle(site: string, reason: string, plan: string) {
      throttled.inc({ site: siteLabels.label(site), reason, plan });
    },
    observeSiteRender(site: string, seconds: number) {
      siteRenderSeconds.inc({ site: siteLabels.label(site) }, seconds);
    },
    observeRequest(sample: { method: string | undefined; status: number; route: RouteKind; site: string | undefined; seconds: number }) {
      const status_class = statusClass(sample.status);
      requestDuration.observe({ method: methodLabel(sample.method), status_class, route: sample.route }, sample.seconds);
      if (sample.site) siteRequests.inc({ site: siteLabels.label(sample.site), status_class });
    },
    observeSiteLoad(seconds: number) {
      siteLoad.observe(seconds);
    },
    observeRender(view: string, seconds: number) {
      render.observe({ view }, seconds);
    },
    observeSessionStore(operation: string, seconds: number, failed: boolean) {
      sessionStoreDuration.observe({ operation }, seconds);
      if (failed) sessionStoreErrors.inc({ operation });
    },
    async toJson(): Promise<WorkerMetricsJson> {
      const [s, w] = await Promise.all([shared.getMetricsAsJSON(), worker.getMetricsAsJSON()]);
      return { shared: s as MetricsJson, worker: w as MetricsJson };
    },
  };
}

export type Metrics = ReturnType<typeof createMetrics>;

/**
 * prom-client's default `nodejs_active_{handles,requests,resources}_total` are gauges, and a
 * `_total` suffix promises a counter (`promtool check metrics` rejects them; OpenMetrics reserves
 * the suffix for counters). They are only the sum of the by-type gauges prom-client registers
 * next to them (`nodejs_active_handles{type=…}`, …), so they are dropped: `sum(nodejs_active_handles)`
 * is the same number, and our /_platform/metrics passes the check.
 */
function dropGaugeTotals(registry: Registry) {
  for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']) registry.removeSingleMetric(name);
}
