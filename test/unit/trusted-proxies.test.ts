import { describe, it, expect } from 'vitest';
import { clientAddress, effectiveOrigin, isLoopback, parseTrustedProxies, resolveClient } from '../../astro-multi-tenant/server/tenant/trusted-proxies.ts';
import { PlatformError } from '../../astro-multi-tenant/server/errors.ts';

function parseError(spec: string, field?: string): PlatformError {
  try {
    parseTrustedProxies(spec, field);
  } catch (error) {
    expect(error).toBeInstanceOf(PlatformError);
    return error as PlatformError;
  }
  throw new Error(`expected ${JSON.stringify(spec)} to be rejected`);
}

describe('parseTrustedProxies', () => {
  it('trusts a single IPv4 address and nothing next to it', () => {
    const proxies = parseTrustedProxies('127.0.0.1');
    expect(proxies.trusts('127.0.0.1')).toBe(true);
    expect(proxies.trusts('127.0.0.2')).toBe(false);
  });

  it('trusts a single IPv6 address in any spelling', () => {
    const proxies = parseTrustedProxies('::1');
    expect(proxies.trusts('::1')).toBe(true);
    expect(proxies.trusts('0:0:0:0:0:0:0:1')).toBe(true);
    expect(proxies.trusts('::2')).toBe(false);
  });

  it('trusts every address inside an IPv4 CIDR and none outside it', () => {
    const proxies = parseTrustedProxies('10.0.0.0/8,192.168.1.0/24');
    expect(proxies.trusts('10.0.0.1')).toBe(true);
    expect(proxies.trusts('10.255.255.255')).toBe(true);
    expect(proxies.trusts('192.168.1.77')).toBe(true);
    expect(proxies.trusts('11.0.0.1')).toBe(false);
    expect(proxies.trusts('192.168.2.1')).toBe(false);
  });

  it('trusts every address inside an IPv6 CIDR and none outside it', () => {
    const proxies = parseTrustedProxies('fd00::/8');
    expect(proxies.trusts('fd12:3456::1')).toBe(true);
    expect(proxies.trusts('fe80::1')).toBe(false);
    expect(proxies.trusts('::1')).toBe(false);
  });

  it('recognises an IPv4 peer reported as an IPv4-mapped IPv6 address (dual-stack sockets)', () => {
    const proxies = parseTrustedProxies('10.0.0.0/8,127.0.0.1');
    expect(proxies.trusts('::ffff:10.2.3.4')).toBe(true);
    expect(proxies.trusts('::ffff:127.0.0.1')).toBe(true);
    expect(proxies.trusts('::ffff:11.2.3.4')).toBe(false);
  });

  it('ignores blanks and surrounding whitespace in the list', () => {
    const proxies = parseTrustedProxies(' 1.2.3.4 , ::1,, ');
    expect(proxies.description).toBe('1.2.3.4,::1');
    expect(proxies.trusts('1.2.3.4')).toBe(true);
    expect(proxies.trusts('::1')).toBe(true);
  });

  it.each([undefined, '', ' , '])('trusts nobody when the list is empty (%j)', (spec) => {
    const proxies = parseTrustedProxies(spec);
    expect(proxies.description).toBe('(none)');
    expect(proxies.trusts('127.0.0.1')).toBe(false);
    expect(proxies.trusts('::1')).toBe(false);
  });

  it('never trusts a peer whose address is unknown or not an IP', () => {
    const proxies = parseTrustedProxies('0.0.0.0/0');
    expect(proxies.trusts('8.8.8.8')).toBe(true);
    expect(proxies.trusts(undefined)).toBe(false);
    expect(proxies.trusts('')).toBe(false);
    expect(proxies.trusts('not-an-ip')).toBe(false);
  });

  it.each(['proxy.internal', '10.0.0', '300.1.1.1', '10.0.0.0/33', '10.0.0.0/', '10.0.0.0/-1', '10.0.0.0/x', '::/129'])(
    'rejects %j with CONFIG_INVALID naming the variable and the entry',
    (entry) => {
      const error = parseError(`127.0.0.1,${entry}`);
      expect(error.code).toBe('CONFIG_INVALID');
      expect(error.message).toContain('TRUSTED_PROXIES');
      expect(error.message).toContain(`"${entry}"`);
      expect(error.input).toBe(entry);
    },
  );

  it('names the caller-chosen variable in its errors', () => {
    expect(parseError('nope', 'EDGE_PROXIES').message).toMatch(/^EDGE_PROXIES: /);
  });

  it.each(['10.0.0.0/8/9', '::/0/1', '1.2.3.4//8'])('rejects %j (more than one slash) instead of silently trusting a subnet', (entry) => {
    const error = parseError(`127.0.0.1,${entry}`, 'EDGE_PROXIES');
    expect(error.code).toBe('CONFIG_INVALID');
    expect(error.message).toBe(`EDGE_PROXIES: "${entry}" has more than one "/"`);
    expect(error.input).toBe(entry);
  });
});

describe('effectiveOrigin', () => {
  const proxies = parseTrustedProxies('10.0.0.0/8,::1');

  it('ignores X-Forwarded-Host and X-Forwarded-Proto from an untrusted peer', () => {
    const origin = effectiveOrigin(
      { host: 'acme.example', 'x-forwarded-host': 'victim.example', 'x-forwarded-proto': 'https' },
      '203.0.113.9',
      false,
      proxies,
    );
    expect(origin).toEqual({ rawHost: 'acme.example', proto: 'http', forwarded: false });
  });

  it('ignores forwarding headers from an IPv4-mapped address outside the trusted ranges', () => {
    const origin = effectiveOrigin({ host: 'acme.example', 'x-forwarded-host': 'victim.example' }, '::ffff:203.0.113.9', false, proxies);
    expect(origin.rawHost).toBe('acme.example');
    expect(origin.forwarded).toBe(false);
  });

  it('uses X-Forwarded-Host and X-Forwarded-Proto from a trusted proxy', () => {
    const origin = effectiveOrigin(
      { host: 'internal:4321', 'x-forwarded-host': 'acme.example', 'x-forwarded-proto': 'HTTPS' },
      '::ffff:10.1.2.3',
      false,
      proxies,
    );
    expect(origin).toEqual({ rawHost: 'acme.example', proto: 'https', forwarded: true });
  });

  it('takes the first value when a forwarding header lists several', () => {
    const origin = effectiveOrigin(
      { host: 'internal', 'x-forwarded-host': 'acme.example, proxy.internal', 'x-forwarded-proto': 'https,http' },
      '10.0.0.5',
      false,
      proxies,
    );
    expect(origin).toEqual({ rawHost: 'acme.example', proto: 'https', forwarded: true });
  });

  it('takes the first header when a forwarding header is repeated', () => {
    const origin = effectiveOrigin({ host: 'internal', 'x-forwarded-host': ['acme.example', 'other.example'] }, '::1', false, proxies);
    expect(origin.rawHost).toBe('acme.example');
    expect(origin.forwarded).toBe(true);
  });

  it('falls back to the Host header when a trusted proxy sends no X-Forwarded-Host', () => {
    expect(effectiveOrigin({ host: 'acme.example' }, '10.0.0.5', true, proxies)).toEqual({ rawHost: 'acme.example', proto: 'https', forwarded: false });
    expect(effectiveOrigin({ host: 'acme.example', 'x-forwarded-host': '' }, '10.0.0.5', false, proxies).forwarded).toBe(false);
  });

  it('keeps the connection\'s own scheme when X-Forwarded-Proto is not http or https', () => {
    expect(effectiveOrigin({ host: 'a.example', 'x-forwarded-proto': 'gopher' }, '10.0.0.5', true, proxies).proto).toBe('https');
    expect(effectiveOrigin({ host: 'a.example', 'x-forwarded-proto': 'gopher' }, '10.0.0.5', false, proxies).proto).toBe('http');
  });

  it('reports the scheme of the connection itself for direct visitors', () => {
    expect(effectiveOrigin({ host: 'a.example' }, '203.0.113.9', true, proxies).proto).toBe('https');
    expect(effectiveOrigin({ host: 'a.example' }, '203.0.113.9', false, proxies).proto).toBe('http');
  });

  it('reports no host when the request has none', () => {
    expect(effectiveOrigin({}, '203.0.113.9', false, proxies).rawHost).toBeUndefined();
  });
});

describe('clientAddress', () => {
  const proxies = parseTrustedProxies('10.0.0.0/8,::1');

  it('is the peer itself when the peer is not a trusted proxy, whatever X-Forwarded-For claims', () => {
    expect(clientAddress({ 'x-forwarded-for': '1.1.1.1' }, '203.0.113.9', proxies)).toBe('203.0.113.9');
  });

  it('is the right-most untrusted hop behind a trusted proxy, not a forged left-most one', () => {
    const headers = { 'x-forwarded-for': '6.6.6.6, 198.51.100.7, 10.0.0.2' };
    expect(clientAddress(headers, '10.0.0.1', proxies)).toBe('198.51.100.7');
  });

  it('reads hops across repeated X-Forwarded-For headers', () => {
    expect(clientAddress({ 'x-forwarded-for': ['6.6.6.6', '198.51.100.7'] }, '::1', proxies)).toBe('198.51.100.7');
  });

  it('stops at a hop that is not an IP address rather than skipping past it', () => {
    expect(clientAddress({ 'x-forwarded-for': '198.51.100.7, unknown, 10.0.0.3' }, '10.0.0.1', proxies)).toBe('unknown');
  });

  it('falls back to the peer when a trusted proxy sends no X-Forwarded-For', () => {
    expect(clientAddress({}, '10.0.0.1', proxies)).toBe('10.0.0.1');
  });

  it('is the left-most hop when every hop is a trusted proxy', () => {
    expect(clientAddress({ 'x-forwarded-for': '10.0.0.9, 10.0.0.8' }, '10.0.0.1', proxies)).toBe('10.0.0.9');
  });
});

describe('resolveClient', () => {
  const proxies = parseTrustedProxies('10.0.0.0/8,::1');

  it('says the address came from the socket for an untrusted peer, whatever it forwards', () => {
    expect(resolveClient({ 'x-forwarded-for': '127.0.0.1' }, '203.0.113.9', proxies)).toEqual({ address: '203.0.113.9', forwarded: false });
  });

  it('says the address came from the socket for a trusted peer that forwards nothing', () => {
    expect(resolveClient({}, '10.0.0.1', proxies)).toEqual({ address: '10.0.0.1', forwarded: false });
    expect(resolveClient({ 'x-forwarded-for': ' , ' }, '10.0.0.1', proxies)).toEqual({ address: '10.0.0.1', forwarded: false });
  });

  it('says the address was forwarded when it came from X-Forwarded-For', () => {
    expect(resolveClient({ 'x-forwarded-for': '6.6.6.6, 198.51.100.7' }, '10.0.0.1', proxies)).toEqual({ address: '198.51.100.7', forwarded: true });
    expect(resolveClient({ 'x-forwarded-for': '10.0.0.9, 10.0.0.8' }, '10.0.0.1', proxies)).toEqual({ address: '10.0.0.9', forwarded: true });
    expect(resolveClient({ 'x-forwarded-for': 'unknown' }, '::1', proxies)).toEqual({ address: 'unknown', forwarded: true });
  });
});

describe('isLoopback', () => {
  it.each(['127.0.0.1', '127.0.0.2', '127.255.255.255', '::1', '0:0:0:0:0:0:0:1', '::ffff:127.0.0.1', '::FFFF:127.1.2.3'])('is true for %j', (address) => {
    expect(isLoopback(address)).toBe(true);
  });

  it.each(['128.0.0.1', '10.0.0.1', '::2', '::', '0.0.0.0', '::ffff:10.0.0.1', 'fe80::1', 'localhost', '', undefined])('is false for %j', (address) => {
    expect(isLoopback(address)).toBe(false);
  });
});
