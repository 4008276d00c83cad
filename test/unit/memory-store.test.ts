import { describe, it, expect, beforeEach, afterEach, vi } from 'vitest';
import { createMemorySessionStore } from '../../astro-multi-tenant/server/session/memory-store.ts';
import type { SessionRecord, SessionStore } from '../../astro-multi-tenant/server/session/store.ts';

const IDLE = 600;

function record(site: string, id: string, user = 'alice@example.com'): SessionRecord {
  return { site, id, user, name: 'Alice', method: 'password', createdAt: 1 };
}

describe('memory session store', () => {
  let t: number;
  let store: SessionStore;
  const advance = (seconds: number) => {
    t += seconds * 1000;
  };

  beforeEach(() => {
    t = Date.UTC(2030, 0, 1);
    store = createMemorySessionStore(() => t);
  });

  afterEach(async () => {
    await store.close();
  });

  it('says it is the memory store and answers ping', async () => {
    expect(store.kind).toBe('memory');
    await expect(store.ping()).resolves.toBeUndefined();
  });

  it('returns a session it created', async () => {
    await store.create(record('alpha', 's1'), IDLE);
    expect(await store.get('alpha', 's1', IDLE)).toEqual(record('alpha', 's1'));
  });

  it('returns null for a session id it never saw', async () => {
    expect(await store.get('alpha', 'nope', IDLE)).toBeNull();
  });

  it('expires a session left idle for longer than its TTL', async () => {
    await store.create(record('alpha', 's1'), IDLE);
    advance(IDLE - 1);
    expect(await store.get('alpha', 's1', IDLE)).not.toBeNull();
    advance(IDLE);
    expect(await store.get('alpha', 's1', IDLE)).toBeNull();
  });

  it('expires exactly at the idle TTL', async () => {
    await store.create(record('alpha', 's1'), IDLE);
    advance(IDLE);
    expect(await store.get('alpha', 's1', IDLE)).toBeNull();
  });

  it('slides the expiry on every read, so a session in use stays alive', async () => {
    await store.create(record('alpha', 's1'), IDLE);
    for (let i = 0; i < 5; i++) {
      advance(IDLE - 10);
      expect(await store.get('alpha', 's1', IDLE), `read ${i}`).not.toBeNull();
    }
    // Five idle periods have passed since creation, yet the session lives; one more idle period ends it.
    advance(IDLE);
    expect(await store.get('alpha', 's1', IDLE)).toBeNull();
  });

  it('uses the TTL given to get for the new expiry', async () => {
    await store.create(record('alpha', 's1'), 60);
    expect(await store.get('alpha', 's1', 3600)).not.toBeNull();
    advance(1800);
    expect(await store.get('alpha', 's1', 3600)).not.toBeNull();
  });

  it('destroys one session and leaves the user\'s others', async () => {
    await store.create(record('alpha', 's1'), IDLE);
    await store.create(record('alpha', 's2'), IDLE);
    await store.destroy('alpha', 's1');
    expect(await store.get('alpha', 's1', IDLE)).toBeNull();
    expect(await store.get('alpha', 's2', IDLE)).not.toBeNull();
    expect(await store.destroyAllForUser('alpha', 'alice@example.com')).toBe(1);
  });

  it('ignores destroying a session that does not exist', async () => {
    await expect(store.destroy('alpha', 'nope')).resolves.toBeUndefined();
  });

  it('destroys every session of one user on one site and counts them', async () => {
    await store.create(record('alpha', 's1'), IDLE);
    await store.create(record('alpha', 's2'), IDLE);
    await store.create(record('alpha', 's3', 'bob@example.com'), IDLE);
    expect(await store.destroyAllForUser('alpha', 'alice@example.com')).toBe(2);
    expect(await store.get('alpha', 's1', IDLE)).toBeNull();
    expect(await store.get('alpha', 's2', IDLE)).toBeNull();
    expect(await store.get('alpha', 's3', IDLE)).not.toBeNull();
    expect(await store.destroyAllForUser('alpha', 'alice@example.com')).toBe(0);
  });

  it('keeps the same user id\'s sessions on another site when signing out everywhere on one', async () => {
    await store.create(record('alpha', 's1', 'idp:42'), IDLE);
    await store.create(record('beta', 's2', 'idp:42'), IDLE);
    expect(await store.destroyAllForUser('alpha', 'idp:42')).toBe(1);
    expect(await store.get('alpha', 's1', IDLE)).toBeNull();
    expect(await store.get('beta', 's2', IDLE)).toEqual(record('beta', 's2', 'idp:42'));
  });

  it('does not count sessions that already expired when signing out everywhere', async () => {
    await store.create(record('alpha', 's1'), 60);
    await store.create(record('alpha', 's2'), IDLE);
    advance(120);
    expect(await store.get('alpha', 's1', IDLE)).toBeNull();
    expect(await store.destroyAllForUser('alpha', 'alice@example.com')).toBe(1);
  });

  it('does not find a session id from site A under site B', async () => {
    await store.create(record('alpha', 's1'), IDLE);
    expect(await store.get('beta', 's1', IDLE)).toBeNull();
    await store.destroy('beta', 's1');
    expect(await store.get('alpha', 's1', IDLE)).not.toBeNull();
  });

  it('keeps two sites\' sessions with the same id apart', async () => {
    await store.create({ ...record('alpha', 'same'), name: 'A' }, IDLE);
    await store.create({ ...record('beta', 'same'), name: 'B' }, IDLE);
    expect((await store.get('alpha', 'same', IDLE))?.name).toBe('A');
    expect((await store.get('beta', 'same', IDLE))?.name).toBe('B');
  });

  describe('sign-in attempt limiter', () => {
    afterEach(() => {
      vi.useRealTimers();
    });

    it('allows the limit, refuses every attempt after it, and says how long until the window ends', async () => {
      vi.useFakeTimers({ now: Date.UTC(2030, 0, 1) });
      const limiter = store.attemptLimiter({ maxAttempts: 3, windowSeconds: 60 });
      for (let i = 0; i < 3; i++) expect((await limiter.take('alpha:192.0.2.1')).allowed, `attempt ${i + 1}`).toBe(true);
      vi.advanceTimersByTime(20_000);
      expect(await limiter.take('alpha:192.0.2.1')).toEqual({ allowed: false, retryAfterSeconds: 40 });
      expect(await limiter.take('alpha:192.0.2.1')).toEqual({ allowed: false, retryAfterSeconds: 40 });
    });

    it('lets exactly the limit through when many attempts arrive at once', async () => {
      const limiter = store.attemptLimiter({ maxAttempts: 10, windowSeconds: 60 });
      const decisions = await Promise.all(Array.from({ length: 60 }, () => limiter.take('alpha:192.0.2.2')));
      expect(decisions.filter((d) => d.allowed)).toHaveLength(10);
    });

    it('starts a new window once the old one has passed, without later attempts extending it', async () => {
      vi.useFakeTimers({ now: Date.UTC(2030, 0, 1) });
      const limiter = store.attemptLimiter({ maxAttempts: 2, windowSeconds: 60 });
      await limiter.take('k');
      vi.advanceTimersByTime(59_000);
      await limiter.take('k');
      expect((await limiter.take('k')).allowed).toBe(false);
      vi.advanceTimersByTime(1_000);
      expect((await limiter.take('k')).allowed).toBe(true);
    });

    it('gives an attempt back on refund, so a success does not use up the allowance', async () => {
      const limiter = store.attemptLimiter({ maxAttempts: 2, windowSeconds: 60 });
      for (let i = 0; i < 5; i++) {
        expect((await limiter.take('k')).allowed, `success ${i + 1}`).toBe(true);
        await limiter.refund('k');
      }
      await limiter.take('k');
      await limiter.take('k');
      expect((await limiter.take('k')).allowed).toBe(false);
    });

    it('counts each key on its own', async () => {
      const limiter = store.attemptLimiter({ maxAttempts: 1, windowSeconds: 60 });
      expect((await limiter.take('alpha:1.2.3.4')).allowed).toBe(true);
      expect((await limiter.take('alpha:1.2.3.4')).allowed).toBe(false);
      expect((await limiter.take('beta:1.2.3.4')).allowed).toBe(true);
      expect((await limiter.take('alpha:5.6.7.8')).allowed).toBe(true);
    });
  });
});
