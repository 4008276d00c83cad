import { describe, it, expect } from 'vitest';
import { formatAuthority, normalizeHost } from '../../astro-multi-tenant/server/tenant/normalize-host.ts';
import { PlatformError } from '../../astro-multi-tenant/server/errors.ts';

function rejection(raw: string | undefined): PlatformError {
  try {
    normalizeHost(raw);
  } catch (error) {
    expect(error).toBeInstanceOf(PlatformError);
    return error as PlatformError;
  }
  throw new Error(`expected normalizeHost(${JSON.stringify(raw)}) to throw`);
}

describe('normalizeHost: the one form every host is keyed by', () => {
  it('lowercases the host name and keeps no port when none was sent', () => {
    expect(normalizeHost('Acme.EXAMPLE')).toEqual({ hostname: 'acme.example', port: undefined });
  });

  it('separates the port the client asked for from the host name', () => {
    expect(normalizeHost('Example.COM:8080')).toEqual({ hostname: 'example.com', port: 8080 });
  });

  it('treats a fully-qualified name with a trailing dot as the same site', () => {
    expect(normalizeHost('acme.example.')).toEqual({ hostname: 'acme.example', port: undefined });
    expect(normalizeHost('acme.example.:443')).toEqual({ hostname: 'acme.example', port: 443 });
  });

  it('ignores surrounding whitespace in the header value', () => {
    expect(normalizeHost('  acme.example  ').hostname).toBe('acme.example');
  });

  it('turns an internationalised domain name into its punycode form', () => {
    expect(normalizeHost('bäckerei.example').hostname).toBe('xn--bckerei-5wa.example');
    expect(normalizeHost('münchen.de').hostname).toBe('xn--mnchen-3ya.de');
  });

  it('maps upper-case IDN input and a trailing dot to the same punycode key', () => {
    expect(normalizeHost('BÄCKEREI.Example.').hostname).toBe('xn--bckerei-5wa.example');
  });

  it('accepts a host that is already punycode unchanged', () => {
    expect(normalizeHost('xn--bckerei-5wa.example').hostname).toBe('xn--bckerei-5wa.example');
  });

  it('understands a UTF-8 IDN that Node decoded as latin1 (what curl sends)', () => {
    const asNodeSeesIt = Buffer.from('bäckerei.example:4321', 'utf8').toString('latin1');
    expect(asNodeSeesIt).not.toBe('bäckerei.example:4321');
    expect(normalizeHost(asNodeSeesIt)).toEqual({ hostname: 'xn--bckerei-5wa.example', port: 4321 });
  });

  it('accepts IPv4 literals, with or without a port', () => {
    expect(normalizeHost('127.0.0.1')).toEqual({ hostname: '127.0.0.1', port: undefined });
    expect(normalizeHost('192.168.1.20:80')).toEqual({ hostname: '192.168.1.20', port: 80 });
  });

  it('keeps IPv6 literals bracketed and lowercased, with or without a port', () => {
    expect(normalizeHost('[::1]')).toEqual({ hostname: '[::1]', port: undefined });
    expect(normalizeHost('[::1]:443')).toEqual({ hostname: '[::1]', port: 443 });
    expect(normalizeHost('[2001:DB8::1]')).toEqual({ hostname: '[2001:db8::1]', port: undefined });
    expect(normalizeHost('[::ffff:192.0.2.1]:80')).toEqual({ hostname: '[::ffff:192.0.2.1]', port: 80 });
    expect(normalizeHost('[::]')).toEqual({ hostname: '[::]', port: undefined });
  });

  it('accepts the longest legal label (63 characters) and the longest legal name (253 characters)', () => {
    const label63 = 'a'.repeat(63);
    expect(normalizeHost(`${label63}.example`).hostname).toBe(`${label63}.example`);
    const name253 = [label63, label63, label63, 'b'.repeat(61)].join('.');
    expect(name253).toHaveLength(253);
    expect(normalizeHost(name253).hostname).toBe(name253);
  });

  it('accepts the full port range 1..65535', () => {
    expect(normalizeHost('a.example:1').port).toBe(1);
    expect(normalizeHost('a.example:65535').port).toBe(65535);
  });
});

describe('normalizeHost: rejects anything that is not a plausible host', () => {
  it.each([undefined, '', '   '])('reports a missing Host header (%j) as HOST_MISSING', (raw) => {
    const error = rejection(raw);
    expect(error.code).toBe('HOST_MISSING');
    expect(error.input).toBe(raw);
  });

  it.each([
    ['inner space', 'acme example'],
    ['userinfo', 'user@acme.example'],
    ['a slash', 'acme.example/evil'],
    ['a backslash', 'acme.example\\evil'],
    ['a query', 'acme.example?x'],
    ['a fragment', 'acme.example#x'],
    ['percent-encoding', 'acme%2eexample'],
    ['a comma (two hosts)', 'a.example,b.example'],
    ['a quote', 'acme.example"'],
    ['angle brackets', '<acme.example>'],
  ])('rejects a host with %s as HOST_MALFORMED, quoting the input', (_what, raw) => {
    const error = rejection(raw);
    expect(error.code).toBe('HOST_MALFORMED');
    expect(error.input).toBe(raw);
  });

  it.each([
    ['zero', 'acme.example:0'],
    ['too large', 'acme.example:65536'],
    ['non-numeric', 'acme.example:http'],
    ['longer than five digits', 'acme.example:000080'],
    ['negative', 'acme.example:-1'],
  ])('rejects a %s port', (_what, raw) => {
    const error = rejection(raw);
    expect(error.code).toBe('HOST_MALFORMED');
    expect(error.input).toBe(raw);
    expect(error.message).toMatch(/port/);
  });

  it.each(['acme.example:', '[::1]:', 'ACME.example.:'])('reads an empty port (%s) as no port, as RFC 3986 §3.2.3 allows', (raw) => {
    expect(normalizeHost(raw).port).toBeUndefined();
  });

  it('rejects two port separators', () => {
    expect(rejection('acme.example:80:81').code).toBe('HOST_MALFORMED');
  });

  it.each([
    ['an empty label', 'acme..example'],
    ['a leading hyphen', '-acme.example'],
    ['a trailing hyphen', 'acme-.example'],
    ['an underscore', 'my_site.example'],
    ['a wildcard', '*.example'],
    ['a label longer than 63 characters', `${'a'.repeat(64)}.example`],
    ['only a dot', '.'],
  ])('rejects a name with %s', (_what, raw) => {
    const error = rejection(raw);
    expect(error.code).toBe('HOST_MALFORMED');
    expect(error.input).toBe(raw);
  });

  it('rejects a name longer than 253 characters even when every label is legal', () => {
    const raw = `${'a'.repeat(60)}.`.repeat(5) + 'com';
    const error = rejection(raw);
    expect(error.code).toBe('HOST_MALFORMED');
    expect(error.message).toMatch(/253/);
    expect(error.input).toBe(raw);
  });

  it('rejects an absurdly long header value without parsing it', () => {
    const raw = 'a'.repeat(2000);
    expect(rejection(raw).code).toBe('HOST_MALFORMED');
  });

  it('rejects an IPv4 literal with an octet above 255', () => {
    const error = rejection('256.1.1.1');
    expect(error.code).toBe('HOST_MALFORMED');
    expect(error.message).toMatch(/IPv4/);
  });

  it.each([
    ['unclosed', '[::1'],
    ['followed by junk', '[::1]x'],
    ['not hexadecimal', '[zz::1]'],
    ['without any colon', '[1234]'],
    ['made of colons only', '[:::]'],
    ['compressed twice (two "::")', '[1::2::3]'],
    ['nine groups long', '[1:2:3:4:5:6:7:8:9]'],
    ['overlong in one group', '[12345::1]'],
    ['ending in a broken IPv4 part', '[::ffff:1.2.3]'],
    ['empty', '[]'],
  ])('rejects an IPv6 literal that is %s', (_what, raw) => {
    const error = rejection(raw);
    expect(error.code).toBe('HOST_MALFORMED');
    expect(error.input).toBe(raw);
  });

  it('rejects an unbracketed IPv6 address (its colons cannot be told from a port)', () => {
    expect(rejection('2001:db8::1').code).toBe('HOST_MALFORMED');
  });
});

describe('formatAuthority', () => {
  it('writes host:port only when a port was named', () => {
    expect(formatAuthority('acme.example', undefined)).toBe('acme.example');
    expect(formatAuthority('acme.example', 8080)).toBe('acme.example:8080');
    expect(formatAuthority('[::1]', 4321)).toBe('[::1]:4321');
  });

  it('answers a repeated Host the same way every time, and keeps rejecting a bad one', () => {
    for (let i = 0; i < 3; i++) {
      expect(normalizeHost('Blog.Example.COM.:8080')).toEqual({ hostname: 'blog.example.com', port: 8080 });
      expect(() => normalizeHost('bad host')).toThrow(/characters a host name cannot have/);
    }
    // The remembered answer cannot be changed by a caller.
    expect(Object.isFrozen(normalizeHost('Blog.Example.COM.:8080'))).toBe(true);
  });
});
