import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SignJWT, exportJWK, generateKeyPair, type CryptoKey, type JWK } from 'jose';
import { createIdpVerifier, type IdpVerifier } from '../../astro-multi-tenant/server/session/idp-token.ts';
import { createOutboundFetch, parseOutboundAllowList, type Lookup } from '../../astro-multi-tenant/server/http/outbound-fetch.ts';
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
  /** The operator allowlists the loopback test IdP (JWKS_ALLOW_HOSTS=127.0.0.1:<port>). */
  const allowed = () => createIdpVerifier({ allow: parseOutboundAllowList(new URL(jwksUrl).host) });

  beforeAll(async () => {
    rsa = await keyPair('RS256', 'remote-1');
    server = createServer((req, res) => {
      const redirect = req.url?.startsWith('/redirect?to=') ? decodeURIComponent(req.url.slice('/redirect?to='.length)) : undefined;
      if (redirect) {
        res.writeHead(302, { Location: redirect }).end();
        return;
      }
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
    const verify = allowed();
    const settings: TokenSettings = { jwksUrl, issuer: ISSUER, audience: AUDIENCE, algorithms: ['RS256'] };
    const before = fetches;
    const result = await verify('alpha', settings, await token(rsa, { name: 'Remote Ruth' }, { sub: 'r-1' }));
    expect(result).toEqual({ ok: true, identity: { sub: 'r-1', name: 'Remote Ruth' } });
    expect(fetches).toBe(before + 1);
  });

  it('reuses the fetched key set for later tokens of the same site', async () => {
    const verify = allowed();
    const settings: TokenSettings = { jwksUrl, issuer: ISSUER, audience: AUDIENCE, algorithms: ['RS256'] };
    const before = fetches;
    for (let i = 0; i < 3; i++) expect((await verify('alpha', settings, await token(rsa, {}, { sub: `u${i}` }))).ok).toBe(true);
    expect(fetches).toBe(before + 1);
  });

  it('still checks issuer and audience for remote keys', async () => {
    const verify = allowed();
    const settings: TokenSettings = { jwksUrl, issuer: ISSUER, audience: AUDIENCE, algorithms: ['RS256'] };
    expect((await verify('alpha', settings, await token(rsa, {}, { audience: 'beta-site' }))).ok).toBe(false);
    expect((await verify('alpha', settings, await token(rsa, {}, { issuer: 'https://evil.example' }))).ok).toBe(false);
  });

  it('rejects, without throwing, when the JWKS URL does not serve a key set', async () => {
    const verify = allowed();
    const settings: TokenSettings = { jwksUrl: jwksUrl.replace('jwks.json', 'missing.json'), issuer: ISSUER, audience: AUDIENCE, algorithms: ['RS256'] };
    const result = await verify('alpha', settings, await token(rsa));
    expect(result.ok).toBe(false);
  });

  describe('refuses to fetch a key set from where a site should not point', () => {
    const settingsFor = (url: string): TokenSettings => ({ jwksUrl: url, issuer: ISSUER, audience: AUDIENCE, algorithms: ['RS256'] });
    /** Names that look public but resolve to addresses the server must never reach. */
    const fakeDns: Lookup = async (hostname) => {
      const table: Record<string, string[]> = {
        'idp.example.com': ['127.0.0.1'],
        'metadata.example.com': ['169.254.169.254'],
        'mixed.example.com': ['93.184.215.14', '10.0.0.7'],
        'v6.example.com': ['::1'],
        'mapped.example.com': ['::ffff:192.168.1.1'],
      };
      if (!table[hostname]) throw new Error(`ENOTFOUND ${hostname}`);
      return table[hostname]!.map((address) => ({ address, family: address.includes(':') ? 6 : 4 }));
    };

    it.each([
      ['loopback by IP, over http', () => jwksUrl],
      ['loopback by IP, over https', () => jwksUrl.replace('http:', 'https:')],
      ['a private address', () => 'https://10.1.2.3/.well-known/jwks.json'],
      ['the cloud metadata address', () => 'https://169.254.169.254/latest/meta-data/'],
      ['IPv6 loopback', () => 'https://[::1]/jwks.json'],
      ['an IPv4-mapped IPv6 loopback', () => 'https://[::ffff:127.0.0.1]/jwks.json'],
      ['the unspecified address', () => 'https://0.0.0.0/jwks.json'],
      ['carrier-grade NAT', () => 'https://100.64.0.1/jwks.json'],
      ['a public-looking name that resolves to loopback', () => 'https://idp.example.com/jwks.json'],
      ['a name that resolves to the metadata address', () => 'https://metadata.example.com/jwks.json'],
      ['a name with one public and one private address', () => 'https://mixed.example.com/jwks.json'],
      ['a name that resolves to ::1', () => 'https://v6.example.com/jwks.json'],
      ['a name that resolves to an IPv4-mapped private address', () => 'https://mapped.example.com/jwks.json'],
      ['plain http to a public address', () => 'http://93.184.215.14/jwks.json'],
      ['a non-http scheme', () => 'file:///etc/passwd'],
    ])('%s', async (_what, url) => {
      const verify = createIdpVerifier({ fetch: createOutboundFetch({ allow: parseOutboundAllowList(''), lookup: fakeDns, timeoutMs: 2000 }) });
      const before = fetches;
      const result = await verify('alpha', settingsFor(url()), await token(rsa));
      expect(result.ok).toBe(false);
      expect(result.ok === false && result.reason).toMatch(/JWKS .* is unavailable: .*(not a public address|not allowed|resolves to)/);
      expect(fetches).toBe(before);
    });

    it('does not follow a redirect from an allowlisted host to one that is not allowed', async () => {
      // The allowlisted IdP answers 302 to another loopback port; the second hop is checked again.
      const target = createServer((_req, res) => res.writeHead(200).end('{"keys":[]}'));
      await new Promise<void>((resolve) => target.listen(0, '127.0.0.1', resolve));
      let hits = 0;
      target.on('request', () => hits++);
      try {
        const location = `http://127.0.0.1:${(target.address() as AddressInfo).port}/jwks.json`;
        const fetch = createOutboundFetch({ allow: parseOutboundAllowList(new URL(jwksUrl).host), timeoutMs: 2000 });
        const direct = await fetch(jwksUrl).then((r) => r.status);
        expect(direct).toBe(200);
        const via = (to: string) => fetch(`${new URL(jwksUrl).origin}/redirect?to=${encodeURIComponent(to)}`);
        await expect(via(location)).rejects.toThrow(/not allowed|not a public address/);
        await expect(via(location.replace('http:', 'https:'))).rejects.toThrow(/not a public address \(loopback\)/);
        await expect(via('https://169.254.169.254/latest/meta-data/')).rejects.toThrow(/not a public address \(linkLocal\)/);
        // A redirect back to the allowlisted host itself is fine.
        expect((await via(jwksUrl)).status).toBe(200);
        expect(hits).toBe(0);
      } finally {
        target.closeAllConnections();
        await new Promise((resolve) => target.close(resolve));
      }
    });

    it('asks a refused URL once per cooldown, not on every sign-in', async () => {
      let asked = 0;
      const verify = createIdpVerifier({
        fetch: async (url) => {
          asked++;
          return createOutboundFetch({ allow: parseOutboundAllowList('') })(url);
        },
      });
      for (let i = 0; i < 5; i++) expect((await verify('alpha', settingsFor(jwksUrl), await token(rsa))).ok).toBe(false);
      expect(asked).toBe(1);
    });
  });
});

