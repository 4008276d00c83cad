import { describe, it, expect } from 'vitest';
import type { ContentIssue } from '../../astro-multi-tenant/server/errors.ts';
import { STATUS_HTML_ROW_LIMIT, renderStatusPage } from '../../astro-multi-tenant/server/ops/status-page.ts';
import { buildStatusModel, type StatusInput, type WorkerStatus } from '../../astro-multi-tenant/server/ops/status.ts';

function worker(workerId: string, overrides: Partial<WorkerStatus> = {}): WorkerStatus {
  return {
    workerId,
    pid: 2000 + Number(workerId),
    uptimeSeconds: 3600,
    memory: { rssBytes: 150 * 1024 * 1024, heapUsedBytes: 30 * 1024 * 1024, heapTotalBytes: 60 * 1024 * 1024, heapLimitBytes: 560 * 1024 * 1024 },
    draining: false,
    cache: { entries: 2, bytes: 1024 * 1024, hits: 5, misses: 2, evictions: 0 },
    sites: [],
    traffic1m: { windowSeconds: 60, sites: {} },
    traffic5m: { windowSeconds: 300, sites: {} },
    ...overrides,
  };
}

function model(overrides: Partial<StatusInput>) {
  return buildStatusModel({
    now: new Date('2030-01-02T03:04:05.000Z'),
    platformDomain: 'example.test',
    known: [],
    workers: [worker('0')],
    unreachable: [],
    checked: new Map(),
    ...overrides,
  });
}

const site = (id: string, domains: string[] = [], aliases: string[] = []) => ({ id, domains, aliases });

/** The site rows of the rendered page (worker rows have no link in their first cell). */
const siteRows = (html: string) => html.split('\n').filter((line) => line.startsWith('<tr><td><a href='));

const SCRIPT = '<script>alert("x")</script>';

describe('renderStatusPage', () => {
  it('escapes site ids, domains and issues so content cannot inject markup', () => {
    const evilIssue: ContentIssue = { file: `sites/${SCRIPT}/site.json`, field: "title's", reason: `must not be "${SCRIPT}"` };
    const html = renderStatusPage(
      model({
        known: [site(SCRIPT, [`"><img src=x onerror=alert(1)>.test`])],
        checked: new Map([[SCRIPT, { ok: false, issues: [evilIssue] }]]),
      }),
    );
    expect(html).not.toContain('<script');
    expect(html).not.toContain('<img');
    expect(html).toContain('&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;');
    expect(html).toContain('&quot;&gt;&lt;img src=x onerror=alert(1)&gt;.test');
    expect(html).toContain('title&#39;s');
    // The link target is escaped too, so a quote cannot close the href attribute.
    expect(html).toContain('<a href="//&quot;&gt;&lt;img src=x onerror=alert(1)&gt;.test/">');
  });

  it('escapes the filter it echoes back into the search box', () => {
    const html = renderStatusPage(model({ known: [site('alpha')] }), `"><script>alert(1)</script>`);
    expect(html).not.toContain('<script');
    expect(html).toContain('<input name="q" value="&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;"');
  });

  it('escapes worker ids and the errors of workers that did not answer', () => {
    const html = renderStatusPage(
      model({ workers: [worker('0', { workerId: '<b>w</b>' })], unreachable: [{ pid: 77, error: `peer answered 500: ${SCRIPT}` }] }),
    );
    expect(html).not.toContain('<script');
    expect(html).not.toContain('<b>w</b>');
    expect(html).toContain('&lt;b&gt;w&lt;/b&gt;');
    expect(html).toContain('1 worker(s) did not answer: pid 77 (peer answered 500: &lt;script&gt;');
  });

  it('shows each issue of an invalid site as "file: field: reason"', () => {
    const issues: ContentIssue[] = [
      { file: 'sites/broken/site.json', field: 'domains.0', reason: 'is not a host name' },
      { file: 'sites/broken/site.json', field: '', reason: 'is not valid JSON' },
    ];
    const html = renderStatusPage(model({ known: [site('broken'), site('fine')], checked: new Map([['broken', { ok: false, issues }], ['fine', { ok: true, issues: [] }]]) }));
    const [broken, fine] = siteRows(html);
    expect(broken).toContain('<span class="bad">invalid</span>');
    expect(broken).toContain('<li>sites/broken/site.json: domains.0: is not a host name</li>');
    expect(broken).toContain('<li>sites/broken/site.json: is not valid JSON</li>');
    expect(fine).toContain('<span class="good">ok</span>');
    expect(fine).not.toContain('<li>');
  });

  it('narrows the site rows to ids or domains containing the filter', () => {
    const m = model({ known: [site('alpha', ['alpha.com']), site('beta', ['shop.example.org']), site('gamma')] });
    expect(siteRows(renderStatusPage(m))).toHaveLength(3);
    const byId = siteRows(renderStatusPage(m, 'alph'));
    expect(byId).toHaveLength(1);
    expect(byId[0]).toContain('>alpha</a>');
    const byDomain = siteRows(renderStatusPage(m, '  shop.example  '));
    expect(byDomain).toHaveLength(1);
    expect(byDomain[0]).toContain('>beta</a>');
    expect(siteRows(renderStatusPage(m, 'ALPHA'))).toHaveLength(1);
    expect(siteRows(renderStatusPage(m, 'nothing-matches'))).toHaveLength(0);
  });

  it(`shows at most ${STATUS_HTML_ROW_LIMIT} rows and says how many it left out`, () => {
    const known = Array.from({ length: STATUS_HTML_ROW_LIMIT + 7 }, (_, i) => site(`site-${String(i).padStart(4, '0')}`));
    const html = renderStatusPage(model({ known }));
    expect(siteRows(html)).toHaveLength(STATUS_HTML_ROW_LIMIT);
    expect(html).toContain(`Showing ${STATUS_HTML_ROW_LIMIT} of ${STATUS_HTML_ROW_LIMIT + 7} sites`);
    // The note counts the filtered rows, and disappears once everything fits.
    expect(renderStatusPage(model({ known }), 'site-00')).not.toContain('Showing');
    expect(siteRows(renderStatusPage(model({ known }), 'site-00'))).toHaveLength(100);
  });

  it('leaves the "Showing N of M" note out when every row fits', () => {
    const known = Array.from({ length: STATUS_HTML_ROW_LIMIT }, (_, i) => site(`site-${i}`));
    const html = renderStatusPage(model({ known }));
    expect(siteRows(html)).toHaveLength(STATUS_HTML_ROW_LIMIT);
    expect(html).not.toContain('Showing');
  });

  it('shows the totals, worker state and per-site figures', () => {
    const html = renderStatusPage(
      model({
        known: [site('alpha', ['alpha.com'], ['old-alpha.com']), site('beta')],
        workers: [
          worker('0', { sites: [{ id: 'alpha', ok: true }], traffic1m: { windowSeconds: 60, sites: { alpha: { requests: 30, errors: 0 } } }, traffic5m: { windowSeconds: 300, sites: { alpha: { requests: 200, errors: 3 } } } }),
          worker('1', { draining: true }),
        ],
      }),
    );
    expect(html).toContain('<div class="card"><b>2</b>sites</div>');
    expect(html).toContain('<div class="card"><b>2</b>workers</div>');
    expect(html).toContain('<span class="bad">draining</span>');
    expect(html).toContain('<span class="good">serving</span>');
    expect(html).toContain('<td class="num">150.0 MiB</td>');
    const [alpha, beta] = siteRows(html);
    expect(alpha).toContain('alpha.com, old-alpha.com →');
    expect(alpha).toContain('cached on 1/2');
    expect(alpha).toContain('<td class="num">0.5</td>');
    expect(alpha).toContain('<td class="num bad">1.5%</td>');
    expect(alpha).toContain('<td class="num">200</td>');
    expect(beta).toContain('(platform subdomain only)');
    expect(beta).toContain('not loaded');
    expect(beta).toContain('not checked');
  });

  it('is a complete HTML document without scripts that refreshes itself', () => {
    const html = renderStatusPage(model({ known: [site('alpha')] }));
    expect(html.startsWith('<!doctype html>')).toBe(true);
    expect(html.trimEnd().endsWith('</html>')).toBe(true);
    expect(html).toContain('<meta http-equiv="refresh" content="10">');
    expect(html).toContain('<meta name="robots" content="noindex">');
    expect(html).not.toMatch(/<script/i);
  });
});
