import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtemp, readFile, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createContentCache, type CacheSource, type ContentCacheOptions } from '../../astro-multi-tenant/server/sites/content-cache.ts';
import { fileFingerprint } from '../../astro-multi-tenant/server/sites/fs-fingerprint.ts';

/** A source that never changes, counting how often it is asked to load. */
function fixed<T>(value: T, bytes = 10) {
  const counter = { loads: 0, fingerprints: 0 };
  const source: CacheSource<T> = {
    async fingerprint() {
      counter.fingerprints++;
      return 'v1';
    },
    async load() {
      counter.loads++;
      return { value, bytes };
    },
  };
  return { source, counter };
}

function cache(overrides: Partial<ContentCacheOptions> = {}) {
  return createContentCache({ maxEntries: 100, maxBytes: 1_000_000, checkIntervalMs: 60_000, ...overrides });
}

/** Poll until `check` is true; fails with the last value after a generous deadline. */
async function eventually<T>(read: () => Promise<T>, check: (value: T) => boolean, deadlineMs = 10_000): Promise<T> {
  const giveUpAt = Date.now() + deadlineMs;
  for (;;) {
    const value = await read();
    if (check(value)) return value;
    if (Date.now() > giveUpAt) throw new Error(`condition not met; last value ${JSON.stringify(value)}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('content cache: hits, misses and stats', () => {
  it('loads a key once and then serves it from memory', async () => {
    const c = cache();
    const { source, counter } = fixed('hello');
    expect(await c.get('k', source)).toBe('hello');
    expect(await c.get('k', source)).toBe('hello');
    expect(await c.get('k', source)).toBe('hello');
    expect(counter.loads).toBe(1);
    expect(c.stats).toMatchObject({ hits: 2, misses: 1, evictions: 0 });
  });

  it('keeps different keys apart', async () => {
    const c = cache();
    expect(await c.get('a', fixed('A').source)).toBe('A');
    expect(await c.get('b', fixed('B').source)).toBe('B');
    expect(await c.get('a', fixed('not used').source)).toBe('A');
    expect(c.size).toBe(2);
    expect(c.stats).toMatchObject({ hits: 1, misses: 2 });
  });

  it('answers null, and keeps nothing, when the source no longer exists', async () => {
    const c = cache();
    let loads = 0;
    const gone: CacheSource<string> = {
      fingerprint: async () => null,
      load: async () => {
        loads++;
        return { value: 'never', bytes: 1 };
      },
    };
    expect(await c.get('k', gone)).toBeNull();
    expect(loads).toBe(0);
    expect(c.size).toBe(0);
  });

  it('forgets one key, or every key with a prefix, on invalidate', async () => {
    const c = cache();
    for (const key of ['page\0a\0x', 'page\0a\0y', 'page\0b\0x', 'site\0a']) await c.get(key, fixed(key).source);
    c.invalidate('site\0a');
    expect(c.size).toBe(3);
    c.invalidate('page\0a\0', true);
    expect(c.size).toBe(1);
    const again = fixed('reloaded');
    expect(await c.get('page\0a\0x', again.source)).toBe('reloaded');
    expect(again.counter.loads).toBe(1);
  });
});

describe('content cache: bounded memory', () => {
  it('holds at most maxEntries entries, evicting the least recently used', async () => {
    const c = cache({ maxEntries: 3 });
    for (const key of ['a', 'b', 'c']) await c.get(key, fixed(key).source);
    await c.get('a', fixed('a').source); // a is now the most recently used
    await c.get('d', fixed('d').source);
    expect(c.size).toBe(3);
    expect(c.stats.evictions).toBe(1);
    const b = fixed('b');
    await c.get('b', b.source);
    expect(b.counter.loads).toBe(1); // b was evicted
    const a = fixed('a');
    await c.get('a', a.source);
    expect(a.counter.loads).toBe(0); // a was kept
  });

  it('holds at most maxBytes bytes, evicting entries to make room', async () => {
    const c = cache({ maxEntries: 1000, maxBytes: 100 });
    for (let i = 0; i < 10; i++) await c.get(`k${i}`, fixed(i, 40).source);
    expect(c.bytes).toBeLessThanOrEqual(100);
    expect(c.size).toBe(2);
    expect(c.stats.evictions).toBe(8);
    const newest = fixed(9, 40);
    expect(await c.get('k9', newest.source)).toBe(9);
    expect(newest.counter.loads).toBe(0);
  });

  it('serves an entry larger than the whole budget without keeping it or evicting others', async () => {
    const c = cache({ maxBytes: 100 });
    await c.get('small', fixed('s', 50).source);
    const huge = fixed('huge', 101);
    expect(await c.get('huge', huge.source)).toBe('huge');
    expect(await c.get('huge', huge.source)).toBe('huge');
    expect(huge.counter.loads).toBe(2);
    expect(c.size).toBe(1);
    expect(c.bytes).toBe(50);
    expect(c.stats.evictions).toBe(0);
  });
});

describe('content cache: revalidation', () => {
  it('does not look at the source again within the check interval', async () => {
    let clock = 1000;
    const c = cache({ checkIntervalMs: 500, now: () => clock });
    const { source, counter } = fixed('x');
    await c.get('k', source);
    clock += 499;
    await c.get('k', source);
    expect(counter.fingerprints).toBe(1);
  });

  it('re-checks the fingerprint after the interval and keeps the entry when it is unchanged', async () => {
    let clock = 1000;
    const c = cache({ checkIntervalMs: 500, now: () => clock });
    const { source, counter } = fixed('x');
    await c.get('k', source);
    clock += 500;
    expect(await c.get('k', source)).toBe('x');
    expect(counter.fingerprints).toBe(2);
    expect(counter.loads).toBe(1);
    expect(c.stats.revalidations).toBe(1);
    // The check restarts the interval.
    clock += 499;
    await c.get('k', source);
    expect(counter.fingerprints).toBe(2);
  });

  it('reloads when the fingerprint changed, and drops the entry when the source disappeared', async () => {
    let clock = 0;
    let version: string | null = 'v1';
    const c = cache({ checkIntervalMs: 100, now: () => clock });
    const source: CacheSource<string> = {
      fingerprint: async () => version,
      load: async (fp) => ({ value: `content ${fp}`, bytes: 10 }),
    };
    expect(await c.get('k', source)).toBe('content v1');
    version = 'v2';
    expect(await c.get('k', source)).toBe('content v1'); // still within the interval
    clock += 100;
    expect(await c.get('k', source)).toBe('content v2');
    expect(c.stats.reloads).toBe(1);
    version = null;
    clock += 100;
    expect(await c.get('k', source)).toBeNull();
    expect(c.size).toBe(0);
  });
});

describe('content cache: real files', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'content-cache-test-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  function fileSource(path: string) {
    const counter = { loads: 0 };
    const source: CacheSource<string> = {
      fingerprint: () => fileFingerprint(path),
      async load() {
        counter.loads++;
        const text = await readFile(path, 'utf8');
        return { value: text, bytes: text.length };
      },
    };
    return { source, counter };
  }

  it('re-reads a file changed on disk once the check interval has passed', async () => {
    const path = join(dir, 'page.md');
    await writeFile(path, 'first version');
    const c = cache({ checkIntervalMs: 20 });
    const { source, counter } = fileSource(path);
    expect(await c.get('page', source)).toBe('first version');
    // A different size guarantees a different fingerprint even on coarse-mtime file systems.
    await writeFile(path, 'second, longer version');
    const seen = await eventually(() => c.get('page', source), (v) => v === 'second, longer version');
    expect(seen).toBe('second, longer version');
    expect(counter.loads).toBe(2);
    expect(c.stats.reloads).toBe(1);
  });

  it('notices a file replaced atomically by rename', async () => {
    const path = join(dir, 'site.json');
    await writeFile(path, '{"v":1}');
    const c = cache({ checkIntervalMs: 20 });
    const { source } = fileSource(path);
    expect(await c.get('site', source)).toBe('{"v":1}');
    const { rename } = await import('node:fs/promises');
    await writeFile(`${path}.tmp`, '{"v":2}');
    await rename(`${path}.tmp`, path);
    expect(await eventually(() => c.get('site', source), (v) => v === '{"v":2}')).toBe('{"v":2}');
  });

  it('answers null once the file is deleted', async () => {
    const path = join(dir, 'gone.md');
    await writeFile(path, 'here');
    const c = cache({ checkIntervalMs: 20 });
    const { source } = fileSource(path);
    expect(await c.get('gone', source)).toBe('here');
    await unlink(path);
    expect(await eventually(() => c.get('gone', source), (v) => v === null)).toBeNull();
    expect(c.size).toBe(0);
  });
});

describe('content cache: concurrent loads', () => {
  it('shares one load between concurrent requests for the same cold key', async () => {
    const c = cache();
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let loads = 0;
    const slow: CacheSource<{ id: number }> = {
      fingerprint: async () => 'fp',
      async load() {
        loads++;
        await gate;
        return { value: { id: loads }, bytes: 10 };
      },
    };
    const pending = Array.from({ length: 5 }, () => c.get('k', slow));
    release();
    const results = await Promise.all(pending);
    expect(loads).toBe(1);
    for (const r of results) expect(r).toBe(results[0]);
    expect(results[0]).toEqual({ id: 1 });
    expect(c.size).toBe(1);
  });

  it('does not share a load between different keys', async () => {
    const c = cache();
    const a = fixed('A');
    const b = fixed('B');
    const [ra, rb] = await Promise.all([c.get('a', a.source), c.get('b', b.source)]);
    expect([ra, rb]).toEqual(['A', 'B']);
    expect(a.counter.loads + b.counter.loads).toBe(2);
  });

  it('lets a later request start a fresh load after a failed one', async () => {
    const c = cache();
    let fail = true;
    const flaky: CacheSource<string> = {
      fingerprint: async () => 'fp',
      async load() {
        if (fail) throw new Error('disk hiccup');
        return { value: 'ok', bytes: 1 };
      },
    };
    await expect(c.get('k', flaky)).rejects.toThrow('disk hiccup');
    fail = false;
    expect(await c.get('k', flaky)).toBe('ok');
  });
});

describe('content cache: values built from several files', () => {
  it('hands the held value to fingerprint(), and keeps the fingerprint a load says it was built from', async () => {
    let now = 0;
    const c = cache({ checkIntervalMs: 100, now: () => now });
    // A value made of an entry file and whatever it names; only the load knows what it names.
    const stamps: Record<string, string> = { entry: 'e1', dep: 'd1' };
    const seen: Array<string[] | undefined> = [];
    let loads = 0;
    const source: CacheSource<{ files: string[]; built: string }> = {
      async fingerprint(previous) {
        seen.push(previous?.files);
        return (previous?.files ?? ['entry']).map((f) => stamps[f]).join('|');
      },
      async load() {
        loads++;
        const built = `${stamps.entry}|${stamps.dep}`;
        return { value: { files: ['entry', 'dep'], built }, bytes: 10, fingerprint: built };
      },
    };
    expect((await c.get('k', source))!.built).toBe('e1|d1');
    now = 200;
    await c.get('k', source);
    expect(seen).toEqual([undefined, ['entry', 'dep']]);
    expect(loads).toBe(1);
    stamps.dep = 'd2';
    now = 400;
    expect((await c.get('k', source))!.built).toBe('e1|d2');
    expect(loads).toBe(2);
  });
});
