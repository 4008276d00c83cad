import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { formatIssue } from '../errors.ts';
import { collectFromPeers } from '../ops/peers.ts';
import type { WorkerStatus } from '../ops/status.ts';
import type { SiteTrafficSnapshot } from '../ops/site-traffic.ts';
import type { NamedPlan } from './plans-file.ts';
import { buildFairnessModel } from './usage.ts';
import { usageCells } from './usage-page.ts';
import { contentLimitIssues, type ContentUsage } from './content-limits.ts';

/**
 * The running workers of this machine as the status page sees them (their peer sockets), for
 * `sites usage`; empty when no server is running (or PEER_DIR is refused).
 */
export async function runningWorkers(peerDir: string | undefined, port: number, timeoutMs = 1500): Promise<WorkerStatus[]> {
  const dir = peerDir ?? join(tmpdir(), `astro-multi-tenant-${port}`);
  // This process is no worker: it answers for itself with nothing, and is left out.
  const all = await collectFromPeers<WorkerStatus | undefined>(dir, 'status', { pid: process.pid, value: async () => undefined }, timeoutMs);
  return all.values.filter((w): w is WorkerStatus => w !== undefined);
}

/**
 * `sites usage <id>` as text: the site's plan and its limits, what its folder holds against the
 * size and count limits, and (when a server is running on this machine) its live usage and
 * throttles, the same numbers the status page shows.
 */
export function formatUsageReport(siteId: string, plan: NamedPlan, content: ContentUsage, workers: WorkerStatus[]): string {
  const rate1m = (t: SiteTrafficSnapshot) => (t.sites[siteId]?.requests ?? 0) / t.windowSeconds;
  const requestsPerSecond1m = workers.reduce((sum, w) => sum + rate1m(w.traffic1m), 0);
  const [usage] = buildFairnessModel({ sites: [{ id: siteId, requestsPerSecond1m }], workers, planFor: () => plan }).sites;
  const l = plan.limits;
  const lines = [
    `site ${siteId}: plan "${plan.name}"`,
    `  content   ${content.pages} / ${l.maxPages} pages; largest page ${content.largestPage ? `${content.largestPage.bytes} bytes (${content.largestPage.file})` : '-'} / ${l.maxPageBytes}; public/ ${content.publicBytes} / ${l.maxPublicBytes} bytes${content.truncated ? ' (walk stopped early: at least)' : ''}`,
  ];
  for (const issue of contentLimitIssues(siteId, content, plan)) lines.push(`  OVER      ${formatIssue(issue)}`);
  if (workers.length === 0) {
    lines.push('  live      no running server answered on this machine (start one, or set PEER_DIR/PORT as the server has them)');
  } else {
    const c = usageCells(usage!);
    lines.push(`  requests  ${c.requests}`, `  renders   ${c.renders}`, `  render    ${c.renderTime}`, `  throttled ${c.throttled} in the last ${workers[0]!.fairness?.throttleWindowSeconds ?? 60} s, ${workers.length} worker(s)`);
  }
  return lines.join('\n');
}
