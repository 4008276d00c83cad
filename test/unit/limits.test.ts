import { describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { createSiteLimiter, planWindow, windowFor } from '../../astro-multi-tenant/server/plans/limits.ts';
import { createRenderBudget } from '../../astro-multi-tenant/server/plans/render-budget.ts';
import { DEFAULT_PLAN, completePlan, type NamedPlan } from '../../astro-multi-tenant/server/plans/plans-file.ts';
import { ThrottledError } from '../../astro-multi-tenant/server/errors.ts';
import { failFastOptions } from '../../astro-multi-tenant/server/session/redis-client.ts';
import { freePort } from '../helpers/cluster.ts';

const plan = (name: string, fields: Parameters<typeof completePlan>[0]): NamedPlan => ({ name, limits: completePlan(fields) });

describe('rate windows', () => {
  it('admits the burst per window of burst / rate seconds (whole seconds, at least one)', () => {
    expect(windowFor(5, 10)).toEqual({ points: 10, duration: 2 });
    expect(windowFor(1, 10)).toEqual({ points: 10, duration: 10 });
    expect(windowFor(20_000, 40_000)).toEqual({ points: 40_000, duration: 2 });
    expect(windowFor(0.5, 1)).toEqual({ points: 1, duration: 2 });
    expect(windowFor(3, 3)).toEqual({ points: 3, duration: 1 });
  });

  it('gives renders a one-second window, or one render per 1/rate seconds when slower', () => {
    expect(planWindow('renders', completePlan({ rendersPerSecond: 2 }))).toEqual({ points: 2, duration: 1 });
    expect(planWindow('renders', completePlan({ rendersPerSecond: 0.25 }))).toEqual({ points: 1, duration: 4 });
    expect(planWindow('requests', DEFAULT_PLAN)).toEqual({ points: 40_000, duration: 2 });
  });
});

describe('the site limiter', () => {
  it('answers 429 past a site\'s burst with the seconds until its window frees, never counting other sites', async () => {
    const limiter = createSiteLimiter({ redis: undefined });
    const small = completePlan({ requestsPerSecond: 5, burst: 10 });
    const verdicts = [];
    for (let i = 0; i < 15; i++) verdicts.push(await limiter.take('requests', 'acme', small));
    expect(verdicts.filter((v) => v.allowed)).toHaveLength(10);
    const refused = verdicts.filter((v) => !v.allowed);
    expect(refused).toHaveLength(5);
    for (const v of refused) expect(v.allowed === false && v.retryAfterSeconds >= 1 && v.retryAfterSeconds <= 2).toBe(true);
    // Another site on the same plan has its own window; renders are counted apart from requests.
    for (let i = 0; i < 10; i++) expect(await limiter.take('requests', 'docs', small)).toEqual({ allowed: true });
    expect(await limiter.take('renders', 'acme', small)).toEqual({ allowed: true });
  });

  it('counts in this process at once when Redis cannot be reached, and says so', async () => {
    const port = await freePort();
    const redis = new Redis({ ...failFastOptions(100), host: '127.0.0.1', port });
    const changes: boolean[] = [];
    try {
      const limiter = createSiteLimiter({ redis, onStoreChange: (shared) => changes.push(shared) });
      const small = completePlan({ requestsPerSecond: 1, burst: 3 });
      const started = performance.now();
      const verdicts = [];
      for (let i = 0; i < 5; i++) verdicts.push(await limiter.take('requests', 'acme', small));
      expect(performance.now() - started).toBeLessThan(500);
      expect(verdicts.map((v) => v.allowed)).toEqual([true, true, true, false, false]);
      expect(limiter.shared).toBe(false);
      expect(changes).toEqual([false]);
    } finally {
      redis.disconnect();
    }
  });
});

describe('the render budget of a worker', () => {
  const unlimited = createSiteLimiter({ redis: undefined });

  it('sheds a site\'s renders once its render time passes its budget, until the window forgets them', async () => {
    let clock = 0;
    const shed: string[] = [];
    const budget = createRenderBudget({ limiter: unlimited, now: () => clock, windowMs: 2000, onThrottle: (site, reason) => shed.push(`${site}:${reason}`) });
    const small = plan('small', { renderCpuMsPerSecond: 100 });
    for (const spent of [150, 60]) {
      const done = await budget.admit('acme', small);
      clock += spent;
      done();
    }
    // 210 ms in a 2 s window is 105 ms/s, over 100: shed, with Retry-After of the window.
    const refusal = await budget.admit('acme', small).catch((e: unknown) => e);
    expect(refusal).toBeInstanceOf(ThrottledError);
    expect(refusal).toMatchObject({ reason: 'render_cpu', plan: 'small', retryAfterSeconds: 2, status: 429 });
    // Its neighbour, on the same plan, renders.
    const other = await budget.admit('docs', small);
    other();
    expect(budget.usage('acme')).toMatchObject({ renders: 2, renderMsPerSecond: 105 });
    clock += 2000;
    (await budget.admit('acme', small))();
    expect(shed).toEqual(['acme:render_cpu']);
  });

  it('charges renders that run at once their share of the time, not each the whole of it', async () => {
    let clock = 0;
    const budget = createRenderBudget({ limiter: unlimited, now: () => clock, windowMs: 1000 });
    const open = plan('open', {});
    // acme and docs render side by side for 100 ms, then acme alone for 50 ms more.
    const acme = await budget.admit('acme', open);
    const docs = await budget.admit('docs', open);
    clock = 100;
    docs();
    clock = 150;
    acme();
    expect(budget.usage('docs').renderMsPerSecond).toBe(50);
    expect(budget.usage('acme').renderMsPerSecond).toBe(100);
  });

  it('runs at most renderConcurrency renders of a site at once, queues a few, sheds the rest', async () => {
    const budget = createRenderBudget({ limiter: unlimited, queuePerSlot: 2 });
    const one = plan('one', { renderConcurrency: 1 });
    const first = await budget.admit('acme', one);
    const order: string[] = [];
    const queued = [budget.admit('acme', one).then((done) => (order.push('second'), done)), budget.admit('acme', one).then((done) => (order.push('third'), done))];
    await expect(budget.admit('acme', one)).rejects.toMatchObject({ reason: 'render_concurrency', retryAfterSeconds: 1 });
    // Another site is not in acme's queue.
    (await budget.admit('docs', one))();
    expect(budget.usage('acme')).toMatchObject({ running: 1, queued: 2 });
    expect(order).toEqual([]);
    first();
    const second = await queued[0]!;
    expect(order).toEqual(['second']);
    expect(budget.usage('acme')).toMatchObject({ running: 1, queued: 1 });
    second();
    (await queued[1]!)();
    expect(budget.usage('acme')).toMatchObject({ running: 0, queued: 0, renders: 3 });
  });

  it('sheds renders past the plan\'s renders per second, counted by the shared limiter', async () => {
    const budget = createRenderBudget({ limiter: createSiteLimiter({ redis: undefined }) });
    const two = plan('two', { rendersPerSecond: 2 });
    (await budget.admit('acme', two))();
    (await budget.admit('acme', two))();
    await expect(budget.admit('acme', two)).rejects.toMatchObject({ reason: 'renders', retryAfterSeconds: 1 });
  });
});
