import { describe, it, expect } from 'vitest';
import { randomBytes } from 'node:crypto';
import { SignJWT, generateKeyPair } from 'jose';
import { PlatformError } from '../../astro-multi-tenant/server/errors.ts';
import { parseSessionKeys, signSessionToken, verifySessionToken, SESSION_ALGORITHMS, type SessionKeys } from '../../astro-multi-tenant/server/session/session-token.ts';

const SECRET_A = 'a'.repeat(32);
const SECRET_B = 'b'.repeat(40);
const SECRET_C = 'c-secret-that-is-long-enough-for-hs256!!';
const NOW = Date.UTC(2030, 0, 1, 12, 0, 0);
const MAX_AGE = 3600;

const newSid = () => randomBytes(32).toString('base64url');

function keyError(raw: string, field?: string): PlatformError {
  try {
    parseSessionKeys(raw, field);
  } catch (error) {
    expect(error).toBeInstanceOf(PlatformError);
    expect((error as PlatformError).code).toBe('CONFIG_INVALID');
    return error as PlatformError;
  }
  throw new Error(`expected SESSION_KEYS ${JSON.stringify(raw)} to be rejected`);
}

const b64url = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
const decodePart = (part: string) => JSON.parse(Buffer.from(part, 'base64url').toString('utf8')) as Record<string, unknown>;

/** Signs arbitrary claims with a raw secret, for tokens the module itself would never make. */
function craft(secret: string, header: { alg: string; kid?: string }, claims: Record<string, unknown>) {
  return new SignJWT(claims).setProtectedHeader({ typ: 'JWT', ...header }).sign(new TextEncoder().encode(secret));
}

const iat = Math.floor(NOW / 1000);

describe('parseSessionKeys', () => {
  it('makes the first listed key the signing key and keeps every key for verification', () => {
    const keys = parseSessionKeys(`new:${SECRET_B}, old:${SECRET_A}`);
    expect(keys.current.kid).toBe('new');
    expect(new TextDecoder().decode(keys.current.secret)).toBe(SECRET_B);
    expect([...keys.byKid.keys()]).toEqual(['new', 'old']);
  });

  it('keeps colons inside a secret as part of the secret', () => {
    const keys = parseSessionKeys(`k1:${'x'.repeat(20)}:${'y'.repeat(20)}`);
    expect(new TextDecoder().decode(keys.current.secret)).toBe(`${'x'.repeat(20)}:${'y'.repeat(20)}`);
  });

  it('signs new tokens with the first key', async () => {
    const keys = parseSessionKeys(`new:${SECRET_B},old:${SECRET_A}`);
    const token = await signSessionToken(keys, { site: 'alpha', sid: newSid() }, MAX_AGE, NOW);
    expect(decodePart(token.split('.')[0]!)).toMatchObject({ alg: 'HS256', kid: 'new', typ: 'JWT' });
  });

  it('still verifies a token signed with an older key listed after the new one (rotation)', async () => {
    const before = parseSessionKeys(`old:${SECRET_A}`);
    const sid = newSid();
    const token = await signSessionToken(before, { site: 'alpha', sid }, MAX_AGE, NOW);
    const during = parseSessionKeys(`new:${SECRET_B},old:${SECRET_A}`);
    expect(await verifySessionToken(during, token, 'alpha', NOW)).toEqual({ ok: true, sid });
  });

  it('no longer verifies a token once its key has been removed from the list', async () => {
    const before = parseSessionKeys(`old:${SECRET_A}`);
    const token = await signSessionToken(before, { site: 'alpha', sid: newSid() }, MAX_AGE, NOW);
    const after = parseSessionKeys(`new:${SECRET_B}`);
    const result = await verifySessionToken(after, token, 'alpha', NOW);
    expect(result.ok).toBe(false);
  });

  it('does not accept a token whose kid is kept but whose secret changed', async () => {
    const token = await signSessionToken(parseSessionKeys(`k1:${SECRET_A}`), { site: 'alpha', sid: newSid() }, MAX_AGE, NOW);
    const result = await verifySessionToken(parseSessionKeys(`k1:${SECRET_B}`), token, 'alpha', NOW);
    expect(result.ok).toBe(false);
  });

  it('rejects a secret shorter than 32 bytes, naming SESSION_KEYS and the key', () => {
    const error = keyError(`short:${'s'.repeat(31)}`);
    expect(error.message).toContain('SESSION_KEYS');
    expect(error.message).toContain('"short"');
    expect(error.message).toContain('32 bytes');
  });

  it('counts the secret length in bytes, not characters', () => {
    // 16 two-byte characters are 32 bytes.
    expect(parseSessionKeys(`k:${'é'.repeat(16)}`).current.kid).toBe('k');
    expect(keyError(`k:${'é'.repeat(15)}`).message).toContain('SESSION_KEYS');
  });

  it('rejects a kid with characters outside letters, digits, . _ -', () => {
    expect(keyError(`bad kid:${SECRET_A}`).message).toContain('SESSION_KEYS');
    expect(keyError(`bad/kid:${SECRET_A}`).message).toContain('SESSION_KEYS');
    expect(keyError(`${'k'.repeat(65)}:${SECRET_A}`).message).toContain('SESSION_KEYS');
  });

  it('rejects an entry without a kid', () => {
    const noColon = keyError(SECRET_A);
    expect(noColon.message).toContain('SESSION_KEYS');
    expect(noColon.input).toBe('(missing kid)');
    expect(keyError(`:${SECRET_A}`).message).toContain('SESSION_KEYS');
  });

  it('rejects the same kid listed twice', () => {
    const error = keyError(`k1:${SECRET_A},k1:${SECRET_B}`);
    expect(error.message).toContain('SESSION_KEYS');
    expect(error.message).toContain('"k1"');
    expect(error.message).toContain('twice');
  });

  it('rejects an empty list', () => {
    expect(keyError('').message).toContain('SESSION_KEYS');
    expect(keyError(' , ,').message).toContain('no keys');
  });

  it('names the field it was given instead of SESSION_KEYS', () => {
    expect(keyError('', 'OTHER_KEYS').message).toContain('OTHER_KEYS');
  });
});

describe('verifySessionToken', () => {
  const keys: SessionKeys = parseSessionKeys(`k1:${SECRET_A},k0:${SECRET_C}`);

  it('allows HS256 only', () => {
    expect(SESSION_ALGORITHMS).toEqual(['HS256']);
  });

  it('accepts a token it signed for the same site and returns its sid', async () => {
    const sid = newSid();
    const token = await signSessionToken(keys, { site: 'alpha', sid }, MAX_AGE, NOW);
    expect(await verifySessionToken(keys, token, 'alpha', NOW)).toEqual({ ok: true, sid });
  });

  it('names the site as issuer and audience and sets iat and exp from maxAge', async () => {
    const token = await signSessionToken(keys, { site: 'alpha', sid: newSid() }, MAX_AGE, NOW);
    expect(decodePart(token.split('.')[1]!)).toMatchObject({ iss: 'alpha', aud: 'alpha', iat, exp: iat + MAX_AGE });
  });

  it('rejects a token whose payload was changed after signing', async () => {
    const token = await signSessionToken(keys, { site: 'alpha', sid: newSid() }, MAX_AGE, NOW);
    const [header, payload, signature] = token.split('.');
    const forged = b64url({ ...decodePart(payload!), sid: newSid() });
    const result = await verifySessionToken(keys, `${header}.${forged}.${signature}`, 'alpha', NOW);
    expect(result.ok).toBe(false);
    expect(result.ok === false && result.reason).toMatch(/signature/i);
  });

  it('rejects a token whose payload was stretched to another site after signing', async () => {
    const token = await signSessionToken(keys, { site: 'alpha', sid: newSid() }, MAX_AGE, NOW);
    const [header, payload, signature] = token.split('.');
    const forged = b64url({ ...decodePart(payload!), iss: 'beta', aud: 'beta' });
    expect((await verifySessionToken(keys, `${header}.${forged}.${signature}`, 'beta', NOW)).ok).toBe(false);
  });

  it('rejects a token whose signature was altered', async () => {
    const token = await signSessionToken(keys, { site: 'alpha', sid: newSid() }, MAX_AGE, NOW);
    const [header, payload, signature] = token.split('.');
    // Change the first character: every bit of it is significant (the last one has padding bits).
    const altered = (signature![0] === 'A' ? 'B' : 'A') + signature!.slice(1);
    const result = await verifySessionToken(keys, `${header}.${payload}.${altered}`, 'alpha', NOW);
    expect(result.ok).toBe(false);
    expect(result.ok === false && result.reason).toMatch(/signature/i);
  });

  it('rejects a token with its signature removed', async () => {
    const token = await signSessionToken(keys, { site: 'alpha', sid: newSid() }, MAX_AGE, NOW);
    const [header, payload] = token.split('.');
    expect((await verifySessionToken(keys, `${header}.${payload}.`, 'alpha', NOW)).ok).toBe(false);
  });

  it('rejects a token that expired more than the 30 s clock tolerance ago', async () => {
    const token = await signSessionToken(keys, { site: 'alpha', sid: newSid() }, 60, NOW);
    const result = await verifySessionToken(keys, token, 'alpha', NOW + (60 + 31) * 1000);
    expect(result.ok).toBe(false);
    expect(result.ok === false && result.reason).toMatch(/exp/i);
  });

  it('still accepts a token that expired within the 30 s clock tolerance', async () => {
    const sid = newSid();
    const token = await signSessionToken(keys, { site: 'alpha', sid }, 60, NOW);
    expect(await verifySessionToken(keys, token, 'alpha', NOW + (60 + 25) * 1000)).toEqual({ ok: true, sid });
  });

  it('rejects a token without an exp claim', async () => {
    const token = await craft(SECRET_A, { alg: 'HS256', kid: 'k1' }, { sid: newSid(), iss: 'alpha', aud: 'alpha', iat });
    expect((await verifySessionToken(keys, token, 'alpha', NOW)).ok).toBe(false);
  });

  it('rejects a token whose header says alg: none', async () => {
    const header = b64url({ alg: 'none', typ: 'JWT', kid: 'k1' });
    const payload = b64url({ sid: newSid(), iss: 'alpha', aud: 'alpha', iat, exp: iat + MAX_AGE });
    const result = await verifySessionToken(keys, `${header}.${payload}.`, 'alpha', NOW);
    expect(result.ok).toBe(false);
    expect(result.ok === false && result.reason).toMatch(/alg/i);
  });

  it('rejects a token signed with HS512 even with the right secret and kid', async () => {
    const token = await craft(SECRET_A, { alg: 'HS512', kid: 'k1' }, { sid: newSid(), iss: 'alpha', aud: 'alpha', iat, exp: iat + MAX_AGE });
    const result = await verifySessionToken(keys, token, 'alpha', NOW);
    expect(result.ok).toBe(false);
    expect(result.ok === false && result.reason).toMatch(/alg/i);
  });

  it('rejects a token signed with RS256 (algorithm not in the allowlist)', async () => {
    const { privateKey } = await generateKeyPair('RS256');
    const token = await new SignJWT({ sid: newSid() })
      .setProtectedHeader({ alg: 'RS256', kid: 'k1', typ: 'JWT' })
      .setIssuer('alpha')
      .setAudience('alpha')
      .setIssuedAt(iat)
      .setExpirationTime(iat + MAX_AGE)
      .sign(privateKey);
    const result = await verifySessionToken(keys, token, 'alpha', NOW);
    expect(result.ok).toBe(false);
    expect(result.ok === false && result.reason).toMatch(/alg/i);
  });

  it('rejects a token signed with a kid it does not know', async () => {
    const stranger = parseSessionKeys(`k9:${SECRET_A}`);
    const token = await signSessionToken(stranger, { site: 'alpha', sid: newSid() }, MAX_AGE, NOW);
    const result = await verifySessionToken(keys, token, 'alpha', NOW);
    expect(result).toEqual({ ok: false, reason: 'unknown key id "k9"' });
  });

  it('rejects a token without a kid, even when signed with the current secret', async () => {
    const token = await craft(SECRET_A, { alg: 'HS256' }, { sid: newSid(), iss: 'alpha', aud: 'alpha', iat, exp: iat + MAX_AGE });
    const result = await verifySessionToken(keys, token, 'alpha', NOW);
    expect(result).toEqual({ ok: false, reason: 'unknown key id null' });
  });

  it('rejects a token issued for another site', async () => {
    const token = await signSessionToken(keys, { site: 'beta', sid: newSid() }, MAX_AGE, NOW);
    expect((await verifySessionToken(keys, token, 'beta', NOW)).ok).toBe(true);
    const result = await verifySessionToken(keys, token, 'alpha', NOW);
    expect(result.ok).toBe(false);
    expect(result.ok === false && result.reason).toMatch(/iss|aud/);
  });

  it('rejects a token whose issuer is this site but whose audience is another', async () => {
    const token = await craft(SECRET_A, { alg: 'HS256', kid: 'k1' }, { sid: newSid(), iss: 'alpha', aud: 'beta', iat, exp: iat + MAX_AGE });
    const result = await verifySessionToken(keys, token, 'alpha', NOW);
    expect(result.ok).toBe(false);
    expect(result.ok === false && result.reason).toMatch(/aud/);
  });

  it('rejects a token whose audience is this site but whose issuer is another', async () => {
    const token = await craft(SECRET_A, { alg: 'HS256', kid: 'k1' }, { sid: newSid(), iss: 'beta', aud: 'alpha', iat, exp: iat + MAX_AGE });
    const result = await verifySessionToken(keys, token, 'alpha', NOW);
    expect(result.ok).toBe(false);
    expect(result.ok === false && result.reason).toMatch(/iss/);
  });

  it('rejects a token without a sid claim', async () => {
    const token = await craft(SECRET_A, { alg: 'HS256', kid: 'k1' }, { iss: 'alpha', aud: 'alpha', iat, exp: iat + MAX_AGE });
    const result = await verifySessionToken(keys, token, 'alpha', NOW);
    expect(result.ok).toBe(false);
    expect(result.ok === false && result.reason).toMatch(/sid/);
  });

  it('rejects a token whose sid is not 43 base64url characters', async () => {
    for (const sid of ['short', `${newSid()}x`, `${newSid().slice(0, 42)}!`, 42, ['x'], `../${newSid().slice(3)}`]) {
      const token = await craft(SECRET_A, { alg: 'HS256', kid: 'k1' }, { sid, iss: 'alpha', aud: 'alpha', iat, exp: iat + MAX_AGE });
      expect(await verifySessionToken(keys, token, 'alpha', NOW), `sid ${JSON.stringify(sid)}`).toEqual({ ok: false, reason: 'sid claim is malformed' });
    }
  });

  it('rejects a token without an iat claim', async () => {
    const token = await craft(SECRET_A, { alg: 'HS256', kid: 'k1' }, { sid: newSid(), iss: 'alpha', aud: 'alpha', exp: iat + MAX_AGE });
    expect((await verifySessionToken(keys, token, 'alpha', NOW)).ok).toBe(false);
  });

  it('rejects garbage strings without throwing', async () => {
    for (const garbage of ['', 'garbage', 'a.b.c', '..', '...', 'e30.e30.', '%%%.%%%.%%%', 'x'.repeat(5000), `${b64url({ alg: 'HS256', kid: 'k1' })}.not-json.sig`]) {
      const result = await verifySessionToken(keys, garbage, 'alpha', NOW);
      expect(result.ok, JSON.stringify(garbage.slice(0, 40))).toBe(false);
      expect(result.ok === false && typeof result.reason).toBe('string');
    }
  });
});
