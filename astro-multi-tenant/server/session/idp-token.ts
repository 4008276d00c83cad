import { createLocalJWKSet, createRemoteJWKSet, jwtVerify, type JWTVerifyGetKey } from 'jose';
import type { SiteConfig } from '../sites/schema.ts';

type TokenSettings = NonNullable<NonNullable<SiteConfig['auth']>['token']>;

export interface IdpIdentity {
  sub: string;
  name: string;
}

/**
 * Verifies a token from a site's own identity provider against that site's JWKS (inline, or
 * fetched and cached by jose with its own cooldown), with the site's issuer, audience and algorithm
 * allowlist. Key sets are cached per site and settings, so an edited site.json takes effect.
 */
export function createIdpVerifier() {
  const keySets = new Map<string, JWTVerifyGetKey>();

  function keySetFor(siteId: string, settings: TokenSettings): JWTVerifyGetKey {
    const cacheKey = `${siteId}\0${settings.jwksUrl ?? JSON.stringify(settings.jwks)}`;
    let keySet = keySets.get(cacheKey);
    if (!keySet) {
      keySet = settings.jwksUrl
        ? createRemoteJWKSet(new URL(settings.jwksUrl), { timeoutDuration: 2000, cooldownDuration: 30_000, cacheMaxAge: 600_000 })
        : createLocalJWKSet(settings.jwks as Parameters<typeof createLocalJWKSet>[0]);
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
