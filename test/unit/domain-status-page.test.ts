import { describe, expect, it } from 'vitest';
import { renderStatusPage } from '../../astro-multi-tenant/server/ops/status-page.ts';
import { buildStatusModel } from '../../astro-multi-tenant/server/ops/status.ts';
import { withDomainStatus } from '../../astro-multi-tenant/server/tenant/domain-status.ts';
import { createDomainVerifier } from '../../astro-multi-tenant/server/tenant/domain-verifier.ts';
import { createMemoryDomainStateStore } from '../../astro-multi-tenant/server/tenant/domain-state.ts';
import { verificationToken } from '../../astro-multi-tenant/server/tenant/domain-token.ts';

const SECRET = 'status-page-secret-0123456789abcdefgh';
const NOW = Date.parse('2030-01-02T03:04:05.000Z');

function statusModel() {
  return buildStatusModel({
    now: new Date(NOW),
    platformDomain: 'example.test',
    known: [{ id: 'shop', domains: ['shop.example', 'gone.example'], aliases: ['www.shop.example'] }, { id: 'plain', domains: [], aliases: [] }],
    workers: [],
    unreachable: [],
    checked: new Map(),
  });
}

describe('the status page with DOMAIN_VERIFICATION=dns', () => {
  it('lists each custom domain and alias with its state, the TXT record to create and the last check; not-served ones first', async () => {
    let now = NOW - 3 * 86_400_000;
    const txt = new Map([['_amt-verify.shop.example', [verificationToken(SECRET, 'shop', 'shop.example')]], ['_amt-verify.gone.example', [verificationToken(SECRET, 'shop', 'gone.example')]]]);
    const verifier = createDomainVerifier({
      store: createMemoryDomainStateStore(),
      secret: SECRET,
      lookupTxt: async (name) => txt.get(name) ?? [],
      hosts: () => [['shop.example', 'shop'], ['gone.example', 'shop'], ['www.shop.example', 'shop']],
      now: () => now,
      recheckMs: 3_600_000,
      retryMs: 60_000,
      graceMs: 86_400_000,
    });
    await verifier.tick();
    txt.delete('_amt-verify.gone.example');
    now = NOW - 3_600_000;
    await verifier.tick();
    now = NOW;
    const model = await withDomainStatus(async () => statusModel(), verifier)();
    expect(model.domains?.map((d) => `${d.domain}:${d.state}`)).toEqual(['shop.example:verified', 'gone.example:failing', 'www.shop.example:pending']);
    const html = renderStatusPage(model);
    const section = html.slice(html.indexOf('<h2>Custom domains</h2>'), html.indexOf('<h2>Sites</h2>'));
    const rows = section.split('\n').filter((l) => l.startsWith('<tr><td>'));
    expect(rows.map((r) => /<td>([^<]+)<\/td><td class/.exec(r)?.[1])).toEqual(['www.shop.example', 'gone.example', 'shop.example']);
    expect(rows[1]).toContain('failing · served until 2030-01-03T02:04:05.000Z');
    expect(rows[0]).toContain(`<code>_amt-verify.www.shop.example</code> TXT <code>${verificationToken(SECRET, 'shop', 'www.shop.example')}</code>`);
    expect(rows[0]).toContain('no TXT record at _amt-verify.www.shop.example');
    expect(rows[2]).toContain('3600 s ago');
  });

  it('shows no domain section when verification is off', async () => {
    const model = await withDomainStatus(async () => statusModel(), undefined)();
    expect(model.domains).toBeUndefined();
    expect(renderStatusPage(model)).not.toContain('Custom domains');
  });
});
