import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { ROOT, copySites, get, removeDir, startServer, waitFor, type Response, type RunningServer } from '../helpers/server.ts';
import { startRedis, type RunningRedis } from '../helpers/redis.ts';
import { startAll } from '../helpers/processes.ts';

const SESSION_KEYS = 'k1:plans-limits-signing-secret-0123456789abcdef';

/**
 * The operator's plans for this test: acme on 5 req/s with a burst of 10 (a 2 s window); blog and
 * bakery on 1 req/s with a burst of 10 (a 10 s window, so every count below lands in one window);
 * heavy renders 2 pages per second, one at a time; crowded may have 3 pages (it has 5); docs is
 * not listed: the generous default.
 */
const PLANS = {
  plans: {
    small: { requestsPerSecond: 5, burst: 10 },
    tiny: { requestsPerSecond: 1, burst: 10 },
    renders: { rendersPerSecond: 2, renderConcurrency: 1 },
    few: { maxPages: 3 },
  },
  sites: { acme: 'small', blog: 'tiny', bakery: 'tiny', heavy: 'renders', crowded: 'few' },
};

const statuses = (responses: Response[]) => responses.map((r) => r.status);
const count = (responses: Response[], status: number) => responses.filter((r) => r.status === status).length;

/** A throttled answer: 429, a whole-second Retry-After, never stored, plain text naming the limit. */
function expectThrottled(res: Response, reason: RegExp) {
  expect(res.status).toBe(429);
  expect(res.headers['retry-after']).toMatch(/^[1-9]\d*$/);
  expect(res.headers['cache-control']).toBe('no-store');
  expect(res.headers['content-type']).toMatch(/^text\/plain/);
  expect(res.body).toMatch(reason);
}

describe('per-site plans with limits shared through a real Redis by two server processes', () => {
  let redis: RunningRedis;
  let sitesDir: string;
  let plansFile: string;
  let one: RunningServer;
  let two: RunningServer;

  beforeAll(async () => {
    redis = await startRedis();
    sitesDir = await copySites();
    // A site with twenty uncached pages, for the render limits.
    const heavy = join(sitesDir, 'heavy');
    await mkdir(join(heavy, 'pages'), { recursive: true });
    await writeFile(join(heavy, 'site.json'), JSON.stringify({ name: 'Heavy', description: '', domains: [], aliases: [], locale: 'en', layout: 'page', nav: [{ label: 'Home', href: '/' }] }));
    await writeFile(join(heavy, 'pages', 'index.md'), '---\ntitle: Heavy\n---\n\nHome.\n');
    for (let i = 0; i < 20; i++) await writeFile(join(heavy, 'pages', `p${i}.md`), `---\ntitle: Page ${i}\n---\n\nPage ${i}.\n`);
    // A site with more pages than its plan allows, for the reports.
    const crowded = join(sitesDir, 'crowded');
    await mkdir(join(crowded, 'pages'), { recursive: true });
    await writeFile(join(crowded, 'site.json'), JSON.stringify({ name: 'Crowded', description: '', domains: [], aliases: [], locale: 'en', layout: 'page', nav: [{ label: 'Home', href: '/' }] }));
    for (const name of ['index', 'a', 'b', 'c', 'd']) await writeFile(join(crowded, 'pages', `${name}.md`), `---\ntitle: ${name}\n---\n\n${name}.\n`);
    plansFile = join(sitesDir, '..', `plans-${process.pid}-${Date.now()}.json`);
    await writeFile(plansFile, JSON.stringify(PLANS));
    // A slow command counts as Redis failing (per-process limits for 2 s): on a loaded test machine
    // 250 ms is not slow enough to mean that, so the shared-count checks get a wider timeout.
    const env = { REDIS_URL: redis.url, SESSION_KEYS, PLANS_FILE: plansFile, EDGE_CACHE_S: '0', REDIS_TIMEOUT_MS: '1000' };
    [one, two] = await startAll([startServer(sitesDir, env), startServer(sitesDir, env)] as const);
  }, 60_000);

  afterAll(async () => {
    await Promise.allSettled([one?.stop(), two?.stop()]);
    if (redis?.pid) process.kill(redis.pid, 'SIGCONT');
    await redis?.stop();
    await removeDir(sitesDir);
    await rm(plansFile, { force: true });
  });

  it('answers a site on a 5 req/s plan with 429s past its burst while another site answers 200 throughout', async () => {
    const acme = get(one.port, 'acme.localhost', '/');
    const burst = await Promise.all([acme, ...Array.from({ length: 29 }, () => get(one.port, 'acme.localhost', '/'))]);
    const neighbour = await Promise.all(Array.from({ length: 30 }, (_, i) => get(i % 2 ? one.port : two.port, 'docs.localhost', '/')));
    // 10 per 2 s window; a window boundary during the burst can admit at most 10 more.
    expect(count(burst, 200)).toBeGreaterThanOrEqual(10);
    expect(count(burst, 200)).toBeLessThanOrEqual(20);
    expect(count(burst, 200) + count(burst, 429)).toBe(30);
    expectThrottled(burst.find((r) => r.status === 429)!, /over its plan's requests limit/);
    expect(statuses(neighbour)).toEqual(Array(30).fill(200));
    // Throttling acme never costs docs a request either: docs is still far from any limit.
    const after = await get(two.port, 'docs.localhost', '/');
    expect(after.status).toBe(200);
  });

  it('counts a site\'s requests once for both processes: the burst is the cluster\'s, not each worker\'s', async () => {
    const answers: Response[] = [];
    for (let i = 0; i < 30; i++) answers.push(await get(i % 2 ? one.port : two.port, 'blog.localhost', '/'));
    // One 10 s window of 10 for the whole cluster: per-process counting would have admitted 20.
    expect(count(answers, 200)).toBe(10);
    expect(count(answers, 429)).toBe(20);
    expect(answers.slice(0, 10).every((r) => r.status === 200)).toBe(true);
    const fromOne = answers.filter((_, i) => i % 2 === 1);
    const fromTwo = answers.filter((_, i) => i % 2 === 0);
    expect(count(fromOne, 429)).toBeGreaterThan(0);
    expect(count(fromTwo, 429)).toBeGreaterThan(0);
    expect(Number(answers.at(-1)!.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    expect(Number(answers.at(-1)!.headers['retry-after'])).toBeLessThanOrEqual(10);
  });

  it('keeps the renders of a site under its plan while its cached pages keep flowing', async () => {
    // Prime the home page into the render cache, then let the render window pass.
    expect((await get(one.port, 'heavy.localhost', '/')).status).toBe(200);
    expect((await get(one.port, 'heavy.localhost', '/')).headers['x-render-cache']).toBe('hit');
    await new Promise((r) => setTimeout(r, 1100));
    const uncached = Promise.all(Array.from({ length: 20 }, (_, i) => get(one.port, 'heavy.localhost', `/p${i}`)));
    const cached = Promise.all(Array.from({ length: 20 }, () => get(one.port, 'heavy.localhost', '/')));
    const [renders, hits] = await Promise.all([uncached, cached]);
    expect(hits.every((r) => r.status === 200 && r.headers['x-render-cache'] === 'hit')).toBe(true);
    // 2 renders per second for the cluster; a window boundary can admit 2 more.
    expect(count(renders, 200)).toBeGreaterThanOrEqual(2);
    expect(count(renders, 200)).toBeLessThanOrEqual(4);
    expect(count(renders, 429)).toBe(20 - count(renders, 200));
    // Shed by the rate (2/s) or, first, by the full render queue (1 running, 4 waiting).
    for (const refused of renders.filter((r) => r.status === 429)) expectThrottled(refused, /over its plan's (renders|render concurrency) limit/);
  });

  it('shows each site\'s plan and who is throttled now on the status page', async () => {
    const status = JSON.parse((await get(one.port, '127.0.0.1', '/_platform/status.json')).body);
    const bySite = new Map<string, { plan: string; throttled: number; throttledByReason: Record<string, number>; limits: { requestsPerSecond: number } }>(status.fairness.sites.map((s: { id: string }) => [s.id, s]));
    expect(bySite.get('acme')!.plan).toBe('small');
    expect(bySite.get('acme')!.limits.requestsPerSecond).toBe(5);
    expect(bySite.get('docs')!.plan).toBe('default');
    expect((bySite.get('heavy')!.throttledByReason.renders ?? 0) + (bySite.get('heavy')!.throttledByReason.render_concurrency ?? 0)).toBeGreaterThan(0);
    expect(status.fairness.throttledNow.map((s: { id: string }) => s.id)).toEqual(expect.arrayContaining(['acme', 'blog', 'heavy']));
    expect(status.fairness.throttledNow.map((s: { id: string }) => s.id)).not.toContain('docs');
    expect(status.fairness.shared).toBe(true);
    const metrics = (await get(one.port, '127.0.0.1', '/_platform/metrics')).body;
    expect(metrics).toMatch(/amt_throttled_requests_total\{site="acme",reason="requests",plan="small"\} [1-9]/);
    expect(metrics).toMatch(/amt_throttled_requests_total\{site="heavy",reason="(renders|render_concurrency)",plan="renders"\} [1-9]/);
    // A folder over its plan's page count is reported like a validation error.
    const crowded = status.sites.find((s: { id: string }) => s.id === 'crowded');
    expect(crowded.health).toBe('invalid');
    expect(crowded.issues).toContainEqual({ file: 'sites/crowded/pages', field: 'plan.maxPages', reason: '5 pages, over the limit of 3 (plan "few")' });
    const html = (await get(one.port, '127.0.0.1', '/_platform/status')).body;
    expect(html).toContain('<h2>Plans and limits</h2>');
    expect(html).toMatch(/<tr><td>acme<\/td><td>small<\/td>.*requests \d+/);
  });

  it('prints a site\'s plan, its folder against the plan and its live usage with `npm run sites -- usage <id>`', async () => {
    const run = spawnSync(process.execPath, [join(ROOT, 'astro-multi-tenant/server/cli/sites.ts'), 'usage', 'heavy'], {
      env: { ...process.env, SITES_DIR: sitesDir, PLANS_FILE: plansFile, PORT: String(one.port) },
      encoding: 'utf8',
    });
    expect(run.status).toBe(0);
    expect(run.stdout).toContain('site heavy: plan "renders"');
    expect(run.stdout).toContain('21 / 10000 pages');
    const over = spawnSync(process.execPath, [join(ROOT, 'astro-multi-tenant/server/cli/sites.ts'), 'usage', 'crowded'], {
      env: { ...process.env, SITES_DIR: sitesDir, PLANS_FILE: plansFile, PORT: String(one.port) },
      encoding: 'utf8',
    });
    expect(over.stdout).toContain('site crowded: plan "few"');
    expect(over.stdout).toContain('5 / 3 pages');
    expect(over.stdout).toContain('OVER      sites/crowded/pages: plan.maxPages: 5 pages, over the limit of 3 (plan "few")');
    expect(run.stdout).toMatch(/throttled [1-9]\d* \((renders|render_concurrency) \d+.*\) in the last 60 s, 1 worker\(s\)/);
  });

  it('applies an edited PLANS_FILE within CONTENT_CHECK_MS, and keeps the plans in force when an edit does not validate', async () => {
    await writeFile(plansFile, JSON.stringify({ ...PLANS, sites: { ...PLANS.sites, docs: 'tiny' } }));
    await waitFor(async () => {
      const status = JSON.parse((await get(two.port, '127.0.0.1', '/_platform/status.json')).body);
      return status.fairness.sites.find((s: { id: string }) => s.id === 'docs').plan === 'tiny';
    }, 5000);
    await writeFile(plansFile, JSON.stringify({ plans: { tiny: { burst: 'ten' } }, sites: { docs: 'tiny' } }));
    // Plans are re-checked when a request asks for them after CONTENT_CHECK_MS: the status page asks.
    await waitFor(async () => {
      await get(two.port, '127.0.0.1', '/_platform/status.json');
      return /PLANS_FILE not applied.*plans\.tiny\.burst/.test(two.logs.join('\n'));
    }, 5000);
    const status = JSON.parse((await get(two.port, '127.0.0.1', '/_platform/status.json')).body);
    expect(status.fairness.sites.find((s: { id: string }) => s.id === 'acme').plan).toBe('small');
    expect(status.fairness.sites.find((s: { id: string }) => s.id === 'docs').plan).toBe('tiny');
    await writeFile(plansFile, JSON.stringify(PLANS));
    await waitFor(async () => {
      const s = JSON.parse((await get(two.port, '127.0.0.1', '/_platform/status.json')).body);
      return s.fairness.sites.find((x: { id: string }) => x.id === 'docs').plan === 'default';
    }, 5000);
  });

  it('keeps limiting per process while Redis is stopped, and answers nothing with a 5xx', async () => {
    process.kill(redis.pid!, 'SIGSTOP');
    try {
      const answers: Response[] = [];
      const neighbour: Response[] = [];
      for (let i = 0; i < 30; i++) {
        answers.push(await get(i % 2 ? one.port : two.port, 'bakery.localhost', '/'));
        neighbour.push(await get(i % 2 ? one.port : two.port, 'docs.localhost', '/'));
      }
      expect(answers.concat(neighbour).filter((r) => r.status >= 500)).toEqual([]);
      expect(statuses(neighbour)).toEqual(Array(30).fill(200));
      // Each process counts its own window of 10 (15 requests each): at most 20 pass, each process refuses some.
      expect(count(answers, 200)).toBeGreaterThanOrEqual(10);
      expect(count(answers, 200)).toBeLessThanOrEqual(20);
      expect(count(answers.filter((_, i) => i % 2 === 1), 429)).toBeGreaterThan(0);
      expect(count(answers.filter((_, i) => i % 2 === 0), 429)).toBeGreaterThan(0);
      const status = JSON.parse((await get(one.port, '127.0.0.1', '/_platform/status.json')).body);
      expect(status.fairness.shared).toBe(false);
    } finally {
      process.kill(redis.pid!, 'SIGCONT');
    }
  }, 30_000);
});
