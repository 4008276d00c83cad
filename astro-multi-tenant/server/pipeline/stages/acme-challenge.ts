import type { HostedRequest, Stage } from '../context.ts';
import { WELL_KNOWN } from '../../http/request-path.ts';
import { sendText } from '../../http/respond.ts';
import { ACME_TOKEN } from '../../tls/acme-token.ts';
import type { ChallengeRecord } from '../../tls/certificate-store.ts';

export interface AcmeChallengeDeps {
  /** The pending HTTP-01 answer for a token, from the shared store (tls/certificate-store.ts); undefined when ACME is off. */
  getChallenge: ((token: string) => Promise<ChallengeRecord | undefined>) | undefined;
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
 */
export function acmeChallengeStage(deps: AcmeChallengeDeps): Stage<HostedRequest> {
  return async (ctx) => {
    const { res, host, target } = ctx;
    if (!deps.getChallenge || target.segments[0] !== WELL_KNOWN || target.segments[1] !== CHALLENGE_DIR || target.segments.length !== 3) return undefined;
    const token = target.segments[2]!;
    if (!ACME_TOKEN.test(token)) {
      sendText(res, 404, 'Not found\n', { headers: { 'Cache-Control': 'no-store' } });
      return 'site_not_found';
    }
    const challenge = await deps.getChallenge(token);
    if (!challenge || challenge.host !== host.hostname) return undefined;
    sendText(res, 200, challenge.keyAuthorization, { type: 'text/plain', headers: { 'Cache-Control': 'no-store' } });
    return 'acme_challenge';
  };
}
