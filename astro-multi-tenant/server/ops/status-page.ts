import { domainToUnicode } from 'node:url';
import { formatIssue } from '../errors.ts';
import type { StatusModel } from './status.ts';
import { renderFairnessSection } from '../plans/usage-page.ts';

const renderFairness = (model: NonNullable<StatusModel['fairness']>) => renderFairnessSection(model, escape);

const escape = (value: string) =>
  value.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

/** DOMAIN_VERIFICATION=dns: each custom domain's check state and the TXT record it needs, not-served ones first. */
function renderDomains(domains: NonNullable<StatusModel['domains']>, generatedAt: string): string {
  const now = Date.parse(generatedAt);
  const order = { failed: 0, pending: 1, failing: 2, verified: 3 } as const;
  const rows = [...domains]
    .sort((a, b) => order[a.state] - order[b.state] || (a.domain < b.domain ? -1 : 1))
    .map((d) => {
      const cls = d.state === 'verified' ? 'good' : d.state === 'failing' ? 'bad' : d.state === 'failed' ? 'bad' : 'muted';
      const grace = d.state === 'failing' && d.graceEndsAt ? ` · served until ${escape(new Date(d.graceEndsAt).toISOString())}` : '';
      const checked = d.checkedAt ? `${Math.max(0, Math.round((now - d.checkedAt) / 1000))} s ago` : 'never';
      return `<tr><td>${escape(d.site)}</td><td>${escape(d.domain)}</td><td class="${cls}">${escape(d.state)}${grace}</td><td><code>${escape(d.txtName)}</code> TXT <code>${escape(d.token)}</code></td><td>${checked}${d.detail ? `<div class="muted">${escape(d.detail)}</div>` : ''}</td></tr>`;
    })
    .join('\n');
  return `<h2>Custom domains</h2>
<table><thead><tr><th>Site</th><th>Domain</th><th>State</th><th>DNS record to create</th><th>Last check</th></tr></thead>
<tbody>
${rows}
</tbody></table>`;
}

/** ACME_DIRECTORY_URL: each custom domain's certificate, those within 14 days of expiry first and flagged. */
function renderCertificates(certificates: NonNullable<StatusModel['certificates']>, generatedAt: string): string {
  const now = Date.parse(generatedAt);
  const flagged = certificates.filter((c) => c.expiringSoon).length;
  const rows = certificates
    .map((c) => {
      const cls = c.state === 'valid' ? 'good' : c.state === 'pending' || c.state === 'due' ? 'muted' : 'bad';
      const expires = c.notAfter === undefined ? '—' : `${escape(new Date(c.notAfter).toISOString().slice(0, 10))} (${c.daysLeft} days)${c.expiringSoon ? ' <span class="bad">expires within 14 days</span>' : ''}`;
      const retry = c.nextAttemptAt && c.nextAttemptAt > now ? ` · next attempt in ${Math.round((c.nextAttemptAt - now) / 1000)} s` : '';
      const problem = c.lastError ? `<div class="muted">${escape(c.lastError)}${retry}</div>` : '';
      return `<tr><td>${escape(c.site)}</td><td>${escape(c.host)}</td><td class="${cls}">${escape(c.state)}${c.failures > 0 ? ` (${c.failures} failed)` : ''}${problem}</td><td>${expires}</td></tr>`;
    })
    .join('\n');
  return `<h2>Certificates${flagged > 0 ? ` <span class="bad">${flagged} expiring within 14 days</span>` : ''}</h2>
<table><thead><tr><th>Site</th><th>Host</th><th>State</th><th>Expires</th></tr></thead>
<tbody>
${rows}
</tbody></table>`;
}

const BYTE_UNITS = ['KiB', 'MiB', 'GiB'] as const;

/**
 * A byte count in the binary unit its magnitude calls for: whole bytes below 1024 ("812 B"), then
 * one decimal in KiB, MiB or GiB ("3.4 KiB", "150.0 MiB"). The unit is picked after rounding, so
 * 1,048,575 bytes reads "1.0 MiB", never "1024.0 KiB". Every size on the status page goes through
 * here: one fixed unit showed a 40 KiB cache as "0.0 MiB" beside its 20 entries.
 */
export function formatBytes(bytes: number): string {
  const whole = Math.max(0, Math.round(Number.isFinite(bytes) ? bytes : 0));
  if (whole < 1024) return `${whole} B`;
  let value = whole / 1024;
  let unit = 0;
  while (unit < BYTE_UNITS.length - 1 && Number(value.toFixed(1)) >= 1024) {
    value /= 1024;
    unit++;
  }
  return `${value.toLocaleString('en-US', { minimumFractionDigits: 1, maximumFractionDigits: 1 })} ${BYTE_UNITS[unit]}`;
}

/**
 * A request rate (requests per second) with its unit and one decimal, the same everywhere on the
 * page: "0.0 req/s", "12.3 req/s", "1,234.5 req/s". A rate above zero that would round to 0.0
 * (one request in a minute is 0.017/s) reads "<0.1 req/s", so a quiet site never looks idle.
 */
export function formatRate(perSecond: number): string {
  const value = Math.max(0, Number.isFinite(perSecond) ? perSecond : 0);
  const text = value.toLocaleString('en-US', { minimumFractionDigits: 1, maximumFractionDigits: 1 });
  return `${value > 0 && text === '0.0' ? '<0.1' : text} req/s`;
}

const percent = (share: number) => `${(share * 100).toFixed(share > 0 && share < 0.01 ? 2 : 1)}%`;

/**
 * A stored host name as people read it: hosts are kept in ASCII (IDNs as punycode, see
 * tenant/normalize-host.ts), so an IDN is shown in Unicode with its punycode form on hover.
 * `domainToUnicode` (WHATWG URL, UTS #46) returns '' for what is not a domain; that is shown as is.
 */
function hostLabel(host: string): string {
  const unicode = domainToUnicode(host);
  if (unicode === '' || unicode === host) return escape(host);
  return `<span title="${escape(host)}">${escape(unicode)}</span>`;
}

function duration(seconds: number): string {
  if (seconds < 120) return `${seconds} s`;
  if (seconds < 7200) return `${Math.floor(seconds / 60)} min`;
  if (seconds < 172800) return `${Math.floor(seconds / 3600)} h`;
  return `${Math.floor(seconds / 86400)} d`;
}

/** Rows shown in HTML; the JSON form always has them all. */
export const STATUS_HTML_ROW_LIMIT = 500;

/** The status page as HTML: no scripts, refreshes itself, readable without any stylesheet. Pure. */
export function renderStatusPage(model: StatusModel, filter = ''): string {
  const needle = filter.trim().toLowerCase();
  // A domain matches in either form, so "bäckerei" and "xn--bckerei-5wa" find the same site.
  const matching = needle
    ? model.sites.filter((s) => s.id.includes(needle) || s.domains.some((d) => d.includes(needle) || domainToUnicode(d).includes(needle)))
    : model.sites;
  const shown = matching.slice(0, STATUS_HTML_ROW_LIMIT);
  const { totals } = model;
  const siteRows = shown
    .map((s) => {
      const state =
        s.health === 'invalid'
          ? `<span class="bad">invalid</span><ul class="issues">${s.issues.map((i) => `<li>${escape(formatIssue(i))}</li>`).join('')}</ul>`
          : s.health === 'ok'
            ? '<span class="good">ok</span>'
            : '<span class="muted">not checked</span>';
      const refused = s.refused.length
        ? `<ul class="issues">${s.refused.map((r) => `<li class="refused">${hostLabel(r.host)}: refused, already served by ${escape(r.owner)}</li>`).join('')}</ul>`
        : '';
      return `<tr><td><a href="${escape(s.url)}">${escape(s.id)}</a></td><td>${[...s.domains.map(hostLabel), ...s.aliases.map((a) => `${hostLabel(a)} →`)].join(', ') || '(platform subdomain only)'}</td><td>${state}${refused}</td><td>${s.cachedOn > 0 ? `cached on ${s.cachedOn}/${totals.workers}` : '<span class="muted">not loaded</span>'}</td><td class="num">${formatRate(s.requestsPerSecond1m)}</td><td class="num${s.errors5m > 0 ? ' bad' : ''}">${percent(s.errorRate5m)}</td><td class="num">${s.requests5m}</td></tr>`;
    })
    .join('\n');
  const workerRows = model.workers
    .map(
      (w) =>
        `<tr><td>${escape(w.workerId)}</td><td class="num">${w.pid}</td><td>${w.draining ? '<span class="bad">draining</span>' : '<span class="good">serving</span>'}</td><td class="num">${duration(w.uptimeSeconds)}</td><td class="num">${formatBytes(w.memory.rssBytes)}</td><td class="num">${formatBytes(w.memory.heapUsedBytes)} / ${formatBytes(w.memory.heapLimitBytes)}</td><td class="num">${w.cache.entries}</td><td class="num">${formatBytes(w.cache.bytes)}</td><td class="num">${formatRate(w.requestsPerSecond1m)}</td></tr>`,
    )
    .join('\n');
  const unreachable = model.unreachable.length
    ? `<p class="bad">${model.unreachable.length} worker(s) did not answer: ${model.unreachable.map((u) => `pid ${u.pid} (${escape(u.error)})`).join('; ')}</p>`
    : '';
  const more = matching.length > shown.length ? `<p class="muted">Showing ${shown.length} of ${matching.length} sites; narrow with the filter or read <a href="/_platform/status.json">status.json</a>.</p>` : '';
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="refresh" content="10"><meta name="robots" content="noindex">
<title>Status · astro-multi-tenant</title>
<style>
body{font:14px/1.45 system-ui,sans-serif;margin:2rem;color:#1f2937;background:#fafafa}
h1{font-size:1.4rem;margin:0 0 .25rem}h2{font-size:1.1rem;margin:2rem 0 .5rem}
table{border-collapse:collapse;width:100%;background:#fff}th,td{text-align:left;padding:.35rem .6rem;border-bottom:1px solid #e5e7eb;vertical-align:top}
th{background:#f3f4f6;font-weight:600}.num{text-align:right;font-variant-numeric:tabular-nums}
.good{color:#047857}.bad{color:#b91c1c;font-weight:600}.muted{color:#6b7280}.issues{margin:.25rem 0 0;padding-left:1rem;font:12px ui-monospace,monospace;color:#7f1d1d}
.cards{display:flex;gap:1rem;flex-wrap:wrap}.card{background:#fff;border:1px solid #e5e7eb;border-radius:.5rem;padding:.6rem 1rem}.card b{display:block;font-size:1.3rem}
</style></head><body>
<h1>astro-multi-tenant status</h1>
<p class="muted">Generated ${escape(model.generatedAt)} · platform domain ${escape(model.platformDomain)} · refreshes every 10 s · <a href="/_platform/status.json">JSON</a> · <a href="/_platform/metrics">metrics</a></p>
<div class="cards">
<div class="card"><b>${totals.sites}</b>sites</div>
<div class="card"><b class="${totals.invalid ? 'bad' : ''}">${totals.invalid}</b>invalid</div>
<div class="card"><b class="${totals.refusedClaims ? 'bad' : ''}">${totals.refusedClaims}</b>refused host claims</div>
<div class="card"><b>${totals.workers}</b>workers</div>
<div class="card"><b>${formatRate(totals.requestsPerSecond1m)}</b>requests (1 min)</div>
</div>
${unreachable}
<h2>Workers</h2>
<table><thead><tr><th>Worker</th><th class="num">PID</th><th>State</th><th class="num">Uptime</th><th class="num">RSS</th><th class="num">Heap used / limit</th><th class="num">Cache entries</th><th class="num">Cache size</th><th class="num">Rate (1 min)</th></tr></thead>
<tbody>
${workerRows}
</tbody></table>
${model.fairness ? renderFairness(model.fairness) : ''}
${model.domains ? renderDomains(model.domains, model.generatedAt) : ''}
${model.certificates ? renderCertificates(model.certificates, model.generatedAt) : ''}
<h2>Sites</h2>
<form method="get"><input name="q" value="${escape(filter)}" placeholder="filter by id or domain"> <button>Filter</button></form>
<table><thead><tr><th>Site</th><th>Domains (aliases →)</th><th>Config</th><th>Memory</th><th class="num">Rate (1 min)</th><th class="num">5xx (5 min)</th><th class="num">Requests (5 min)</th></tr></thead>
<tbody>
${siteRows}
</tbody></table>
${more}
</body></html>
`;
}
