import type { HostedRequest, Stage } from '../context.ts';
import { WELL_KNOWN } from '../../http/request-path.ts';
import { sendText } from '../../http/respond.ts';
import { ACME_TOKEN } from '../../tls/acme-token.ts';
import type { ChallengeRecord } from '../../tls/certificate-store.ts';

export interface AcmeChallengeDeps {
  /** The pending HTTP-01 answer for a token, from the shared store (tls/certificate-store.ts); undefined when ACME is off. */
  getChallenge: ((token: string) => Promise<ChallengeRecord | undefined>) | undefined;
  /**
   * Whether a site lists the host (this process's host index, memory only). Certificates are
   * ordered only for listed hosts, so a token on any other host is looked up only within
   * `unlistedLookupsPerSecond` (a host listed moments ago on another machine may not be in this
   * index yet). Undefined: every host is looked up.
   */
  isListedHost?: (hostname: string) => boolean;
  /** Store lookups per second for tokens on unlisted hosts, per process. Default 20. */
  unlistedLookupsPerSecond?: number;
  /** Monotonic ms clock. Default performance.now. */
  now?: () => number;
}

const CHALLENGE_DIR = 'acme-challenge';

/**
 * ACME HTTP-01 answers for the platform's own certificate orders (tls/certificate-manager.ts):
 * `/.well-known/acme-challenge/<token>` answers the key authorisation stored in the shared store,
 * so whichever worker on whichever machine the CA reaches answers, even one that has not yet
 * learnt that the domain was verified (which is why this runs before the tenant stage). Only on
 * the host the token was issued for; a token that is not base64url is a 404 at once; a token not
 * in the store passes on, so a site's own `public/.well-known/acme-challenge/` files (an operator
 * running certbot with DOMAIN_VERIFICATION=off) still work.
 *
 * Each lookup is a store read (a Redis GET or a file stat): a flood of well-formed tokens on
 * random hosts could turn every request into one. Tokens on hosts no site lists therefore share a
 * small per-process budget (`unlistedLookupsPerSecond`); past it they pass on unread, exactly as a
 * token not in the store does.
 */
export function acmeChallengeStage(deps: AcmeChallengeDeps): Stage<HostedRequest> {
  const perSecond = deps.unlistedLookupsPerSecond ?? 20;
  const now = deps.now ?? (() => performance.now());
  let windowStart = -Infinity;
  let used = 0;
  /** One of this second's lookups for an unlisted host, if any is left. */
  const takeUnlisted = () => {
    const at = now();
    if (at - windowStart >= 1000) {
      windowStart = at;
      used = 0;
    }
    return used++ < perSecond;
  };
  return async (ctx) => {
    const { res, host, target } = ctx;
    if (!deps.getChallenge || target.segments[0] !== WELL_KNOWN || target.segments[1] !== CHALLENGE_DIR || target.segments.length !== 3) return undefined;
    const token = target.segments[2]!;
    if (!ACME_TOKEN.test(token)) {
      sendText(res, 404, 'Not found\n', { headers: { 'Cache-Control': 'no-store' } });
      return 'site_not_found';
    }
    if (deps.isListedHost && !deps.isListedHost(host.hostname) && !takeUnlisted()) return undefined;
    const challenge = await deps.getChallenge(token);
    if (!challenge || challenge.host !== host.hostname) return undefined;
    sendText(res, 200, challenge.keyAuthorization, { type: 'text/plain', headers: { 'Cache-Control': 'no-store' } });
    return 'acme_challenge';
  };
}
