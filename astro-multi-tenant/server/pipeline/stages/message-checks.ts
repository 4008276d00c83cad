import type { Exchange, Stage } from '../context.ts';
import { PlatformError } from '../../errors.ts';
import { splitAbsoluteForm } from '../../http/request-path.ts';

/**
 * The request message as RFC 9112 defines it, before any routing:
 * - more than one Host field line is a 400 (§3.2); Node keeps only the first in `req.headers`,
 *   so the raw lines are counted;
 * - a target in absolute form (`GET http://docs.example/ HTTP/1.1`) is routed by its authority and
 *   the Host header is ignored (§3.2.2): the target is rewritten to origin form here and the
 *   authority is what the host stage reads, so every later stage sees one shape.
 *
 * @throws PlatformError HOST_DUPLICATE, HOST_MALFORMED
 */
export function messageChecksStage(): Stage<Exchange> {
  return (ctx) => {
    const { req } = ctx;
    const raw = req.rawHeaders;
    let hosts = 0;
    for (let i = 0; i < raw.length; i += 2) {
      const name = raw[i]!;
      if (name.length === 4 && name.toLowerCase() === 'host' && ++hosts > 1) {
        throw new PlatformError('HOST_DUPLICATE', 'the request has more than one Host header', raw[i + 1]);
      }
    }
    const absolute = splitAbsoluteForm(req.url ?? '/');
    if (absolute) {
      ctx.targetAuthority = absolute.authority;
      req.url = absolute.originForm;
    }
    return undefined;
  };
}
