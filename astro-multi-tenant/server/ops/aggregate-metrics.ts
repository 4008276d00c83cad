import { AggregatorRegistry } from 'prom-client';
import type { MetricsJson, WorkerMetricsJson } from './metrics.ts';

/**
 * Combines every worker's metrics into one exposition. PM2's daemon is the cluster primary, so
 * prom-client's cluster mode (which asks the primary) cannot run; but its static `aggregate` only
 * needs the workers' JSON, which each worker hands out over its peer socket (see peers.ts).
 *
 * Shared series are merged with each metric's own aggregator (counters and histograms sum).
 * Per-worker series already differ by their `worker`/`pid` labels, so they are forced to `sum`,
 * which leaves them as they are; prom-client would otherwise drop `omit` metrics such as
 * process_start_time_seconds, or average away one worker's event-loop lag.
 */
export async function aggregateMetrics(workers: WorkerMetricsJson[]): Promise<{ text: string; contentType: string }> {
  const perWorker: MetricsJson[] = workers.map((w) => w.worker.map((metric) => ({ ...metric, aggregator: 'sum' as const })));
  const registry = AggregatorRegistry.aggregate([...workers.map((w) => w.shared), ...perWorker]);
  return { text: await registry.metrics(), contentType: registry.contentType };
}
