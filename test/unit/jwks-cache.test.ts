import { describe, it, expect } from 'vitest';
import { SignJWT, exportJWK, generateKeyPair, jwtVerify } from 'jose';
import { createJwksCache } from '../../astro-multi-tenant/server/session/jwks-cache.ts';

async function keyPair(kid: string) {
  const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
  return { kid, privateKey, jwk: { ...(await exportJWK(publicKey)), kid, alg: 'ES256' } };
}

const sign = (key: Awaited<ReturnType<typeof keyPair>>) => new SignJWT({}).setProtectedHeader({ alg: 'ES256', kid: key.kid }).setSubject('u').setExpirationTime('5m').sign(key.privateKey);

describe('createJwksCache', () => {
  it('fetches a URL once, shares it between concurrent sign-ins, and refetches after maxAge', async () => {
    const key = await keyPair('a');
    let t = 0;
    let fetches = 0;
    const cache = createJwksCache({ now: () => t, maxAgeMs: 1000, fetchJson: async () => (fetches++, { keys: [key.jwk] }) });
    const jwt = await sign(key);
    await Promise.all(Array.from({ length: 5 }, () => jwtVerify(jwt, cache('https://idp.example/jwks'))));
    expect(fetches).toBe(1);
    t = 999;
    await jwtVerify(jwt, cache('https://idp.example/jwks'));
    expect(fetches).toBe(1);
    t = 1000;
    await jwtVerify(jwt, cache('https://idp.example/jwks'));
    expect(fetches).toBe(2);
  });

  it('refetches for an unknown kid (key rotation), but at most once per cooldown', async () => {
    const old = await keyPair('old');
    const rotated = await keyPair('new');
    let t = 0;
    let served = [old.jwk];
    let fetches = 0;
    const cache = createJwksCache({ now: () => t, cooldownMs: 30_000, fetchJson: async () => (fetches++, { keys: served }) });
    await jwtVerify(await sign(old), cache('u'));
    served = [old.jwk, rotated.jwk];
    // Within the cooldown an unknown kid is just refused.
    await expect(jwtVerify(await sign(rotated), cache('u'))).rejects.toThrow();
    expect(fetches).toBe(1);
    t = 30_000;
    await jwtVerify(await sign(rotated), cache('u'));
    expect(fetches).toBe(2);
  });

  it('remembers a failed fetch for the cooldown, so a bad URL costs one request per cooldown', async () => {
    let t = 0;
    let fetches = 0;
    const key = await keyPair('a');
    const cache = createJwksCache({ now: () => t, cooldownMs: 30_000, fetchJson: async () => {
      fetches++;
      throw new Error('refused: 127.0.0.1 is not a public address (loopback)');
    } });
    for (let i = 0; i < 10; i++) await expect(jwtVerify(await sign(key), cache('https://x/jwks'))).rejects.toThrow(/JWKS https:\/\/x\/jwks is unavailable: refused/);
    expect(fetches).toBe(1);
    t = 30_000;
    await expect(jwtVerify(await sign(key), cache('https://x/jwks'))).rejects.toThrow();
    expect(fetches).toBe(2);
  });

  it('treats a document that is not a key set as a failed fetch', async () => {
    const key = await keyPair('a');
    const cache = createJwksCache({ fetchJson: async () => ({ not: 'a key set' }) });
    await expect(jwtVerify(await sign(key), cache('https://x/jwks'))).rejects.toThrow(/unavailable/);
  });

  it('keeps at most maxEntries URLs', async () => {
    const key = await keyPair('a');
    const asked: string[] = [];
    const cache = createJwksCache({ maxEntries: 2, fetchJson: async (url) => (asked.push(url), { keys: [key.jwk] }) });
    const jwt = await sign(key);
    for (const url of ['1', '2', '3', '1']) await jwtVerify(jwt, cache(url));
    expect(asked).toEqual(['1', '2', '3', '1']);
  });
});
