import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { isLoopback, resolveClient, type TrustedProxies } from '../tenant/trusted-proxies.ts';

export interface AdminAccessOptions {
  /** Addresses that may read metrics and status without a token (ADMIN_ALLOW). */
  allow: TrustedProxies;
  /** Bearer token that opens them from anywhere (ADMIN_TOKEN); unset disables token access. */
  token: string | undefined;
  /** Used to find the real client behind a trusted proxy, so nginx on loopback does not make every visitor "local". */
  proxies: TrustedProxies;
}

export type AdminDecision = { ok: true } | { ok: false; status: 401 | 403; reason: string };

const digest = (value: string) => createHash('sha256').update(value).digest();

/**
 * Who may see /_platform/metrics and /_platform/status: the right bearer token from anywhere, or
 * a client whose address is in ADMIN_ALLOW.
 *
 * The client is the socket peer, or behind a trusted proxy the right-most untrusted
 * X-Forwarded-For hop (resolveClient). A loopback address counts only when it is the socket's own:
 * a forwarded 127.0.0.1 or ::1 means "local to the proxy" (or is simply made up by anything inside
 * TRUSTED_PROXIES, e.g. another pod of the range), never this server's loopback.
 */
export function createAdminAccess(options: AdminAccessOptions) {
  const expected = options.token ? digest(options.token) : undefined;
  return function check(headers: IncomingHttpHeaders, remoteAddress: string | undefined): AdminDecision {
    const auth = headers.authorization;
    if (typeof auth === 'string' && auth.toLowerCase().startsWith('bearer ')) {
      // Comparing digests keeps the comparison constant-time whatever the lengths.
      if (expected && timingSafeEqual(digest(auth.slice(7).trim()), expected)) return { ok: true };
      return { ok: false, status: 401, reason: 'the bearer token is not valid' };
    }
    const client = resolveClient(headers, remoteAddress, options.proxies);
    if (client.forwarded && isLoopback(client.address)) {
      return { ok: false, status: 403, reason: `forwarded address ${client.address} is loopback, which only counts from the socket itself; no bearer token was sent` };
    }
    if (options.allow.trusts(client.address)) return { ok: true };
    return { ok: false, status: 403, reason: `address ${client.address ?? 'unknown'} is not in ADMIN_ALLOW and no bearer token was sent` };
  };
}

export type AdminAccess = ReturnType<typeof createAdminAccess>;
