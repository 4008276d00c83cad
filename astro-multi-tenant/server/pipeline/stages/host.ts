import type { TLSSocket } from 'node:tls';
import type { Exchange, HostedRequest } from '../context.ts';
import type { Refinement } from '../compose.ts';
import { formatAuthority, normalizeHost } from '../../tenant/normalize-host.ts';
import { effectiveOrigin, type TrustedProxies } from '../../tenant/trusted-proxies.ts';
import { parseRequestTarget } from '../../http/request-path.ts';

/**
 * Learns where the request is going: the host the visitor used (Host, the absolute-form
 * authority, or X-Forwarded-Host from a trusted proxy), normalised once, and the target parsed
 * into safe segments. Every later stage reads these, never a raw header.
 *
 * @throws PlatformError HOST_MISSING / HOST_MALFORMED (400), PATH_MALFORMED (400),
 *   PATH_FORBIDDEN (404): see errors.ts.
 */
export function hostStage(deps: { trustedProxies: TrustedProxies }): Refinement<Exchange, HostedRequest> {
  return (ctx) => {
    const { req } = ctx;
    const headers = ctx.targetAuthority === undefined ? req.headers : { ...req.headers, host: ctx.targetAuthority };
    const origin = effectiveOrigin(headers, req.socket.remoteAddress, Boolean((req.socket as TLSSocket).encrypted), deps.trustedProxies);
    const host = normalizeHost(origin.rawHost);
    const target = parseRequestTarget(req.url);
    return Object.assign(ctx, { proto: origin.proto, host, authority: formatAuthority(host.hostname, host.port), target });
  };
}
