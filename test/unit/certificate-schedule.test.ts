import { describe, expect, it } from 'vitest';
import { afterFailure, afterSuccess, backoffMs, certificateState, isBackingOff, needsCertificate, nextEventAt, renewAt, BACKOFF_MAX_MS } from '../../astro-multi-tenant/server/tls/renewal-schedule.ts';
import { certificateNames, isIssuableName } from '../../astro-multi-tenant/server/tls/certificate-names.ts';
import { classifyAcmeFailure, parseRetryAfter } from '../../astro-multi-tenant/server/tls/acme-problem.ts';

const DAY = 86_400_000;
const MIN = 60_000;
const RENEW = 30 * DAY;

describe('which names get certificates', () => {
  const hosts: Array<[string, string]> = [
    ['shop.test', 'shop'],
    ['www.shop.test', 'shop'],
    ['shop.sites.test', 'shop'],
    ['deep.under.sites.test', 'shop'],
    ['sites.test', 'shop'],
    ['blog.example', 'blog'],
    ['intranet', 'blog'],
    ['app.localhost', 'blog'],
    ['*.wild.example', 'blog'],
  ];

  it('with DOMAIN_VERIFICATION=off: every custom domain and alias listed, never a platform subdomain, the platform domain, a single label, a loopback name or a wildcard', () => {
    expect([...certificateNames({ hosts, platformDomain: 'sites.test' })]).toEqual([['shop.test', 'shop'], ['www.shop.test', 'shop'], ['blog.example', 'blog']]);
  });

  it('with DOMAIN_VERIFICATION=dns: only the names served for their site now', () => {
    const served = new Set(['shop:shop.test']);
    expect([...certificateNames({ hosts, platformDomain: 'sites.test', isServed: (site, host) => served.has(`${site}:${host}`) })]).toEqual([['shop.test', 'shop']]);
  });

  it('refuses a name too long to be a file in CERTS_DIR (<host>.crt over 255 bytes), and takes one just short of it', () => {
    const name = (total: number) => `${'a'.repeat(63)}.${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(total - 192)}`;
    expect(name(251).length).toBe(251);
    expect(isIssuableName(name(251), 'sites.test')).toBe(true);
    expect(isIssuableName(name(252), 'sites.test')).toBe(false);
    expect(isIssuableName(name(253), 'sites.test')).toBe(false);
  });

  it('refuses IP literals and malformed labels', () => {
    for (const name of ['127.0.0.1', '0x7f.1', 'a..b', '-bad.example', 'bad-.example', `${'a'.repeat(64)}.example`, 'UPPER.example']) expect(isIssuableName(name, 'sites.test'), name).toBe(false);
    expect(isIssuableName('xn--bckerei-5wa.example', 'sites.test')).toBe(true);
  });
});

describe('the renewal schedule', () => {
  it('renews a 90-day certificate 30 days before it expires', () => {
    expect(renewAt(0, 90 * DAY, RENEW)).toBe(60 * DAY);
  });

  it('renews a short-lived certificate two thirds into its life, not continuously', () => {
    expect(renewAt(0, 6 * DAY, RENEW)).toBe(4 * DAY);
    expect(renewAt(1_000, 16_000, RENEW)).toBe(11_000);
  });

  it('says when a host needs a certificate: none yet, revoked, expired, or inside the renewal window', () => {
    const cert = afterSuccess('shop', { serial: 'A', notBefore: 0, notAfter: 90 * DAY }, 0);
    expect(needsCertificate(undefined, 0, RENEW)).toBe(true);
    expect(needsCertificate(cert, 59 * DAY, RENEW)).toBe(false);
    expect(needsCertificate(cert, 60 * DAY, RENEW)).toBe(true);
    expect(needsCertificate({ ...cert, revoked: true }, 1 * DAY, RENEW)).toBe(true);
    expect(certificateState(cert, 1 * DAY, RENEW)).toBe('valid');
    expect(certificateState(cert, 61 * DAY, RENEW)).toBe('due');
    expect(certificateState(cert, 91 * DAY, RENEW)).toBe('expired');
    expect(certificateState({ ...cert, revoked: true }, 1 * DAY, RENEW)).toBe('revoked');
    expect(certificateState(undefined, 0, RENEW)).toBe('pending');
  });

  it('backs off 2, 4, 8 … minutes after failures in a row, never more than a day', () => {
    expect([1, 2, 3, 4].map(backoffMs)).toEqual([2 * MIN, 4 * MIN, 8 * MIN, 16 * MIN]);
    expect(backoffMs(40)).toBe(BACKOFF_MAX_MS);
  });

  it('a failure keeps the certificate it had, counts, and holds the next attempt back by backoff or the CA\'s Retry-After, whichever is later', () => {
    const cert = afterSuccess('shop', { serial: 'A', notBefore: 0, notAfter: 90 * DAY }, 0);
    const once = afterFailure(cert, 'shop', { kind: 'validation', message: 'connection refused' }, 61 * DAY);
    expect(once).toMatchObject({ serial: 'A', notAfter: 90 * DAY, failures: 1, lastErrorKind: 'validation', nextAttemptAt: 61 * DAY + 2 * MIN });
    expect(certificateState(once, 61 * DAY, RENEW)).toBe('failing');
    expect(isBackingOff(once, 61 * DAY + MIN)).toBe(true);
    expect(isBackingOff(once, 61 * DAY + 2 * MIN)).toBe(false);
    const limited = afterFailure(once, 'shop', { kind: 'rate_limited', message: 'too many', retryAfterMs: 3 * 3600_000 }, 62 * DAY);
    expect(limited.failures).toBe(2);
    expect(limited.nextAttemptAt).toBe(62 * DAY + 3 * 3600_000);
    expect(certificateState(afterFailure(undefined, 'shop', { kind: 'ca', message: 'x' }, 0), 0, RENEW)).toBe('failed');
    // Success clears the failure count.
    expect(afterSuccess('shop', { serial: 'B', notBefore: 62 * DAY, notAfter: 152 * DAY }, 62 * DAY).failures).toBe(0);
  });

  it('wakes at the earliest renewal or retry still ahead', () => {
    const a = afterSuccess('a', { serial: 'A', notBefore: 0, notAfter: 90 * DAY }, 0);
    const b = afterFailure(undefined, 'b', { kind: 'network', message: 'x' }, 10 * DAY);
    expect(nextEventAt([a, b], 10 * DAY, RENEW)).toBe(10 * DAY + 2 * MIN);
    expect(nextEventAt([a], 10 * DAY, RENEW)).toBe(60 * DAY);
    expect(nextEventAt([a], 70 * DAY, RENEW)).toBeUndefined();
  });
});

describe('ACME failures, classified', () => {
  it('a 429 or rateLimited problem is a rate limit carrying Retry-After', () => {
    expect(classifyAcmeFailure(new Error('Too many'), { status: 429, type: 'urn:ietf:params:acme:error:rateLimited', detail: 'too many certificates', retryAfterMs: 3_600_000 })).toEqual({ kind: 'rate_limited', message: 'rate limited by the CA: too many certificates', retryAfterMs: 3_600_000, type: 'rateLimited' });
    expect(classifyAcmeFailure(new Error('x'), { status: 400, type: 'urn:ietf:params:acme:error:rateLimited' }).kind).toBe('rate_limited');
  });

  it('a challenge the CA could not confirm is a validation failure; CA errors and unreachable CAs are told apart', () => {
    expect(classifyAcmeFailure(new Error('x'), { status: 200, type: 'urn:ietf:params:acme:error:connection', detail: 'dial tcp: refused' }).kind).toBe('validation');
    expect(classifyAcmeFailure(new Error('x'), { status: 503, type: 'urn:ietf:params:acme:error:serverInternal' }).kind).toBe('ca');
    expect(classifyAcmeFailure(new Error('x'), { status: 400, type: 'urn:ietf:params:acme:error:malformed' }).kind).toBe('ca');
    expect(classifyAcmeFailure(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }), undefined).kind).toBe('network');
    expect(classifyAcmeFailure(new Error('boom'), undefined)).toEqual({ kind: 'other', message: 'boom' });
    // The problem type travels along: an account the CA forgot is registered again (acme-issuer.ts).
    expect(classifyAcmeFailure(new Error('x'), { status: 400, type: 'urn:ietf:params:acme:error:accountDoesNotExist' })).toMatchObject({ kind: 'ca', type: 'accountDoesNotExist' });
  });

  it('reads Retry-After as seconds or an HTTP date', () => {
    expect(parseRetryAfter('120', 0)).toBe(120_000);
    expect(parseRetryAfter('Thu, 01 Jan 1970 00:01:00 GMT', 0)).toBe(60_000);
    expect(parseRetryAfter('soon', 0)).toBeUndefined();
    expect(parseRetryAfter(undefined, 0)).toBeUndefined();
  });
});
