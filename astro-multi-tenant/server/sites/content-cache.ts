import { LRUCache } from 'lru-cache';

/**
 * One LRU for everything loaded from site folders (site configs and rendered pages), bounded both
 * by entry count and by bytes so that ten thousand folders never means ten thousand sites in
 * memory. Entries are revalidated against the file system at most once per `checkIntervalMs`
 * (a `stat` compared with the fingerprint the entry was built from): that is what makes an edit
 * visible within a second on every worker and every machine that sees the files, with no watcher
 * and no message bus to lose an event.
 */
export interface CacheStats {
  hits: number;
  misses: number;
  revalidations: number;
  reloads: number;
  evictions: number;
}

export interface Loaded<T> {
  value: T;
  /** Approximate bytes held, for the byte bound. */
  bytes: number;
  /**
   * The identity the value was actually built from, when the load knows it better than the
   * fingerprint taken before it (a component's imports are known only once it is read); kept in
   * place of that fingerprint, so the next check compares like with like.
   */
  fingerprint?: string;
}

export interface CacheSource<T> {
  /**
   * A cheap identity of the inputs (stat results). `null` means the thing no longer exists.
   * `previous` is the value held, if any: a value built from several files (a component and the
   * components it imports) says which files its identity is made of.
   */
  fingerprint(previous?: T): Promise<string | null>;
  load(fingerprint: string): Promise<Loaded<T>>;
  /**
   * Optional, for a key not held at all (a cold load): loads and fingerprints in one go, for a
   * source whose reads yield the inputs' identity anyway (the fstat of the descriptor a file is
   * read from), so a cold load makes no separate fingerprint stat first. The fingerprint returned
   * must be the one `fingerprint()` would have given for the same inputs (the next check compares
   * them), taken before the inputs were read. `null`: the thing does not exist (nothing is kept).
   */
  loadCold?(): Promise<(Loaded<T> & { fingerprint: string }) | null>;
}

interface Entry {
  value: unknown;
  fingerprint: string;
  checkedAt: number;
  bytes: number;
}

export interface ContentCacheOptions {
  maxEntries: number;
  maxBytes: number;
  checkIntervalMs: number;
  now?: () => number;
}

export interface ContentCache {
  get<T>(key: string, source: CacheSource<T>): Promise<T | null>;
  /** Forget one key (or every key starting with a prefix) so the next request reloads it. */
  invalidate(keyOrPrefix: string, prefix?: boolean): void;
  /** Values held under keys starting with `prefix`, without touching recency or revalidating. */
  peekAll(prefix: string): Array<[string, unknown]>;
  readonly stats: Readonly<CacheStats>;
  readonly size: number;
  readonly bytes: number;
}

export function createContentCache(options: ContentCacheOptions): ContentCache {
  const now = options.now ?? Date.now;
  const stats: CacheStats = { hits: 0, misses: 0, revalidations: 0, reloads: 0, evictions: 0 };
  const lru = new LRUCache<string, Entry>({
    max: options.maxEntries,
    maxSize: options.maxBytes,
    sizeCalculation: (entry) => Math.max(1, entry.bytes),
    dispose: (_value, _key, reason) => {
      if (reason === 'evict') stats.evictions++;
    },
  });
  // Concurrent requests for the same cold key share one load instead of stampeding the disk.
  const inflight = new Map<string, Promise<unknown>>();

  function keep(key: string, loaded: Loaded<unknown>, fingerprint: string): void {
    // An entry larger than the whole budget is served but not kept.
    if (loaded.bytes <= options.maxBytes) {
      lru.set(key, { value: loaded.value, fingerprint: loaded.fingerprint ?? fingerprint, checkedAt: now(), bytes: loaded.bytes });
    } else {
      lru.delete(key);
    }
  }

  async function refresh<T>(key: string, source: CacheSource<T>, previous: Entry | undefined): Promise<T | null> {
    if (!previous && source.loadCold) {
      const loaded = await source.loadCold();
      if (loaded === null) {
        lru.delete(key);
        return null;
      }
      keep(key, loaded, loaded.fingerprint);
      return loaded.value;
    }
    const fingerprint = await source.fingerprint(previous?.value as T | undefined);
    if (fingerprint === null) {
      lru.delete(key);
      return null;
    }
    if (previous && previous.fingerprint === fingerprint) {
      previous.checkedAt = now();
      stats.revalidations++;
      return previous.value as T;
    }
    if (previous) stats.reloads++;
    const loaded = await source.load(fingerprint);
    keep(key, loaded, fingerprint);
    return loaded.value;
  }

  return {
    async get<T>(key: string, source: CacheSource<T>): Promise<T | null> {
      const entry = lru.get(key);
      if (entry && now() - entry.checkedAt < options.checkIntervalMs) {
        stats.hits++;
        return entry.value as T;
      }
      if (!entry) stats.misses++;
      const pending = inflight.get(key);
      if (pending) return pending as Promise<T | null>;
      const promise = refresh(key, source, entry).finally(() => inflight.delete(key));
      inflight.set(key, promise);
      return promise;
    },
    invalidate(keyOrPrefix, prefix = false) {
      if (!prefix) {
        lru.delete(keyOrPrefix);
        return;
      }
      for (const key of lru.keys()) if (key.startsWith(keyOrPrefix)) lru.delete(key);
    },
    peekAll(prefix) {
      const out: Array<[string, unknown]> = [];
      for (const [key, entry] of lru.entries()) if (key.startsWith(prefix)) out.push([key, entry.value]);
      return out;
    },
    stats,
    get size() {
      return lru.size;
    },
    get bytes() {
      return lru.calculatedSize;
    },
  };
}
