import { describe, it, expect } from 'vitest';
import { CSRF_COOKIE, readCookie, serializeCookie, sessionCookieName } from '../../astro-multi-tenant/server/session/cookies.ts';

describe('readCookie', () => {
  it('reads a cookie by its exact name among others', () => {
    expect(readCookie('theme=dark; amt_session=abc.def-ghi_jkl; lang=en', 'amt_session')).toBe('abc.def-ghi_jkl');
  });

  it('does not confuse a cookie whose name merely contains the wanted one', () => {
    expect(readCookie('xamt_session=evil', 'amt_session')).toBeUndefined();
    expect(readCookie('amt_session_x=evil', 'amt_session')).toBeUndefined();
    expect(readCookie('__Host-amt_session=evil', 'amt_session')).toBeUndefined();
    expect(readCookie('xamt_session=evil; amt_session=good', 'amt_session')).toBe('good');
  });

  it('does not take the __Host- cookie for the plain one or the other way round', () => {
    const header = 'amt_session=plain; __Host-amt_session=prefixed';
    expect(readCookie(header, 'amt_session')).toBe('plain');
    expect(readCookie(header, '__Host-amt_session')).toBe('prefixed');
  });

  it('is case-sensitive about the name', () => {
    expect(readCookie('AMT_SESSION=abc', 'amt_session')).toBeUndefined();
  });

  it('tolerates spaces around names and values', () => {
    expect(readCookie('a=1;   amt_csrf  =  tok  ', 'amt_csrf')).toBe('tok');
  });

  it('keeps = signs inside a value (base64 padding)', () => {
    expect(readCookie('amt_session=YWJj==', 'amt_session')).toBe('YWJj==');
  });

  it('returns undefined when the header is missing or has no such cookie', () => {
    expect(readCookie(undefined, 'amt_session')).toBeUndefined();
    expect(readCookie('', 'amt_session')).toBeUndefined();
    expect(readCookie('flag; other=1', 'amt_session')).toBeUndefined();
  });

  it('refuses a value with characters outside the token alphabet', () => {
    for (const value of ['"quoted"', 'a b', 'a,b', 'a\\b', '<script>', 'a%20b', 'é', 'a\tb']) {
      expect(readCookie(`amt_session=${value}`, 'amt_session'), JSON.stringify(value)).toBeUndefined();
    }
  });

  it('refuses an empty value and one longer than 4096 characters', () => {
    expect(readCookie('amt_session=', 'amt_session')).toBeUndefined();
    expect(readCookie(`amt_session=${'a'.repeat(4097)}`, 'amt_session')).toBeUndefined();
    expect(readCookie(`amt_session=${'a'.repeat(4096)}`, 'amt_session')).toBe('a'.repeat(4096));
  });

  it('uses the first cookie of that name and does not fall back to a later one when it is malformed', () => {
    expect(readCookie('amt_session=first; amt_session=second', 'amt_session')).toBe('first');
    expect(readCookie('amt_session="bad"; amt_session=good', 'amt_session')).toBeUndefined();
  });
});

describe('serializeCookie', () => {
  it('always sets HttpOnly, SameSite and Path=/ by default', () => {
    const cookie = serializeCookie('amt_session', 'tok', { secure: false, sameSite: 'Lax' });
    expect(cookie.split('; ')).toEqual(['amt_session=tok', 'Path=/', 'HttpOnly', 'SameSite=Lax']);
  });

  it('uses the given path and SameSite', () => {
    const cookie = serializeCookie(CSRF_COOKIE, 'tok', { path: '/_platform/session/', secure: false, sameSite: 'Strict' });
    expect(cookie).toContain('Path=/_platform/session/');
    expect(cookie).toContain('SameSite=Strict');
    expect(cookie).toContain('HttpOnly');
  });

  it('never adds a Domain attribute, so the cookie stays host-only', () => {
    for (const options of [
      { secure: true, sameSite: 'Lax' as const, maxAgeSeconds: 60 },
      { secure: false, sameSite: 'Strict' as const, path: '/x' },
      { secure: true, sameSite: 'Strict' as const, maxAgeSeconds: 0 },
    ]) {
      expect(serializeCookie('amt_session', 'tok', options)).not.toMatch(/domain/i);
    }
  });

  it('adds Secure only when asked', () => {
    expect(serializeCookie('c', 'v', { secure: true, sameSite: 'Lax' }).split('; ')).toContain('Secure');
    expect(serializeCookie('c', 'v', { secure: false, sameSite: 'Lax' })).not.toMatch(/secure/i);
  });

  it('adds Max-Age when given, including 0 to clear a cookie', () => {
    expect(serializeCookie('c', 'v', { secure: false, sameSite: 'Lax', maxAgeSeconds: 3600 }).split('; ')).toContain('Max-Age=3600');
    expect(serializeCookie('c', '', { secure: false, sameSite: 'Lax', maxAgeSeconds: 0 }).split('; ')).toEqual(['c=', 'Path=/', 'HttpOnly', 'SameSite=Lax', 'Max-Age=0']);
    expect(serializeCookie('c', 'v', { secure: false, sameSite: 'Lax' })).not.toContain('Max-Age');
  });

  it('produces a cookie that readCookie reads back', () => {
    const cookie = serializeCookie('amt_session', 'a.b-c_d', { secure: false, sameSite: 'Lax' });
    const pair = cookie.split('; ')[0];
    expect(readCookie(pair, 'amt_session')).toBe('a.b-c_d');
  });
});

describe('sessionCookieName', () => {
  it('uses the __Host- prefix on https', () => {
    expect(sessionCookieName(true)).toBe('__Host-amt_session');
  });

  it('uses the plain name on http, where browsers refuse __Host- cookies', () => {
    expect(sessionCookieName(false)).toBe('amt_session');
  });

  it('serializes a https session cookie that meets the __Host- rules: Secure, Path=/, no Domain', () => {
    const cookie = serializeCookie(sessionCookieName(true), 'tok', { secure: true, sameSite: 'Lax', maxAgeSeconds: 60 });
    const attributes = cookie.split('; ');
    expect(attributes[0]).toBe('__Host-amt_session=tok');
    expect(attributes).toContain('Secure');
    expect(attributes).toContain('Path=/');
    expect(cookie).not.toMatch(/domain/i);
  });
});
