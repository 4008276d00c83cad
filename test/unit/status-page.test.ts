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
    expect(alpha).toContain('<td class="num">0.5 req/s</td>');
    expect(alpha).toContain('<td class="num bad">1.5%</td>');
    expect(alpha).toContain('<td class="num">200</td>');
    expect(beta).toContain('(platform subdomain only)');
    expect(beta).toContain('not loaded');
    expect(beta).toContain('not checked');
  });

  it('shows IDN domains and aliases in Unicode, with the stored punycode form on hover', () => {
    const html = renderStatusPage(
      model({
        known: [
          site('bakery', ['sweet-crumbs.example', 'xn--bckerei-5wa.example'], ['www.xn--bckerei-5wa.example']),
          site('tokyo', ['xn--wgv71a.xn--wgv71a119e.example']),
          site('greek', ['xn--hxajbheg2az3al.xn--jxalpdlp.example']),
        ],
      }),
    );
    const row = (id: string) => siteRows(html).find((r) => r.includes(`>${id}</a>`))!;
    expect(row('bakery')).toContain('sweet-crumbs.example, <span title="xn--bckerei-5wa.example">bäckerei.example</span>, <span title="www.xn--bckerei-5wa.example">www.bäckerei.example</span> →');
    expect(row('tokyo')).toContain('<span title="xn--wgv71a.xn--wgv71a119e.example">日本.日本語.example</span>');
    expect(row('greek')).toContain('<span title="xn--hxajbheg2az3al.xn--jxalpdlp.example">παράδειγμα.δοκιμή.example</span>');
    // An ASCII domain needs no hover; links keep the ASCII form every client can resolve.
    expect(row('bakery')).not.toContain('title="sweet-crumbs.example"');
    expect(row('bakery')).toContain('<a href="//sweet-crumbs.example/">');
    expect(row('tokyo')).toContain('<a href="//xn--wgv71a.xn--wgv71a119e.example/">');
  });

  it('finds an IDN site by the Unicode or the punycode form of its domain', () => {
    const m = model({ known: [site('bakery', ['xn--bckerei-5wa.example']), site('other', ['other.example'])] });
    for (const filter of ['bäckerei', 'BÄCKEREI.example', 'xn--bckerei', 'bakery']) {
      const rows = siteRows(renderStatusPage(m, filter));
      expect(rows, filter).toHaveLength(1);
      expect(rows[0]).toContain('>bakery</a>');
    }
  });

  it('shows every size in the unit its magnitude calls for (B, KiB, MiB, GiB), the cache size too', () => {
    const cases: Array<[number, string]> = [
      [0, '0 B'],
      [812, '812 B'],
      [1023, '1023 B'],
      [1024, '1.0 KiB'],
      [3.4 * 1024, '3.4 KiB'],
      // Twenty site configs of ~2 KiB: the figure that used to read "0.0 MiB".
      [20 * 2048, '40.0 KiB'],
      [1024 * 1024 - 1, '1.0 MiB'],
      [1024 * 1024, '1.0 MiB'],
      [150 * 1024 * 1024, '150.0 MiB'],
      [1024 ** 3, '1.0 GiB'],
      [2.5 * 1024 ** 3, '2.5 GiB'],
      [2048 * 1024 ** 3, '2,048.0 GiB'],
    ];
    for (const [bytes, text] of cases) {
      const html = renderStatusPage(
        model({
          workers: [
            worker('0', {
              cache: { entries: 20, bytes, hits: 0, misses: 0, evictions: 0 },
              memory: { rssBytes: bytes, heapUsedBytes: bytes, heapTotalBytes: bytes, heapLimitBytes: bytes },
            }),
          ],
        }),
      );
      const row = html.split('\n').find((line) => line.startsWith('<tr><td>0</td>'))!;
      // RSS, heap used / limit and cache size, all in the same form.
      expect(row, String(bytes)).toContain(`<td class="num">${text}</td><td class="num">${text} / ${text}</td><td class="num">20</td><td class="num">${text}</td>`);
    }
  });

  it('prints every request rate (site rows, worker rows, total) alike: one decimal and "req/s"', () => {
    // requests in a 60 s window → the rate shown
    const cases: Array<[number, string]> = [
      [0, '0.0 req/s'],
      [1, '<0.1 req/s'],
      [3, '0.1 req/s'],
      [30, '0.5 req/s'],
      [60, '1.0 req/s'],
      [740, '12.3 req/s'],
      [74_070, '1,234.5 req/s'],
    ];
    for (const [requests, text] of cases) {
      const html = renderStatusPage(
        model({
          known: [site('alpha')],
          workers: [worker('0', { traffic1m: { windowSeconds: 60, sites: requests ? { alpha: { requests, errors: 0 } } : {} } })],
        }),
      );
      const [alpha] = siteRows(html);
      const workerRow = html.split('\n').find((line) => line.startsWith('<tr><td>0</td>'))!;
      expect(alpha, `site ${requests}`).toContain(`<td class="num">${text}</td>`);
      expect(workerRow.endsWith(`<td class="num">${text}</td></tr>`), `worker ${requests}: ${workerRow}`).toBe(true);
      expect(html, `total ${requests}`).toContain(`<div class="card"><b>${text}</b>requests (1 min)</div>`);
    }
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
