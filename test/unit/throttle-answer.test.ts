import { afterEach, describe, expect, it } from 'vitest';
import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { throttledError } from '../../astro-multi-tenant/server/plans/throttled.ts';
import { createSiteLimiter } from '../../astro-multi-tenant/server/plans/limits.ts';
import { createRenderBudget } from '../../astro-multi-tenant/server/plans/render-budget.ts';
import { completePlan, parsePlansFile, type NamedPlan } from '../../astro-multi-tenant/server/plans/plans-file.ts';
import { requestLimitStage } from '../../astro-multi-tenant/server/pipeline/stages/request-limit.ts';
import { ThrottledError, type ThrottleReason } from '../../astro-multi-tenant/server/errors.ts';
import { createLogger } from '../../astro-multi-tenant/server/log.ts';
import type { SiteRequest } from '../../astro-multi-tenant/server/pipeline/context.ts';

const REASONS: ThrottleReason[] = ['requests', 'renders', 'render_concurrency', 'render_cpu'];

/** Stack frames of an error ("    at …" lines): none means no stack was captured. */
const frames = (error: Error) => (error.stack ?? '').split('\n').filter((line) => line.trimStart().startsWith('at '));

describe('a throttled refusal builds no stack trace', () => {
  it('makes a ThrottledError with its fields and words but no stack frames, for every reason', () => {
    for (const reason of REASONS) {
      const error = throttledError('acme', reason, 'small', 3);
      expect(error).toBeInstanceOf(ThrottledError);
      expect(error).toMatchObject({ code: 'SITE_RATE_LIMITED', status: 429, reason, plan: 'small', retryAfterSeconds: 3, input: 'acme' });
      expect(error.message).toBe(`site "acme" is over its plan's ${reason.replace('_', ' ')} limit; retry in 3 s`);
      expect(frames(error)).toEqual([]);
    }
    // The process's own stack traces are untouched.
    expect(frames(new Error('elsewhere')).length).toBeGreaterThan(0);
  });

  it('sheds renders with stackless errors', async () => {
    const budget = createRenderBudget({ limiter: createSiteLimiter({ redis: undefined }) });
    const one: NamedPlan = { name: 'one', limits: completePlan({ renderConcurrency: 1 }) };
    const first = await budget.admit('acme', one);
    const waiting = Array.from({ length: 4 }, () => budget.admit('acme', one));
    const refusal = (await budget.admit('acme', one).catch((e: unknown) => e)) as ThrottledError;
    expect(refusal).toMatchObject({ reason: 'render_concurrency', status: 429 });
    expect(frames(refusal)).toEqual([]);
    first();
    // Each queued render starts when the one before it is done.
    for (const admitted of waiting) (await admitted)();
  });
});

describe('the request-limit stage answers 429 itself', () => {
  let server: Server | undefined;
  afterEach(() => new Promise<void>((done) => (server ? server.close(() => done()) : done())));

  /** Runs the stage for each request on a real HTTP server; resolves the stage's outcomes. */
  async function serve(plan: { requestsPerSecond: number; burst: number }, count: number) {
    const book = parsePlansFile(JSON.stringify({ plans: { tiny: plan }, sites: { acme: 'tiny' } }), 'plans.json');
    if (!book.ok) throw new Error('plans');
    const throttles: string[] = [];
    const stage = requestLimitStage({ plans: () => book.book, limiter: createSiteLimiter({ redis: undefined }), onThrottle: (site, reason, name) => throttles.push(`${site}:${reason}:${name}`) });
    const log = createLogger('silent');
    const outcomes: Array<string | undefined | Error> = [];
    server = createServer(async (req: IncomingMessage, res: ServerResponse) => {
      // A header an earlier stage set is not part of a refusal.
      res.setHeader('X-Request-Id', 'r1');
      res.setHeader('Server-Timing', 'site;dur=1');
      const ctx = { req, res, id: 'r1', log, siteId: 'acme', site: { id: 'acme' } } as unknown as SiteRequest;
      try {
        const outcome = await stage(ctx);
        outcomes.push(outcome ?? undefined);
        if (outcome === undefined) res.end('ok');
      } catch (error) {
        outcomes.push(error as Error);
        res.statusCode = 500;
        res.end();
      }
    });
    await new Promise<void>((done) => server!.listen(0, '127.0.0.1', done));
    const { port } = server.address() as AddressInfo;
    const answers: Array<{ status: number; headers: IncomingMessage['headers']; body: string }> = [];
    for (let i = 0; i < count; i++) {
      answers.push(
        await new Promise((done, fail) => {
          request({ port, host: '127.0.0.1', path: '/' }, (res) => {
            let body = '';
            res.on('data', (c) => (body += c));
            res.on('end', () => done({ status: res.statusCode!, headers: res.headers, body }));
          })
            .on('error', fail)
            .end();
        }),
      );
    }
    return { outcomes, answers, throttles };
  }

  it('returns the route "throttled" instead of throwing, with Retry-After, no-store and the words', async () => {
    for (const [plan, admitted] of [[{ requestsPerSecond: 1, burst: 3 }, 3], [{ requestsPerSecond: 2, burst: 5 }, 5]] as const) {
      const { outcomes, answers, throttles } = await serve(plan, 8);
      expect(answers.map((a) => a.status)).toEqual([...Array(admitted).fill(200), ...Array(8 - admitted).fill(429)]);
      expect(outcomes).toEqual([...Array(admitted).fill(undefined), ...Array(8 - admitted).fill('throttled')]);
      expect(throttles).toEqual(Array(8 - admitted).fill('acme:requests:tiny'));
      const refused = answers.at(-1)!;
      expect(refused.headers['retry-after']).toMatch(/^[1-9]\d*$/);
      expect(refused.headers['cache-control']).toBe('no-store');
      expect(refused.headers['content-type']).toMatch(/^text\/plain/);
      expect(refused.headers['x-request-id']).toBe('r1');
      expect(refused.headers['server-timing']).toBeUndefined();
      expect(refused.body).toMatch(/^Too Many Requests: site "acme" is over its plan's requests limit; retry in [1-9]\d* s\n$/);
      await new Promise<void>((done) => server!.close(() => done()));
      server = undefined;
    }
  });
});
