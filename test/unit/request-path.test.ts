import { describe, it, expect } from 'vitest';
import { isSafeSegment, parseRequestTarget, splitAbsoluteForm } from '../../astro-multi-tenant/server/http/request-path.ts';
import { PlatformError } from '../../astro-multi-tenant/server/errors.ts';

function refusal(url: string | undefined): PlatformError {
  try {
    parseRequestTarget(url);
  } catch (error) {
    expect(error).toBeInstanceOf(PlatformError);
    return error as PlatformError;
  }
  throw new Error(`expected ${JSON.stringify(url)} to be refused`);
}

describe('parseRequestTarget: ordinary paths', () => {
  it('maps / to no segments', () => {
    expect(parseRequestTarget('/')).toEqual({ segments: [], pathname: '/', search: '', trailingSlash: false });
  });

  it('treats a missing URL as /', () => {
    expect(parseRequestTarget(undefined).segments).toEqual([]);
  });

  it('splits a nested path into its segments', () => {
    expect(parseRequestTarget('/posts/2026/hello-world')).toEqual({
      segments: ['posts', '2026', 'hello-world'],
      pathname: '/posts/2026/hello-world',
      search: '',
      trailingSlash: false,
    });
  });

  it('keeps the query string apart, including its "?"', () => {
    const target = parseRequestTarget('/search?q=a/../b&x=%2e%2e');
    expect(target.segments).toEqual(['search']);
    expect(target.search).toBe('?q=a/../b&x=%2e%2e');
  });

  it('notes a trailing slash without producing an empty segment', () => {
    const target = parseRequestTarget('/guide/?ref=nav');
    expect(target.segments).toEqual(['guide']);
    expect(target.trailingSlash).toBe(true);
    expect(target.pathname).toBe('/guide/');
    expect(target.search).toBe('?ref=nav');
  });

  it('decodes percent-encoded UTF-8 names once', () => {
    const target = parseRequestTarget('/caf%C3%A9/a%20b.png');
    expect(target.segments).toEqual(['café', 'a b.png']);
    expect(target.pathname).toBe('/caf%C3%A9/a%20b.png');
  });

  it('accepts file names with dots that are not leading', () => {
    expect(parseRequestTarget('/assets/logo.v2.svg').segments).toEqual(['assets', 'logo.v2.svg']);
  });

  it('drops a fragment from the path', () => {
    expect(parseRequestTarget('/about#team').segments).toEqual(['about']);
  });

  it('decodes a double-encoded traversal only once, leaving a literal name that cannot climb out', () => {
    const target = parseRequestTarget('/%252e%252e/%252fetc');
    expect(target.segments).toEqual(['%2e%2e', '%2fetc']);
    expect(target.segments).not.toContain('..');
    expect(target.segments.every((s) => !s.includes('/'))).toBe(true);
  });
});

describe('parseRequestTarget: paths that could leave the site folder', () => {
  it.each([
    ['a dot-dot segment', '/a/../b'],
    ['a leading dot-dot', '/../etc/passwd'],
    ['an encoded dot-dot', '/%2e%2e/etc/passwd'],
    ['an upper-case encoded dot-dot', '/%2E%2E/etc/passwd'],
    ['a half-encoded dot-dot', '/.%2e/etc/passwd'],
    ['a single-dot segment', '/./about'],
    ['an encoded slash', '/a%2fb'],
    ['an encoded slash hiding a traversal', '/..%2fetc%2fpasswd'],
    ['a raw backslash', '/a\\..\\b'],
    ['an encoded backslash', '/..%5c..%5cwindows'],
    ['a NUL byte', '/%00'],
    ['a NUL byte before an extension', '/secret.md%00.png'],
    ['another control character', '/a%0ab'],
    ['a colon (drive letter / stream)', '/c%3a/windows'],
    ['a hidden file', '/.env'],
    ['a hidden folder', '/.git/config'],
    ['an empty segment', '/a//b'],
  ])('refuses %s as PATH_FORBIDDEN (a 404, not a file read)', (_what, url) => {
    const error = refusal(url);
    expect(error.code).toBe('PATH_FORBIDDEN');
    expect(error.input).toBe(url);
  });

  it('refuses a scheme-relative target (//host/…) as not origin-relative (a 404: it names nothing here)', () => {
    const error = refusal('//evil.example/x');
    expect(error.code).toBe('PATH_FORBIDDEN');
    expect(error.message).toMatch(/origin-relative/);
  });

  it.each([
    ['absolute-form left as it is', 'http://evil.example/x'],
    ['asterisk-form', '*'],
    ['another scheme', 'ftp://docs.example/'],
    ['empty', ''],
    ['relative', 'about'],
  ])('refuses a %s request target as malformed (a 400)', (_what, url) => {
    const error = refusal(url);
    expect(error.code).toBe('PATH_MALFORMED');
    expect(error.message).toMatch(/starting with \//);
  });

  it.each(['/%', '/%zz', '/%E0%A4%A', '/%C3'])('reports broken percent-encoding %j as PATH_MALFORMED (a 400)', (url) => {
    expect(refusal(url).code).toBe('PATH_MALFORMED');
  });

  it('refuses a target longer than 2048 characters as PATH_TOO_LONG (a 414), quoting only its start', () => {
    const url = '/' + 'a'.repeat(2100);
    const error = refusal(url);
    expect(error.code).toBe('PATH_TOO_LONG');
    expect(error.status).toBe(414);
    expect(error.input).toHaveLength(100);
  });

  it('refuses a path deeper than 32 segments', () => {
    expect(parseRequestTarget('/' + Array(32).fill('a').join('/')).segments).toHaveLength(32);
    expect(refusal('/' + Array(33).fill('a').join('/')).code).toBe('PATH_FORBIDDEN');
  });
});

describe('isSafeSegment', () => {
  it.each(['index', 'logo.svg', 'café', 'a b', 'x..y'])('allows %j', (segment) => {
    expect(isSafeSegment(segment)).toBe(true);
  });

  it.each(['', '.', '..', '.hidden', 'a/b', 'a\\b', 'a\u0000b', 'a\u007fb', 'c:'])('refuses %j', (segment) => {
    expect(isSafeSegment(segment)).toBe(false);
  });
});

describe('/.well-known/ (RFC 8615)', () => {
  it.each([
    ['/.well-known/acme-challenge/abc_DEF-123', ['.well-known', 'acme-challenge', 'abc_DEF-123']],
    ['/.well-known/security.txt', ['.well-known', 'security.txt']],
    ['/%2Ewell-known/security.txt', ['.well-known', 'security.txt']],
  ])('allows %s as the first segment only', (url, segments) => {
    expect(parseRequestTarget(url).segments).toEqual(segments);
  });

  it.each(['/a/.well-known/x', '/.well-known/.hidden', '/.well-known/../site.json', '/.Well-Known/x', '/.well-known./x', '/.well-knownx/y', '/.well-known/a/.git'])(
    'still refuses every other dot-segment: %s',
    (url) => {
      expect(refusal(url).code).toBe('PATH_FORBIDDEN');
    },
  );
});

describe('splitAbsoluteForm (RFC 9112 §3.2.2)', () => {
  it.each([
    ['http://docs.example/', 'docs.example', '/'],
    ['http://docs.example', 'docs.example', '/'],
    ['HTTPS://Docs.Example:8443/a/b?c=d', 'Docs.Example:8443', '/a/b?c=d'],
    ['http://docs.example?x=1', 'docs.example', '/?x=1'],
    ['http://[::1]:8080/p', '[::1]:8080', '/p'],
  ])('splits %s into its authority and origin form', (url, authority, originForm) => {
    expect(splitAbsoluteForm(url)).toEqual({ authority, originForm });
  });

  it.each(['/', '/a?b', '*', 'docs.example:80', 'ftp://docs.example/', '//docs.example/'])('leaves %s alone (not absolute form)', (url) => {
    expect(splitAbsoluteForm(url)).toBeUndefined();
  });

  it.each(['http://user@docs.example/', 'http://a:b@docs.example/', 'http:///path', 'https://?x'])('refuses %s (empty authority or user information)', (url) => {
    expect(() => splitAbsoluteForm(url)).toThrow(PlatformError);
  });
});
