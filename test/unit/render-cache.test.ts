import { describe, it, expect } from 'vitest';
import { createRenderCache, inputsETag, matchesIfNoneMatch, memoisedETag, renderKey } from '../../astro-multi-tenant/server/render/render-cache.ts';

describe('page ETags', () => {
  it('changes when any input changes, and is weak', () => {
    const base = ['build1', 'site-v1', 'page-v1', 'https://a.example', '/css/a.css'];
    const etag = inputsETag(base);
    expect(etag).toMatch(/^W\/"[A-Za-z0-9_-]{27}"$/);
    for (let i = 0; i < base.length; i++) {
      const changed = base.map((part, j) => (j === i ? `${part}x` : part));
      expect(inputsETag(changed)).not.toBe(etag);
    }
  });

  it('remembers the ETag on the page it belongs to, and recomputes when an input changes', () => {
    const page = {};
    const first = memoisedETag(page, ['b', 's1', 'p1', 'https://a.example', '']);
    expect(memoisedETag(page, ['b', 's1', 'p1', 'https://a.example', ''])).toBe(first);
    const edited = memoisedETag(page, ['b', 's1', 'p2', 'https://a.example', '']);
    expect(edited).not.toBe(first);
    expect(edited).toBe(inputsETag(['b', 's1', 'p2', 'https://a.example', '']));
    // Another origin of the same page (http vs https) is another ETag, never the remembered one.
    expect(memoisedETag(page, ['b', 's1', 'p2', 'http://a.example', ''])).toBe(inputsETag(['b', 's1', 'p2', 'http://a.example', '']));
  });

  it('matches If-None-Match weakly, in lists and with *', () => {
    const etag = 'W/"abc"';
    expect(matchesIfNoneMatch('"abc"', etag)).toBe(true);
    expect(matchesIfNoneMatch('W/"x", W/"abc"', etag)).toBe(true);
    expect(matchesIfNoneMatch('*', etag)).toBe(true);
    expect(matchesIfNoneMatch('W/"abd"', etag)).toBe(false);
    expect(matchesIfNoneMatch(undefined, etag)).toBe(false);
  });
});

describe('createRenderCache', () => {
  it('answers only for the ETag an entry was rendered under, and drops the stale entry', () => {
    const cache = createRenderCache({ maxBytes: 1024 * 1024, maxEntries: 10 });
    const key = renderKey('blog', 'https://blog.example', '/');
    cache.set(key, 'W/"v1"', Buffer.from('<p>old</p>'));
    expect(cache.get(key, 'W/"v1"')?.toString()).toBe('<p>old</p>');
    expect(cache.get(key, 'W/"v2"')).toBeUndefined();
    expect(cache.size).toBe(0);
    expect(cache.stats).toMatchObject({ hits: 1, misses: 1, stores: 1 });
  });

  it('keeps one site apart from another and one origin apart from another', () => {
    expect(renderKey('a', 'https://a.example', '/')).not.toBe(renderKey('b', 'https://a.example', '/'));
    expect(renderKey('a', 'https://a.example', '/')).not.toBe(renderKey('a', 'http://a.example', '/'));
  });

  it('never stores a body larger than its whole budget, and stays within its byte bound', () => {
    const cache = createRenderCache({ maxBytes: 1000, maxEntries: 100 });
    cache.set('big', 'e', Buffer.alloc(2000));
    expect(cache.size).toBe(0);
    for (let i = 0; i < 20; i++) cache.set(`k${i}`, 'e', Buffer.alloc(200));
    expect(cache.bytes).toBeLessThanOrEqual(1000);
    expect(cache.get('k19', 'e')).toBeDefined();
    expect(cache.get('k0', 'e')).toBeUndefined();
  });
});
