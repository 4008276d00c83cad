import { createLocalJWKSet, jwtVerify, type JWTVerifyGetKey } from 'jose';
import type { SiteConfig } from '../sites/schema.ts';
import { createOutboundFetch, parseOutboundAllowList, type OutboundAllowList, type OutboundFetch } from '../http/outbound-fetch.ts';
import { createJwksCache } from './jwks-cache.ts';

type TokenSettings = NonNullable<NonNullable<SiteConfig['auth']>['token']>;

export interface IdpIdentity {
  sub: string;
  name: string;
}

/** The largest JWKS document fetched (bytes): a few dozen keys fit easily. */
const JWKS_MAX_BYTES = 256 * 1024;
const JWKS_TIMEOUT_MS = 3000;

export interface IdpVerifierOptions {
  /** Hosts a jwksUrl may reach although private or plain http (JWKS_ALLOW_HOSTS); default none. */
  allow?: OutboundAllowList;
  /** The guarded GET (http/outbound-fetch.ts); default: one over `allow` and the system resolver. */
  fetch?: OutboundFetch;
}

/**
 * Verifies a token from a site's own identity provider against that site's JWKS (inline, or
 * fetched from `jwksUrl` with the guarded outbound client and cached per URL: jwks-cache.ts), with
 * the site's issuer, audience and algorithm allowlist. Inline key sets are cached per site and
 * settings, so an edited site.json takes effect.
 */
export function createIdpVerifier(options: IdpVerifierOptions = {}) {
  const keySets = new Map<string, JWTVerifyGetKey>();
  const fetch = options.fetch ?? createOutboundFetch({ allow: options.allow ?? parseOutboundAllowList(''), timeoutMs: JWKS_TIMEOUT_MS, maxBytes: JWKS_MAX_BYTES });
  const remote = createJwksCache({
    async fetchJson(url) {
      const res = await fetch(url, { accept: 'application/jwk-set+json, application/json' });
      if (res.status !== 200) throw new Error(`${url} answered ${res.status}`);
      try {
        return JSON.parse(res.body.toString('utf8'));
      } catch {
        throw new Error(`${url} did not answer JSON`);
      }
    },
  });

  function keySetFor(siteId: string, settings: TokenSettings): JWTVerifyGetKey {
    if (settings.jwksUrl) return remote(settings.jwksUrl);
    const cacheKey = `${siteId}\0${JSON.stringify(settings.jwks)}`;
    let keySet = keySets.get(cacheKey);
    if (!keySet) {
      keySet = createLocalJWKSet(settings.jwks as Parameters<typeof createLocalJWKSet>[0]);
      if (keySets.size > 1000) keySets.clear();
      keySets.set(cacheKey, keySet);
    }
    return keySet;
  }

  return async function verifyIdpToken(siteId: string, settings: TokenSettings, token: string): Promise<{ ok: true; identity: IdpIdentity } | { ok: false; reason: string }> {
    try {
      const { payload } = await jwtVerify(token, keySetFor(siteId, settings), {
        algorithms: [...settings.algorithms],
        issuer: settings.issuer,
        audience: settings.audience,
        clockTolerance: 30,
        requiredClaims: ['sub', 'exp'],
      });
      const sub = String(payload.sub);
      const name = typeof payload.name === 'string' ? payload.name : typeof payload.email === 'string' ? payload.email : sub;
      return { ok: true, identity: { sub, name: name.slice(0, 120) } };
    } catch (error) {
      return { ok: false, reason: (error as Error).message };
    }
  };
}

export type IdpVerifier = ReturnType<typeof createIdpVerifier>;
