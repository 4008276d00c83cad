/** Minimal, strict cookie handling: we only ever read our own cookies by exact name. */
export function readCookie(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq === -1) continue;
    if (part.slice(0, eq).trim() === name) {
      const value = part.slice(eq + 1).trim();
      return value.length > 0 && value.length <= 4096 && /^[A-Za-z0-9._~+/=-]+$/.test(value) ? value : undefined;
    }
  }
  return undefined;
}

export interface CookieOptions {
  maxAgeSeconds?: number;
  path?: string;
  secure: boolean;
  sameSite: 'Lax' | 'Strict';
}

/**
 * Host-only (no Domain attribute): the browser sends it back only to the exact host that set it, so
 * a cookie from one tenant's domain never reaches another tenant, even on sibling subdomains.
 */
export function serializeCookie(name: string, value: string, options: CookieOptions): string {
  const parts = [`${name}=${value}`, `Path=${options.path ?? '/'}`, 'HttpOnly', `SameSite=${options.sameSite}`];
  if (options.maxAgeSeconds !== undefined) parts.push(`Max-Age=${options.maxAgeSeconds}`);
  if (options.secure) parts.push('Secure');
  return parts.join('; ');
}

/** On https the __Host- prefix makes browsers enforce Secure, Path=/ and no Domain. */
export function sessionCookieName(secure: boolean): string {
  return secure ? '__Host-amt_session' : 'amt_session';
}

export const CSRF_COOKIE = 'amt_csrf';
export const SESSION_COOKIE_NAMES = ['amt_session', '__Host-amt_session'] as const;
