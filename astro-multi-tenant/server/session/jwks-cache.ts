import { createLocalJWKSet, errors, type JSONWebKeySet, type JWTVerifyGetKey } from 'jose';
import { LRUCache } from 'lru-cache';

/**
 * Remote JWKS documents (a site's `auth.token.jwksUrl`), fetched with the guarded outbound client
 * (http/outbound-fetch.ts) instead of jose's createRemoteJWKSet, whose own fetch would go anywhere
 * the URL points. Behaves like jose's remote set otherwise:
 * - one cached key set per URL, reused for `maxAgeMs`, in a bounded LRU of `maxEntries` URLs;
 * - a token whose `kid` is not in the set refetches it, at most once per `cooldownMs` (key rotation);
 * - a failed fetch is remembered for `cooldownMs` too, so a site pointing at a dead or refused
 *   address costs one outbound attempt per cooldown, not one per sign-in;
 * - concurrent sign-ins share one fetch.
 *
 * @see https://github.com/panva/jose/blob/main/docs/jwks/remote/functions/createRemoteJWKSet.md
 */
export interface JwksCacheOptions {
  /** GETs the URL; resolves with the parsed JSON, rejects when it cannot (refused, status, not JSON). */
  fetchJson: (url: string) => Promise<unknown>;
  now?: () => number;
  maxEntries?: number;
  maxAgeMs?: number;
  cooldownMs?: number;
}

type Entry = { ok: true; keys: JWTVerifyGetKey; fetchedAt: number } | { ok: false; error: Error; fetchedAt: number };

export function createJwksCache(options: JwksCacheOptions) {
  const now = options.now ?? Date.now;
  const maxAgeMs = options.maxAgeMs ?? 600_000;
  const cooldownMs = options.cooldownMs ?? 30_000;
  const entries = new LRUCache<string, Entry>({ max: options.maxEntries ?? 1000 });
  const inFlight = new Map<string, Promise<Entry>>();

  function load(url: string): Promise<Entry> {
    let pending = inFlight.get(url);
    if (!pending) {
      pending = options
        .fetchJson(url)
        .then(
          (json): Entry => ({ ok: true, keys: createLocalJWKSet(json as JSONWebKeySet), fetchedAt: now() }),
          (error: Error): Entry => ({ ok: false, error, fetchedAt: now() }),
        )
        .catch((error: Error): Entry => ({ ok: false, error, fetchedAt: now() }))
        .then((entry) => {
          entries.set(url, entry);
          inFlight.delete(url);
          return entry;
        });
      inFlight.set(url, pending);
    }
    return pending;
  }

  async function current(url: string): Promise<Entry> {
    const entry = entries.get(url);
    if (!entry) return load(url);
    const age = now() - entry.fetchedAt;
    if ((entry.ok && age >= maxAgeMs) || (!entry.ok && age >= cooldownMs)) return load(url);
    return entry;
  }

  /** A key resolver for jose's jwtVerify that reads the key set at `url` through the cache. */
  return function keySet(url: string): JWTVerifyGetKey {
    return async (header, token) => {
      let entry = await current(url);
      if (!entry.ok) throw new Error(`JWKS ${url} is unavailable: ${entry.error.message}`);
      try {
        return await entry.keys(header, token);
      } catch (error) {
        if (!(error instanceof errors.JWKSNoMatchingKey) || now() - entry.fetchedAt < cooldownMs) throw error;
        entry = await load(url);
        if (!entry.ok) throw new Error(`JWKS ${url} is unavailable: ${entry.error.message}`);
        return entry.keys(header, token);
      }
    };
  };
}

export type JwksCache = ReturnType<typeof createJwksCache>;
