import { describe, it, expect } from 'vitest';
import { createAdminAccess } from '../../astro-multi-tenant/server/ops/admin-access.ts';
import { parseTrustedProxies } from '../../astro-multi-tenant/server/tenant/trusted-proxies.ts';

const TOKEN = 's3cret-token-0123456789';

/** ADMIN_ALLOW=loopback, nginx on 127.0.0.1 as the only trusted proxy. */
function access(options: { token?: string } = { token: TOKEN }) {
  return createAdminAccess({
    allow: parseTrustedProxies('127.0.0.1,::1', 'ADMIN_ALLOW'),
    token: options.token,
    proxies: parseTrustedProxies('127.0.0.1'),
  });
}

describe('createAdminAccess', () => {
  it('lets loopback in without a token', () => {
    const check = access();
    expect(check({}, '127.0.0.1')).toEqual({ ok: true });
    expect(check({}, '::1')).toEqual({ ok: true });
    expect(check({}, '::ffff:127.0.0.1')).toEqual({ ok: true });
  });

  it('lets in an allowed client that a trusted proxy forwarded', () => {
    const check = createAdminAccess({
      allow: parseTrustedProxies('10.1.0.0/16', 'ADMIN_ALLOW'),
      token: undefined,
      proxies: parseTrustedProxies('127.0.0.1'),
    });
    expect(check({ 'x-forwarded-for': '10.1.2.3' }, '127.0.0.1')).toEqual({ ok: true });
  });

  it('answers 403 to a peer outside the allow list, naming its address', () => {
    const decision = access()({}, '203.0.113.5');
    expect(decision).toMatchObject({ ok: false, status: 403 });
    expect(decision.ok === false && decision.reason).toContain('203.0.113.5');
    expect(decision.ok === false && decision.reason).toContain('ADMIN_ALLOW');
  });

  it('answers 403 to an outside client behind the trusted proxy, naming the client rather than the proxy', () => {
    const decision = access()({ 'x-forwarded-for': '198.51.100.7' }, '127.0.0.1');
    expect(decision).toMatchObject({ ok: false, status: 403 });
    expect(decision.ok === false && decision.reason).toContain('198.51.100.7');
    expect(decision.ok === false && decision.reason).not.toContain('127.0.0.1');
  });

  it('does not let an outside client pass as loopback by forging X-Forwarded-For', () => {
    const direct = access()({ 'x-forwarded-for': '127.0.0.1' }, '203.0.113.5');
    expect(direct).toMatchObject({ ok: false, status: 403 });
    expect(direct.ok === false && direct.reason).toContain('203.0.113.5');
    // Through the proxy, only the hop the proxy itself appended counts, not what the client prepended.
    const proxied = access()({ 'x-forwarded-for': '127.0.0.1, 198.51.100.7' }, '127.0.0.1');
    expect(proxied).toMatchObject({ ok: false, status: 403 });
    expect(proxied.ok === false && proxied.reason).toContain('198.51.100.7');
  });

  it('says "unknown" when there is no peer address at all', () => {
    const decision = access()({}, undefined);
    expect(decision).toMatchObject({ ok: false, status: 403 });
    expect(decision.ok === false && decision.reason).toContain('unknown');
  });

  it('opens to the right bearer token from any address', () => {
    const check = access();
    expect(check({ authorization: `Bearer ${TOKEN}` }, '203.0.113.5')).toEqual({ ok: true });
    expect(check({ authorization: `bearer ${TOKEN}` }, '198.51.100.7')).toEqual({ ok: true });
    expect(check({ authorization: `Bearer   ${TOKEN}  ` }, undefined)).toEqual({ ok: true });
    expect(check({ authorization: `Bearer ${TOKEN}`, 'x-forwarded-for': '198.51.100.7' }, '127.0.0.1')).toEqual({ ok: true });
  });

  it('answers 401 to a wrong bearer token, whatever its length', () => {
    const check = access();
    for (const wrong of ['nope', `${TOKEN}x`, TOKEN.slice(0, -1), TOKEN.toUpperCase(), '', 'x'.repeat(10_000)]) {
      const decision = check({ authorization: `Bearer ${wrong}` }, '203.0.113.5');
      expect(decision, wrong.slice(0, 20)).toEqual({ ok: false, status: 401, reason: 'the bearer token is not valid' });
    }
  });

  it('answers 401 to a wrong token even from an allowed address, rather than ignoring it', () => {
    expect(access()({ authorization: 'Bearer wrong' }, '127.0.0.1')).toMatchObject({ ok: false, status: 401 });
  });

  it('rejects every bearer token with 401 when no token is configured', () => {
    for (const token of [undefined, '']) {
      const check = access({ token });
      expect(check({ authorization: `Bearer ${TOKEN}` }, '203.0.113.5')).toMatchObject({ ok: false, status: 401 });
      expect(check({ authorization: 'Bearer ' }, '203.0.113.5')).toMatchObject({ ok: false, status: 401 });
      expect(check({ authorization: 'Bearer undefined' }, '203.0.113.5')).toMatchObject({ ok: false, status: 401 });
      // Address-based access still works.
      expect(check({}, '127.0.0.1')).toEqual({ ok: true });
    }
  });

  it('treats other authorization schemes as no token and falls back to the address', () => {
    const check = access();
    expect(check({ authorization: `Basic ${Buffer.from(`admin:${TOKEN}`).toString('base64')}` }, '203.0.113.5')).toMatchObject({ ok: false, status: 403 });
    expect(check({ authorization: `Token ${TOKEN}` }, '127.0.0.1')).toEqual({ ok: true });
  });

  describe('with a trusted range that an attacker can be inside (TRUSTED_PROXIES=127.0.0.0/8, a pod range)', () => {
    const podRange = (allow = '127.0.0.1,::1') =>
      createAdminAccess({ allow: parseTrustedProxies(allow, 'ADMIN_ALLOW'), token: TOKEN, proxies: parseTrustedProxies('127.0.0.0/8,::1') });

    it.each(['127.0.0.1', '::1', '::ffff:127.0.0.1', '0:0:0:0:0:0:0:1', '127.0.0.2', '127.255.255.254', '127.0.0.9, 127.0.0.1', ' 127.0.0.1 '])(
      'refuses a peer in the range that forwards the loopback address %j',
      (forwarded) => {
        for (const allow of ['127.0.0.1,::1', '127.0.0.0/8,::1', '0.0.0.0/0,::/0']) {
          const decision = podRange(allow)({ 'x-forwarded-for': forwarded }, '127.0.0.2');
          expect(decision, `ADMIN_ALLOW=${allow}`).toMatchObject({ ok: false, status: 403 });
          expect(decision.ok === false && decision.reason).toMatch(/loopback/);
        }
      },
    );

    it('still lets in the socket itself when it is loopback and in ADMIN_ALLOW', () => {
      expect(podRange()({}, '127.0.0.1')).toEqual({ ok: true });
      expect(podRange()({}, '::1')).toEqual({ ok: true });
      expect(podRange('127.0.0.2')({}, '127.0.0.2')).toEqual({ ok: true });
    });

    it('still lets in a forwarded client that is not loopback and is in ADMIN_ALLOW', () => {
      expect(podRange('10.1.0.0/16')({ 'x-forwarded-for': '10.1.2.3' }, '127.0.0.2')).toEqual({ ok: true });
    });

    it('names the right-most untrusted hop, not a forged left-most one', () => {
      const decision = podRange()({ 'x-forwarded-for': '127.0.0.1, 203.0.113.8, 127.0.0.3' }, '127.0.0.2');
      expect(decision).toMatchObject({ ok: false, status: 403 });
      expect(decision.ok === false && decision.reason).toContain('203.0.113.8');
    });

    it('still opens to the bearer token', () => {
      expect(podRange()({ authorization: `Bearer ${TOKEN}`, 'x-forwarded-for': '127.0.0.1' }, '127.0.0.2')).toEqual({ ok: true });
    });
  });
});
