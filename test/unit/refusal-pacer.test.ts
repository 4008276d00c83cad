import { describe, expect, it } from 'vitest';
import type { EventLoopUtilization } from 'node:perf_hooks';
import { createRefusalPacer } from '../../astro-multi-tenant/server/pipeline/refusal-pacer.ts';

/**
 * A fake event loop: `busyShare` of each elapsed ms is active time. The pacer reads utilisation
 * the way Node's performance.eventLoopUtilization does: a mark, then the delta since it.
 */
function fakeLoop() {
  let clock = 0;
  let active = 0;
  let timers: Array<{ at: number; done: () => void }> = [];
  const intervals: Array<{ every: number; next: number; run: () => void }> = [];
  const loop = {
    busyShare: 0,
    /** Whether sites' own requests are being answered (each ms counts one, via `pacer.served()`). */
    siteTraffic: true,
    pacer: undefined as { served(): void } | undefined,
    /** Moves the clock 1 ms at a time, running due intervals and timers like the event loop would. */
    advance(ms: number) {
      for (let i = 0; i < ms; i++) {
        clock += 1;
        active += loop.busyShare;
        if (loop.siteTraffic) loop.pacer?.served();
        for (const t of intervals) if (clock >= t.next) (t.next += t.every), t.run();
        const due = timers.filter((t) => t.at <= clock);
        timers = timers.filter((t) => t.at > clock);
        for (const t of due) t.done();
      }
    },
    utilization(previous?: EventLoopUtilization): EventLoopUtilization {
      const now = { idle: clock - active, active, utilization: clock > 0 ? active / clock : 0 };
      if (!previous) return now;
      const span = clock - (previous.idle + previous.active);
      const busy = active - previous.active;
      return { idle: span - busy, active: busy, utilization: span > 0 ? busy / span : 0 };
    },
    every: (ms: number, run: () => void) => void intervals.push({ every: ms, next: clock + ms, run }),
    wait: (ms: number, done: () => void) => void timers.push({ at: clock + ms, done }),
    pending: () => timers.length,
    intervals: () => intervals.length,
  };
  return loop;
}

const pacerOn = (loop: ReturnType<typeof fakeLoop>, extra: Partial<Parameters<typeof createRefusalPacer>[0]> = {}) =>
  (loop.pacer = createRefusalPacer({ delayMs: 25, sampleMs: 100, utilization: loop.utilization, every: loop.every, wait: loop.wait, ...extra }));

describe('the refusal pacer', () => {
  it('answers refusals at once while the worker is idle or lightly loaded: no promise, no timer', () => {
    for (const share of [0, 0.2, 0.49]) {
      const loop = fakeLoop();
      const pacer = pacerOn(loop);
      loop.busyShare = share;
      for (let i = 0; i < 20; i++) {
        loop.advance(30);
        expect(pacer.pace(), `share ${share}`).toBeUndefined();
      }
      expect(pacer.delayed).toBe(0);
      expect(loop.pending()).toBe(0);
    }
  });

  it('makes refusals wait delayMs while the worker is busy, and stops as soon as it is not', async () => {
    const loop = fakeLoop();
    const pacer = pacerOn(loop);
    loop.busyShare = 0.9;
    loop.advance(150);
    const waiting = pacer.pace();
    expect(waiting).toBeInstanceOf(Promise);
    let answered = false;
    void waiting!.then(() => (answered = true));
    loop.advance(24);
    await Promise.resolve();
    expect(answered).toBe(false);
    loop.advance(1);
    await Promise.resolve();
    expect(answered).toBe(true);
    expect(pacer.delayed).toBe(1);
    // The next sample after the load is gone answers at once again.
    loop.busyShare = 0.1;
    loop.advance(150);
    expect(pacer.pace()).toBeUndefined();
  });

  it('judges by the last full window only: a busy start-up long past delays nothing, a busy last window does', () => {
    const loop = fakeLoop();
    loop.busyShare = 1;
    const pacer = pacerOn(loop);
    loop.advance(100); // a busy first window (the worker starting)
    expect(pacer.pace()).toBeInstanceOf(Promise);
    loop.busyShare = 0;
    loop.advance(100); // then idle for one window
    expect(pacer.pace()).toBeUndefined();
    loop.busyShare = 0.6;
    loop.advance(99); // the window in progress does not count until it is full
    expect(pacer.pace()).toBeUndefined();
    loop.advance(1);
    expect(pacer.pace()).toBeInstanceOf(Promise);
    expect(pacer.delayed).toBe(2);
  });

  it('answers at once a worker busy with nothing but refusals, and waits again once a site is served in the window', () => {
    const loop = fakeLoop();
    const pacer = pacerOn(loop);
    loop.busyShare = 1;
    loop.siteTraffic = false;
    loop.advance(300);
    expect(pacer.pace()).toBeUndefined();
    loop.siteTraffic = true;
    loop.advance(100);
    expect(pacer.pace()).toBeInstanceOf(Promise);
    loop.siteTraffic = false;
    loop.advance(100);
    expect(pacer.pace()).toBeUndefined();
    expect(pacer.delayed).toBe(1);
  });

  it('holds at most maxWaiting refusals at once and answers the rest at once', () => {
    const loop = fakeLoop();
    const pacer = pacerOn(loop, { maxWaiting: 3 });
    loop.busyShare = 1;
    loop.advance(200);
    const answers = Array.from({ length: 5 }, () => pacer.pace());
    expect(answers.map((a) => a instanceof Promise)).toEqual([true, true, true, false, false]);
    loop.advance(25);
    expect(pacer.pace()).toBeInstanceOf(Promise);
    expect(pacer.delayed).toBe(4);
  });

  it('never waits with delayMs 0, however busy the worker is', () => {
    const loop = fakeLoop();
    const pacer = pacerOn(loop, { delayMs: 0 });
    loop.busyShare = 1;
    loop.advance(500);
    expect(pacer.pace()).toBeUndefined();
    expect(pacer.delayed).toBe(0);
    // Off means no sampling timer either.
    expect(loop.intervals()).toBe(0);
  });
});
