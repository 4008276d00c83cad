import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SignJWT, exportJWK, generateKeyPair, type CryptoKey, type JWK } from 'jose';
import { createIdpVerifier, type IdpVerifier } from '../../astro-multi-tenant/server/session/idp-token.ts';
import type { SiteConfig } from '../../astro-multi-tenant/server/sites/schema.ts';

type TokenSettings = NonNullable<NonNullable<SiteConfig['auth']>['token']>;

const ISSUER = 'https://id.alpha.example';
const AUDIENCE = 'alpha-site';

interface KeyPair {
  kid: string;
  alg: 'RS256' | 'ES256';
  privateKey: CryptoKey;
  jwk: JWK;
}

async function keyPair(alg: 'RS256' | 'ES256', kid: string): Promise<KeyPair> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const jwk = { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' };
  return { kid, alg, privateKey, jwk };
}

const now = () => Math.floor(Date.now() / 1000);

function token(key: KeyPair, claims: Record<string, unknown> = {}, options: { issuer?: string; audience?: string; exp?: number; sub?: string | null; kid?: string } = {}) {
  const jwt = new SignJWT(claims)
    .setProtectedHeader({ alg: key.alg, kid: options.kid ?? key.kid, typ: 'JWT' })
    .setIssuer(options.issuer ?? ISSUER)
    .setAudience(options.audience ?? AUDIENCE)
    .setIssuedAt()
    .setExpirationTime(options.exp ?? now() + 300);
  if (options.sub !== null) jwt.setSubject(options.sub ?? 'user-123');
  return jwt.sign(key.privateKey);
}

describe('verifyIdpToken with an inline JWKS', () => {
  let rsa: KeyPair;
  let ec: KeyPair;
  let stranger: KeyPair;
  let settings: TokenSettings;
  let verify: IdpVerifier;

  beforeAll(async () => {
    rsa = await keyPair('RS256', 'rsa-1');
    ec = await keyPair('ES256', 'ec-1');
    // Same kid as the real RSA key, but a different key: its signatures must not verify.
    stranger = await keyPair('RS256', 'rsa-1');
    settings = { jwks: { keys: [rsa.jwk, ec.jwk] }, issuer: ISSUER, audience: AUDIENCE, algorithms: ['RS256', 'ES256'] };
    verify = createIdpVerifier();
  });

  it('accepts an RS256 token with the right issuer and audience and yields sub and name', async () => {
    const result = await verify('alpha', settings, await token(rsa, { name: 'Ada Lovelace' }));
    expect(result).toEqual({ ok: true, identity: { sub: 'user-123', name: 'Ada Lovelace' } });
  });

  it('accepts an ES256 token signed by the other key in the set', async () => {
    const result = await verify('alpha', settings, await token(ec, { name: 'Grace' }, { sub: 'user-456' }));
    expect(result).toEqual({ ok: true, identity: { sub: 'user-456', name: 'Grace' } });
  });

  it('falls back to the email, then to sub, for the display name, and caps it at 120 characters', async () => {
    expect(await verify('alpha', settings, await token(rsa, { email: 'ada@example.com' }))).toEqual({ ok: true, identity: { sub: 'user-123', name: 'ada@example.com' } });
    expect(await verify('alpha', settings, await token(rsa))).toEqual({ ok: true, identity: { sub: 'user-123', name: 'user-123' } });
    const long = await verify('alpha', settings, await token(rsa, { name: 'n'.repeat(500) }));
    expect(long.ok && long.identity.name).toBe('n'.repeat(120));
  });

  it('rejects a token from another issuer', async () => {
    const result = await verify('alpha', settings, await token(rsa, {}, { issuer: 'https://evil.example' }));
    expect(result.ok).toBe(false);
    expect(result.ok === false && result.reason).toMatch(/iss/);
  });

  it('rejects a token meant for another audience', async () => {
    const result = await verify('alpha', settings, await token(rsa, {}, { audience: 'beta-site' }));
    expect(result.ok).toBe(false);
    expect(result.ok === false && result.reason).toMatch(/aud/);
  });

  it('rejects a token that expired more than 30 s ago', async () => {
    const result = await verify('alpha', settings, await token(rsa, {}, { exp: now() - 120 }));
    expect(result.ok).toBe(false);
    expect(result.ok === false && result.reason).toMatch(/exp/);
  });

  it('rejects a token without an expiry', async () => {
    const jwt = await new SignJWT({}).setProtectedHeader({ alg: 'RS256', kid: rsa.kid }).setIssuer(ISSUER).setAudience(AUDIENCE).setSubject('user-123').sign(rsa.privateKey);
    const result = await verify('alpha', settings, jwt);
    expect(result.ok).toBe(false);
    expect(result.ok === false && result.reason).toMatch(/exp/);
  });

  it('rejects an HS256 token, whose algorithm is not allowed', async () => {
    const jwt = await new SignJWT({ name: 'Mallory' })
      .setProtectedHeader({ alg: 'HS256', kid: rsa.kid })
      .setIssuer(ISSUER)
      .setAudience(AUDIENCE)
      .setSubject('user-123')
      .setExpirationTime(now() + 300)
      .sign(new TextEncoder().encode(JSON.stringify(rsa.jwk)));
    const result = await verify('alpha', settings, jwt);
    expect(result.ok).toBe(false);
    expect(result.ok === false && result.reason).toMatch(/alg/i);
  });

  it('rejects a token signed with an algorithm the site did not list, even by a key in its set', async () => {
    const rsaOnly: TokenSettings = { ...settings, algorithms: ['RS256'] };
    const result = await verify('alpha', rsaOnly, await token(ec));
    expect(result.ok).toBe(false);
    expect(result.ok === false && result.reason).toMatch(/alg/i);
  });

  it('rejects a token signed by a different key under a known kid', async () => {
    const result = await verify('alpha', settings, await token(stranger));
    expect(result.ok).toBe(false);
    expect(result.ok === false && result.reason).toMatch(/signature/i);
  });

  it('rejects a token whose kid is not in the set', async () => {
    const other = await keyPair('RS256', 'rsa-unknown');
    const result = await verify('alpha', settings, await token(other));
    expect(result.ok).toBe(false);
  });

  it('rejects a token without sub', async () => {
    const result = await verify('alpha', settings, await token(rsa, { name: 'Nobody' }, { sub: null }));
    expect(result.ok).toBe(false);
    expect(result.ok === false && result.reason).toMatch(/sub/);
  });

  it('rejects a token whose header says alg: none', async () => {
    const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
    const unsigned = `${b64({ alg: 'none', typ: 'JWT' })}.${b64({ iss: ISSUER, aud: AUDIENCE, sub: 'user-123', exp: now() + 300 })}.`;
    expect((await verify('alpha', settings, unsigned)).ok).toBe(false);
  });

  it('rejects garbage without throwing', async () => {
    for (const garbage of ['', 'nope', 'a.b.c', '...']) {
      const result = await verify('alpha', settings, garbage);
      expect(result.ok, garbage).toBe(false);
    }
  });

  it('follows an edited key set: a key removed from site.json no longer verifies', async () => {
    const ecOnly: TokenSettings = { ...settings, jwks: { keys: [ec.jwk] } };
    expect((await verify('alpha', settings, await token(rsa))).ok).toBe(true);
    expect((await verify('alpha', ecOnly, await token(rsa))).ok).toBe(false);
    expect((await verify('alpha', ecOnly, await token(ec))).ok).toBe(true);
  });
});

describe('verifyIdpToken with a jwksUrl', () => {
  let rsa: KeyPair;
  let server: Server;
  let jwksUrl: string;
  let fetches = 0;

  beforeAll(async () => {
    rsa = await keyPair('RS256', 'remote-1');
    server = createServer((req, res) => {
      if (req.url !== '/.well-known/jwks.json') {
        res.writeHead(404).end();
        return;
      }
      fetches++;
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ keys: [rsa.jwk] }));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    jwksUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/.well-known/jwks.json`;
  });

  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  it('fetches the key set from the URL and verifies a token with it', async () => {
    const verify = createIdpVerifier();
    const settings: TokenSettings = { jwksUrl, issuer: ISSUER, audience: AUDIENCE, algorithms: ['RS256'] };
    const before = fetches;
    const result = await verify('alpha', settings, await token(rsa, { name: 'Remote Ruth' }, { sub: 'r-1' }));
    expect(result).toEqual({ ok: true, identity: { sub: 'r-1', name: 'Remote Ruth' } });
    expect(fetches).toBe(before + 1);
  });

  it('reuses the fetched key set for later tokens of the same site', async () => {
    const verify = createIdpVerifier();
    const settings: TokenSettings = { jwksUrl, issuer: ISSUER, audience: AUDIENCE, algorithms: ['RS256'] };
    const before = fetches;
    for (let i = 0; i < 3; i++) expect((await verify('alpha', settings, await token(rsa, {}, { sub: `u${i}` }))).ok).toBe(true);
    expect(fetches).toBe(before + 1);
  });

  it('still checks issuer and audience for remote keys', async () => {
    const verify = createIdpVerifier();
    const settings: TokenSettings = { jwksUrl, issuer: ISSUER, audience: AUDIENCE, algorithms: ['RS256'] };
    expect((await verify('alpha', settings, await token(rsa, {}, { audience: 'beta-site' }))).ok).toBe(false);
    expect((await verify('alpha', settings, await token(rsa, {}, { issuer: 'https://evil.example' }))).ok).toBe(false);
  });

  it('rejects, without throwing, when the JWKS URL does not serve a key set', async () => {
    const verify = createIdpVerifier();
    const settings: TokenSettings = { jwksUrl: jwksUrl.replace('jwks.json', 'missing.json'), issuer: ISSUER, audience: AUDIENCE, algorithms: ['RS256'] };
    const result = await verify('alpha', settings, await token(rsa));
    expect(result.ok).toBe(false);
  });
});
