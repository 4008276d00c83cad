import type { FairnessModel, SiteUsage } from './usage.ts';
import { formatReasons } from './usage.ts';

/** How many of the busiest sites the usage table lists; status.json has them all. */
const USAGE_ROWS = 50;

const rate = (value: number) => value.toLocaleString('en-US', { maximumFractionDigits: 1 });

/**
 * One site's usage against its plan as text cells: requests per second (1 min) of the plan's
 * rate, render milliseconds per second (busiest worker) of its budget, renders running/queued,
 * and its throttled requests by reason. Shared by the status page and `sites usage`.
 */
export function usageCells(s: SiteUsage): { requests: string; renderTime: string; renders: string; throttled: string } {
  return {
    requests: `${rate(s.requestsPerSecond1m)} / ${rate(s.limits.requestsPerSecond)} req/s (burst ${s.limits.burst})`,
    renderTime: `${rate(s.renderMsPerSecond)} / ${rate(s.limits.renderCpuMsPerSecond)} ms/s per worker`,
    renders: `${s.rendersRunning} running, ${s.rendersQueued} queued (max ${s.limits.renderConcurrency} at once, ${rate(s.limits.rendersPerSecond)}/s)`,
    throttled: s.throttled > 0 ? `${s.throttled} (${formatReasons(s.throttledByReason)})` : '0',
  };
}

/**
 * The status page's "Plans and limits" section: whether limits are shared, sites per plan, who is
 * throttled now, and the busiest sites' usage against their plans. Pure; `escape` is the page's.
 */
export function renderFairnessSection(model: FairnessModel, escape: (value: string) => string): string {
  const row = (s: SiteUsage) => {
    const c = usageCells(s);
    return `<tr><td>${escape(s.id)}</td><td>${escape(s.plan)}</td><td class="num">${escape(c.requests)}</td><td class="num">${escape(c.renderTime)}</td><td>${escape(c.renders)}</td><td class="num${s.throttled ? ' bad' : ''}">${escape(c.throttled)}</td></tr>`;
  };
  const head = '<table><thead><tr><th>Site</th><th>Plan</th><th class="num">Requests (1 min) / limit</th><th class="num">Render time / budget</th><th>Renders now</th><th class="num">Throttled</th></tr></thead><tbody>';
  const busiest = [...model.sites]
    .filter((s) => s.requestsPerSecond1m > 0 || s.renderMsPerSecond > 0 || s.throttled > 0)
    .sort((a, b) => b.requestsPerSecond1m / b.limits.requestsPerSecond - a.requestsPerSecond1m / a.limits.requestsPerSecond || b.renderMsPerSecond - a.renderMsPerSecond)
    .slice(0, USAGE_ROWS);
  const plans = Object.entries(model.plans)
    .map(([name, n]) => `${escape(name)}: ${n}`)
    .join(' · ');
  return `<h2>Plans and limits</h2>
<p>${model.shared ? '<span class="good">limits shared through Redis</span>' : '<span class="bad">limits counted per worker</span> (Redis unreachable or not configured)'} · sites per plan: ${plans || 'none'}</p>
<h3>Throttled now (last ${model.throttleWindowSeconds} s)</h3>
${model.throttledNow.length ? `${head}${model.throttledNow.slice(0, USAGE_ROWS).map(row).join('\n')}</tbody></table>` : '<p class="muted">No site is being throttled.</p>'}
<h3>Usage against plans (busiest ${USAGE_ROWS})</h3>
${busiest.length ? `${head}${busiest.map(row).join('\n')}</tbody></table>` : '<p class="muted">No traffic in the last minute.</p>'}`;
}
