import { describe, expect, it } from 'vitest';
import { renderStatusPage } from '../../astro-multi-tenant/server/ops/status-page.ts';
import { buildStatusModel } from '../../astro-multi-tenant/server/ops/status.ts';
import { withCertificateStatus } from '../../astro-multi-tenant/server/tls/certificate-status.ts';
import { certificateLine } from '../../astro-multi-tenant/server/tls/certificate-line.ts';
import { createCertificateManager } from '../../astro-multi-tenant/server/tls/certificate-manager.ts';
import { createMemoryCertificateStore } from '../../astro-multi-tenant/server/tls/certificate-store.ts';
import { afterFailure } from '../../astro-multi-tenant/server/tls/renewal-schedule.ts';

const DAY = 86_400_000;
const NOW = Date.parse('2030-01-02T03:04:05.000Z');

/** A manager over a store holding: one certificate for 60 more days, one for 10, one failed order. */
async function managerWithCertificates() {
  const store = createMemoryCertificateStore(() => NOW);
  await store.put('shop.example', { site: 'shop', serial: 'A1', notBefore: NOW - 30 * DAY, notAfter: NOW + 60 * DAY, failures: 0 }, { serial: 'A1', chainPem: 'c', keyPem: 'k' });
  await store.put('old.example', { site: 'shop', serial: 'B2', notBefore: NOW - 80 * DAY, notAfter: NOW + 10 * DAY, failures: 3, lastError: 'validation: connection refused', nextAttemptAt: NOW + 3600_000 }, { serial: 'B2', chainPem: 'c', keyPem: 'k' });
  await store.put('new.example', afterFailure(undefined, 'blog', { kind: 'rate_limited', message: 'rate limited by the CA: too many certificates' }, NOW), undefined);
  const manager = createCertificateManager({
    store,
    issuer: { issue: async () => { throw new Error('not in this test'); }, revoke: async () => {} },
    // Nothing due is ordered: every host is either valid or backing off.
    wanted: () => new Map([['shop.example', 'shop'], ['old.example', 'shop'], ['new.example', 'blog']]),
    renewBeforeMs: 30 * DAY,
    now: () => NOW,
  });
  await manager.tick();
  return { store, manager };
}

describe('certificates on the status page', () => {
  it('lists each certificate with its state and expiry, flagging and listing first those expiring within 14 days', async () => {
    const { manager } = await managerWithCertificates();
    const base = async () => buildStatusModel({ now: new Date(NOW), platformDomain: 'example.test', known: [{ id: 'shop', domains: ['shop.example', 'old.example'], aliases: [] }], workers: [], unreachable: [], checked: new Map() });
    const model = await withCertificateStatus(base, manager)();
    expect(model.certificates?.map((c) => [c.host, c.state, c.expiringSoon])).toEqual([
      ['old.example', 'failing', true],
      ['new.example', 'failed', false],
      ['shop.example', 'valid', false],
    ]);
    const html = renderStatusPage(model);
    expect(html).toContain('<h2>Certificates <span class="bad">1 expiring within 14 days</span></h2>');
    expect(html).toMatch(/<td>old\.example<\/td><td class="bad">failing \(3 failed\)<div class="muted">validation: connection refused · next attempt in 3600 s<\/div><\/td><td>2030-01-12 \(10 days\) <span class="bad">expires within 14 days<\/span><\/td>/);
    expect(html).toMatch(/<td>shop\.example<\/td><td class="good">valid<\/td><td>2030-03-03 \(60 days\)<\/td>/);
  });

  it('is absent when ACME is off', async () => {
    const base = async () => buildStatusModel({ now: new Date(NOW), platformDomain: 'example.test', known: [], workers: [], unreachable: [], checked: new Map() });
    const model = await withCertificateStatus(base, undefined)();
    expect(model.certificates).toBeUndefined();
    expect(renderStatusPage(model)).not.toContain('Certificates');
  });

  it('npm run sites -- domains prints a line per certificate: state, expiry, renewal date, or why it failed', async () => {
    const { store } = await managerWithCertificates();
    expect(certificateLine(await store.get('shop.example'), NOW, 30 * DAY)).toBe('certificate: valid, expires 2030-03-03 (60 days), renewal from 2030-02-01');
    expect(certificateLine(await store.get('new.example'), NOW, 30 * DAY)).toBe(`certificate: failed, 1 failed attempt — rate limited by the CA: too many certificates, next attempt ${new Date(NOW + 2 * 60_000).toISOString()}`);
    expect(certificateLine(undefined, NOW, 30 * DAY)).toBe('certificate: pending, ordered once the domain is served (verified) and a worker runs');
  });
});
