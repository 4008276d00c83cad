import { createHash } from 'node:crypto';
import { LRUCache } from 'lru-cache';

/**
 * Rendered HTML of anonymous pages, per process. An entry is valid only for the ETag it was
 * rendered under, and the ETag is derived from the stat fingerprints of every input (site.json,
 * the CSS manifest, the page file) plus the build: those fingerprints come from the content
 * cache, which re-checks them every CONTENT_CHECK_MS. So an edit changes the ETag and the stale
 * entry is never served again, by the same mechanism (and within the same second) as everything
 * else, on every worker and machine, with no invalidation messages.
 */
export interface RenderCacheOptions {
  maxBytes: number;
  maxEntries: number;
}

export interface RenderCacheStats {
  hits: number;
  misses: number;
  stores: number;
}

export function createRenderCache(options: RenderCacheOptions) {
  const stats: RenderCacheStats = { hits: 0, misses: 0, stores: 0 };
  const lru = new LRUCache<string, { etag: string; body: Buffer }>({
    max: options.maxEntries,
    maxSize: options.maxBytes,
    sizeCalculation: (entry, key) => entry.body.length + key.length + 64,
  });
  return {
    get(key: string, etag: string): Buffer | undefined {
      const entry = lru.get(key);
      if (entry && entry.etag === etag) {
        stats.hits++;
        return entry.body;
      }
      if (entry) lru.delete(key);
      stats.misses++;
      return undefined;
    },
    set(key: string, etag: string, body: Buffer) {
      if (body.length + key.length + 64 > options.maxBytes) return;
      lru.set(key, { etag, body });
      stats.stores++;
    },
    stats: stats as Readonly<RenderCacheStats>,
    get size() {
      return lru.size;
    },
    get bytes() {
      return lru.calculatedSize;
    },
  };
}

export type RenderCache = ReturnType<typeof createRenderCache>;

/** One page at one origin: the canonical URL and links inside the HTML depend on both. */
export function renderKey(siteId: string, origin: string, path: string): string {
  return `${siteId}\0${origin}\0${path}`;
}

/** A weak ETag from the inputs of a render (weak: equal meaning, not promised equal bytes). */
export function inputsETag(parts: readonly string[]): string {
  return `W/"${createHash('sha256').update(parts.join('\0')).digest('base64url').slice(0, 27)}"`;
}

const memo = new WeakMap<object, { parts: readonly string[]; etag: string }>();

/**
 * inputsETag, remembered on the object the inputs belong to (a cached page): the same inputs come
 * back on every request, and a WeakMap entry goes away with the page when the content cache drops
 * it, where a global memo would hold ten thousand keys for pages long evicted.
 */
export function memoisedETag(owner: object, parts: readonly string[]): string {
  const known = memo.get(owner);
  if (known && known.parts.length === parts.length && known.parts.every((part, i) => part === parts[i])) return known.etag;
  const etag = inputsETag(parts);
  memo.set(owner, { parts, etag });
  return etag;
}

/** If-None-Match against one ETag, with weak comparison as RFC 9110 §13.1.2 asks for GET/HEAD. */
export function matchesIfNoneMatch(header: string | undefined, etag: string): boolean {
  if (!header) return false;
  if (header.trim() === '*') return true;
  const opaque = (tag: string) => tag.trim().replace(/^W\//, '');
  const wanted = opaque(etag);
  return header.split(',').some((tag) => opaque(tag) === wanted);
}
