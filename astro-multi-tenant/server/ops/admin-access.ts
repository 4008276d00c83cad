import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { clientAddress, type TrustedProxies } from '../tenant/trusted-proxies.ts';

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

/** Who may see /_platform/metrics and /_platform/status. */
export function createAdminAccess(options: AdminAccessOptions) {
  const expected = options.token ? digest(options.token) : undefined;
  return function check(headers: IncomingHttpHeaders, remoteAddress: string | undefined): AdminDecision {
    const auth = headers.authorization;
    if (typeof auth === 'string' && auth.toLowerCase().startsWith('bearer ')) {
      // Comparing digests keeps the comparison constant-time whatever the lengths.
      if (expected && timingSafeEqual(digest(auth.slice(7).trim()), expected)) return { ok: true };
      return { ok: false, status: 401, reason: 'the bearer token is not valid' };
    }
    const client = clientAddress(headers, remoteAddress, options.proxies);
    if (options.allow.trusts(client)) return { ok: true };
    return { ok: false, status: 403, reason: `address ${client ?? 'unknown'} is not in ADMIN_ALLOW and no bearer token was sent` };
  };
}

export type AdminAccess = ReturnType<typeof createAdminAccess>;
