import { aggregateMetrics } from './aggregate-metrics.ts';
import { collectFromPeers } from './peers.ts';
import type { WorkerMetricsJson } from './metrics.ts';

/**
 * One Prometheus scrape for the whole machine's cluster: this worker's metrics plus every peer's
 * over the peer sockets in `peerDir()`, summed (prom-client's AggregatorRegistry cannot run in
 * PM2's daemon), and two gauges saying how many workers answered in time.
 */
export function createClusterMetrics(deps: { peerDir: () => string; ownMetrics: () => Promise<WorkerMetricsJson>; timeoutMs: number }) {
  return async function scrape(): Promise<{ text: string; contentType: string }> {
    const all = await collectFromPeers(deps.peerDir(), 'metrics', { pid: process.pid, value: deps.ownMetrics }, deps.timeoutMs);
    const { text, contentType } = await aggregateMetrics(all.values);
    const footer = [
      '# HELP amt_metrics_workers_reporting Workers whose metrics are included in this scrape.',
      '# TYPE amt_metrics_workers_reporting gauge',
      `amt_metrics_workers_reporting ${all.values.length}`,
      '# HELP amt_metrics_workers_unreachable Workers that did not answer this scrape in time.',
      '# TYPE amt_metrics_workers_unreachable gauge',
      `amt_metrics_workers_unreachable ${all.unreachable.length}`,
      '',
    ].join('\n');
    return { text: text + footer, contentType };
  };
}
