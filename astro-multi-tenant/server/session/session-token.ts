import { SignJWT, jwtVerify } from 'jose';
import { PlatformError } from '../errors.ts';

/**
 * The session cookie's value: a short JWT that names the site, the session id and the key it was
 * signed with. The signature lets a worker reject forged or foreign cookies without a Redis round
 * trip; the Redis record is still read on every use, so a revoked session dies at once.
 */
export interface SigningKey {
  kid: string;
  secret: Uint8Array;
}

export interface SessionKeys {
  /** Signs new tokens. */
  current: SigningKey;
  /** Verifies tokens: the current key and older ones still being rotated out. */
  byKid: ReadonlyMap<string, SigningKey>;
}

/** Only this algorithm is accepted: `alg: none`, RS/HS confusion and anything else are refused. */
export const SESSION_ALGORITHMS = ['HS256'];
const MIN_SECRET_BYTES = 32;

/**
 * Parses SESSION_KEYS: `kid:secret[,kid:secret…]`, newest first. Rotation: put a new key first,
 * keep the old one after it until every token signed with it has expired, then remove it.
 */
export function parseSessionKeys(raw: string, field = 'SESSION_KEYS'): SessionKeys {
  const byKid = new Map<string, SigningKey>();
  const entries = raw.split(',').map((s) => s.trim()).filter(Boolean);
  if (entries.length === 0) throw new PlatformError('CONFIG_INVALID', `${field}: no keys given`, '');
  for (const entry of entries) {
    const colon = entry.indexOf(':');
    const kid = colon === -1 ? '' : entry.slice(0, colon);
    const secret = colon === -1 ? '' : entry.slice(colon + 1);
    if (!/^[A-Za-z0-9._-]{1,64}$/.test(kid)) throw new PlatformError('CONFIG_INVALID', `${field}: each entry must be kid:secret with a kid of letters, digits, . _ -`, kid || '(missing kid)');
    if (Buffer.byteLength(secret) < MIN_SECRET_BYTES) throw new PlatformError('CONFIG_INVALID', `${field}: the secret of key "${kid}" must be at least ${MIN_SECRET_BYTES} bytes`, kid);
    if (byKid.has(kid)) throw new PlatformError('CONFIG_INVALID', `${field}: key id "${kid}" is listed twice`, kid);
    byKid.set(kid, { kid, secret: new TextEncoder().encode(secret) });
  }
  return { current: byKid.values().next().value!, byKid };
}

export interface SessionClaims {
  site: string;
  sid: string;
}

export async function signSessionToken(keys: SessionKeys, claims: SessionClaims, maxAgeSeconds: number, now = Date.now()): Promise<string> {
  const iat = Math.floor(now / 1000);
  return new SignJWT({ sid: claims.sid })
    .setProtectedHeader({ alg: 'HS256', kid: keys.current.kid, typ: 'JWT' })
    .setIssuer(claims.site)
    .setAudience(claims.site)
    .setIssuedAt(iat)
    .setExpirationTime(iat + maxAgeSeconds)
    .sign(keys.current.secret);
}

export type VerifyResult = { ok: true; sid: string } | { ok: false; reason: string };

/** Verifies a cookie token for `site`: signature, algorithm, kid, issuer, audience, expiry. */
export async function verifySessionToken(keys: SessionKeys, token: string, site: string, now = Date.now()): Promise<VerifyResult> {
  try {
    const { payload } = await jwtVerify(
      token,
      (header) => {
        const key = header.kid ? keys.byKid.get(header.kid) : undefined;
        if (!key) throw new Error(`unknown key id ${JSON.stringify(header.kid ?? null)}`);
        return key.secret;
      },
      { algorithms: SESSION_ALGORITHMS, issuer: site, audience: site, clockTolerance: 30, currentDate: new Date(now), requiredClaims: ['exp', 'iat', 'sid'] },
    );
    if (typeof payload.sid !== 'string' || !/^[A-Za-z0-9_-]{43}$/.test(payload.sid)) return { ok: false, reason: 'sid claim is malformed' };
    return { ok: true, sid: payload.sid };
  } catch (error) {
    return { ok: false, reason: (error as Error).message };
  }
}
