import { describe, it, expect } from 'vitest';
import { createSiteTraffic } from '../../astro-multi-tenant/server/ops/site-traffic.ts';

/** A clock the test moves by hand; starts at an arbitrary non-zero instant. */
function fakeClock(start = 1_700_000_000_000) {
  let t = start;
  return {
    now: () => t,
    /** Moves to `seconds` after the start. */
    at(seconds: number) {
      t = start + seconds * 1000;
    },
  };
}

/** Default geometry: 10 s slots, 30 of them (a 300 s ring). The start is slot-aligned. */
function setup() {
  const clock = fakeClock();
  const traffic = createSiteTraffic({ now: clock.now });
  return { clock, traffic };
}

const repeat = (n: number, fn: () => void) => {
  for (let i = 0; i < n; i++) fn();
};

describe('createSiteTraffic', () => {
  it('counts requests per site over the last 60 s and the last 300 s', () => {
    const { clock, traffic } = setup();
    clock.at(0);
    repeat(3, () => traffic.record('alpha', false));
    clock.at(200);
    repeat(2, () => traffic.record('alpha', false));
    traffic.record('beta', false);

    clock.at(205);
    const oneMinute = traffic.snapshot(60);
    const fiveMinutes = traffic.snapshot(300);
    expect(oneMinute).toEqual({ windowSeconds: 60, sites: { alpha: { requests: 2, errors: 0 }, beta: { requests: 1, errors: 0 } } });
    expect(fiveMinutes).toEqual({ windowSeconds: 300, sites: { alpha: { requests: 5, errors: 0 }, beta: { requests: 1, errors: 0 } } });
  });

  it('counts errors separately from requests', () => {
    const { clock, traffic } = setup();
    clock.at(1);
    traffic.record('alpha', false);
    traffic.record('alpha', true);
    traffic.record('alpha', true);
    traffic.record('beta', false);
    expect(traffic.snapshot(60).sites).toEqual({ alpha: { requests: 3, errors: 2 }, beta: { requests: 1, errors: 0 } });
  });

  it('lets a slot fall out of the window once it is a whole window old', () => {
    const { clock, traffic } = setup();
    clock.at(0);
    traffic.record('alpha', true);
    // The window is whole slots including the current one: the request stays until 60 s have passed.
    clock.at(59.999);
    expect(traffic.snapshot(60).sites.alpha).toEqual({ requests: 1, errors: 1 });
    clock.at(60);
    expect(traffic.snapshot(60).sites).toEqual({});
    // ...while the 5 minute window still holds it.
    expect(traffic.snapshot(300).sites.alpha).toEqual({ requests: 1, errors: 1 });
    clock.at(299.999);
    expect(traffic.snapshot(300).sites.alpha).toEqual({ requests: 1, errors: 1 });
    clock.at(300);
    expect(traffic.snapshot(300).sites).toEqual({});
  });

  it('only reports sites that had requests in the window asked for', () => {
    const { clock, traffic } = setup();
    clock.at(0);
    traffic.record('old', false);
    clock.at(120);
    traffic.record('recent', false);
    expect(Object.keys(traffic.snapshot(60).sites)).toEqual(['recent']);
    expect(Object.keys(traffic.snapshot(300).sites).sort()).toEqual(['old', 'recent']);
  });

  it('resets a slot reused after the ring wraps around instead of adding to its old count', () => {
    const { clock, traffic } = setup();
    clock.at(0);
    repeat(5, () => traffic.record('alpha', true));
    // Keep the site active in between so it is never pruned; only slot reuse is at play.
    clock.at(150);
    traffic.record('alpha', false);
    clock.at(300); // slot 30 lands on the same ring index as slot 0
    traffic.record('alpha', false);
    expect(traffic.snapshot(300).sites.alpha).toEqual({ requests: 2, errors: 0 });
    expect(traffic.snapshot(60).sites.alpha).toEqual({ requests: 1, errors: 0 });
  });

  it('forgets a site idle longer than the ring, so it comes back as a newcomer with fresh counts', () => {
    const { clock, traffic } = setup();
    clock.at(0);
    repeat(4, () => traffic.record('idle', true));
    clock.at(150);
    traffic.record('busy', false);

    clock.at(299.999);
    expect(Object.keys(traffic.snapshot(300).sites)).toEqual(['idle', 'busy']);

    clock.at(300); // 30 slots (the whole ring) since `idle` was last seen: the snapshot prunes it
    expect(traffic.snapshot(300).sites).toEqual({ busy: { requests: 1, errors: 0 } });

    clock.at(310);
    traffic.record('idle', false);
    traffic.record('busy', false);
    const after = traffic.snapshot(300);
    expect(after.sites.idle).toEqual({ requests: 1, errors: 0 });
    // The only public trace of pruning: a pruned site is re-created, so it is now listed after `busy`.
    expect(Object.keys(after.sites)).toEqual(['busy', 'idle']);
  });

  it('clamps the window to whole slots between one slot and the whole ring', () => {
    const { clock, traffic } = setup();
    clock.at(0);
    traffic.record('alpha', false);
    clock.at(5);
    expect(traffic.snapshot(0).windowSeconds).toBe(10);
    expect(traffic.snapshot(15).windowSeconds).toBe(20);
    expect(traffic.snapshot(3600)).toEqual({ windowSeconds: 300, sites: { alpha: { requests: 1, errors: 0 } } });
  });

  it('honours a custom slot size and ring length', () => {
    const clock = fakeClock(0);
    const traffic = createSiteTraffic({ now: clock.now, slotMs: 1000, slots: 5 });
    clock.at(0);
    traffic.record('alpha', false);
    clock.at(4.5);
    expect(traffic.snapshot(60)).toEqual({ windowSeconds: 5, sites: { alpha: { requests: 1, errors: 0 } } });
    clock.at(5);
    expect(traffic.snapshot(60).sites).toEqual({});
  });

  it('keeps counting right for a site busy across many windows (old slots are dropped as it goes)', () => {
    const { clock, traffic } = setup();
    for (let second = 0; second < 3000; second += 5) {
      clock.at(second);
      traffic.record('busy', second % 10 === 0);
    }
    clock.at(2999);
    // The 60 s window holds seconds 2940–2995: 12 requests, the 6 on whole tens being errors.
    expect(traffic.snapshot(60).sites.busy).toEqual({ requests: 12, errors: 6 });
    expect(traffic.snapshot(300).sites.busy).toEqual({ requests: 60, errors: 30 });
  });

  it('holds one small record per site seen in the window, and none once they fall out', () => {
    const { clock, traffic } = setup();
    clock.at(0);
    for (let i = 0; i < 10_000; i++) traffic.record(`site-${i}`, false);
    expect(traffic.size).toBe(10_000);
    clock.at(300);
    traffic.record('site-0', false);
    expect(traffic.size).toBe(1);
  });
});
