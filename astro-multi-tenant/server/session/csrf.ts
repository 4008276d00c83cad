import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { SessionKeys } from './session-token.ts';

/**
 * CSRF tokens for the forms that post to /_platform/session/, bound to one site and one session.
 *
 * The `amt_csrf` cookie holds a random nonce; the token in the form is
 * `<kid>.<HMAC-SHA256(key, "amt-csrf-v1" NUL site NUL session-id-or-empty NUL nonce)>`, keyed with
 * a key derived from the session signing key `kid` (SESSION_KEYS). This is OWASP's "signed
 * double-submit cookie": a bare double-submit value can be planted by anyone who can set a cookie
 * for the host (a sibling subdomain under the platform domain can), but a valid token needs our key,
 * and one minted for another site or another session does not verify here.
 *
 * @see https://cheatsheetseries.owasp.org/cheatsheets/Cross-Site_Request_Forgery_Prevention_Cheat_Sheet.html#signed-double-submit-cookie-recommended
 */
export interface CsrfBinding {
  site: string;
  /** The session id of a verified session cookie for this site, or undefined when signed out. */
  sessionId: string | undefined;
}

const NONCE = /^[A-Za-z0-9_-]{43}$/;
const TOKEN = /^([A-Za-z0-9._-]{1,64})\.([A-Za-z0-9_-]{43})$/;

/** A fresh cookie nonce: 32 random bytes, base64url (43 characters). */
export const newCsrfNonce = () => randomBytes(32).toString('base64url');
export const isCsrfNonce = (value: string | undefined): value is string => value !== undefined && NONCE.test(value);

export function createCsrfTokens(keys: SessionKeys) {
  // Key separation: the CSRF MAC never uses the JWT signing secret directly.
  const macKeys = new Map<string, Buffer>();
  for (const [kid, key] of keys.byKid) macKeys.set(kid, createHmac('sha256', key.secret).update('amt-csrf-key-v1').digest());

  const mac = (key: Buffer, binding: CsrfBinding, nonce: string) =>
    createHmac('sha256', key).update(`amt-csrf-v1\0${binding.site}\0${binding.sessionId ?? ''}\0${nonce}`).digest();

  return {
    /** The form token for `nonce` (the cookie's value) under `binding`, signed with the current key. */
    mint(binding: CsrfBinding, nonce: string): string {
      const kid = keys.current.kid;
      return `${kid}.${mac(macKeys.get(kid)!, binding, nonce).toString('base64url')}`;
    },
    /** True when `token` was minted by us for this nonce, site and session (any listed key). */
    verify(token: string | undefined, binding: CsrfBinding, nonce: string | undefined): boolean {
      if (!token || !isCsrfNonce(nonce)) return false;
      const match = TOKEN.exec(token);
      const key = match ? macKeys.get(match[1]!) : undefined;
      if (!match || !key) return false;
      const sent = Buffer.from(match[2]!, 'base64url');
      const expected = mac(key, binding, nonce);
      return sent.length === expected.length && timingSafeEqual(sent, expected);
    },
  };
}

export type CsrfTokens = ReturnType<typeof createCsrfTokens>;

/**
 * True when the Origin a browser sent is this request's own origin: same scheme, host and port
 * (RFC 6454 §4, serialised by the WHATWG URL parser, so default ports, case and IDNs compare
 * equal). `authority` must carry the port the visitor used; a missing port means the default one.
 */
export function isSameOrigin(sentOrigin: string, own: { proto: 'http' | 'https'; authority: string }): boolean {
  try {
    const sent = new URL(sentOrigin);
    // An Origin is exactly scheme://host[:port] (or "null"); anything with a path, user info, query
    // or fragment is not one, so it is not ours either.
    if (sentOrigin.endsWith('/') || sent.pathname !== '/' || sent.search || sent.hash || sent.username || sent.password) return false;
    return sent.origin === new URL(`${own.proto}://${own.authority}`).origin;
  } catch {
    return false;
  }
}
