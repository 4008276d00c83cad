import type { Exchange, Stage } from '../context.ts';
import { sendText } from '../../http/respond.ts';
import { SESSION_PREFIX } from '../../session/sessions.ts';

/**
 * Sites are read-only: GET and HEAD everywhere, POST only to the session endpoints (sign-in and
 * sign-out forms). Anything else is a 405 with Allow (RFC 9110 §15.5.6), before any tenant work.
 */
export function methodPolicyStage(): Stage<Exchange> {
  return ({ req, res }) => {
    if (req.method === 'GET' || req.method === 'HEAD') return undefined;
    if (req.method === 'POST' && (req.url ?? '').startsWith(SESSION_PREFIX)) return undefined;
    sendText(res, 405, 'Method not allowed\n', { headers: { Allow: 'GET, HEAD' } });
    return 'method_not_allowed';
  };
}
