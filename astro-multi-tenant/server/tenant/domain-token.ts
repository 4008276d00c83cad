import { createHmac } from 'node:crypto';

/** The DNS name whose TXT record proves control of `domain`: `_amt-verify.<domain>`. */
export function verificationRecordName(domain: string): string {
  return `_amt-verify.${domain}`;
}

/**
 * The token `site` must publish at `_amt-verify.<domain>` to be served on `domain`:
 * `amt-verify=` and 32 base64url characters of HMAC-SHA256(secret, "<site>\n<domain>").
 *
 * Derived, not stored: the operator keeps one secret (DOMAIN_TOKEN_SECRET) instead of a token per
 * site, every worker and machine computes the same token, and a token shown for one site or domain
 * says nothing about another's (HMAC, RFC 2104). Changing the secret changes every token: domains
 * already verified keep serving through the grace period, then need their TXT records updated.
 * `domain` must already be normalised (lower case, no trailing dot: tenant/normalize-host.ts).
 */
export function verificationToken(secret: string, site: string, domain: string): string {
  const mac = createHmac('sha256', secret).update(`${site}\n${domain}`).digest('base64url');
  return `amt-verify=${mac.slice(0, 32)}`;
}
