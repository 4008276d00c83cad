import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copySites, get, removeDir, startServer, type RunningServer } from '../helpers/server.ts';
import { startLoad } from '../helpers/load.ts';

/** The worker's `amt_refusals_delayed_total` from /_platform/metrics (loopback is an admin). */
async function delayedRefusals(server: RunningServer): Promise<number> {
  const text = (await get(server.port, 'localhost', '/_platform/metrics')).body;
  const line = text.split('\n').find((l) => l.startsWith('amt_refusals_delayed_total'));
  if (!line) throw new Error('amt_refusals_delayed_total is missing from /_platform/metrics');
  return Number(line.split(' ').at(-1));
}

describe('refusals wait while the worker is busy, so sites go first (REFUSAL_DELAY_MS)', () => {
  let sitesDir: string;
  let server: RunningServer;

  beforeAll(async () => {
    sitesDir = await copySites();
    server = await startServer(sitesDir, { REFUSAL_DELAY_MS: '40' });
  });
  afterAll(async () => {
    await server?.stop();
    await removeDir(sitesDir);
  });

  it('answers unknown hosts at once while no site is being served, however busy the machine is', async () => {
    // No site request in the pacer's last 100 ms windows: refusals have nobody to yield to.
    await new Promise((resolve) => setTimeout(resolve, 400));
    for (const host of ['nobody.example', 'ghost.localhost', 'x.y.z.test']) {
      const res = await get(server.port, host, '/');
      expect(res.status, host).toBe(404);
    }
    expect(await delayedRefusals(server)).toBe(0);
  });

  it('holds back an unknown-host flood while a site is busy, and the site keeps being served', async () => {
    const site = startLoad({ port: server.port, host: 'acme.localhost', connections: 16, seconds: 4 });
    const flood = startLoad({ port: server.port, host: 'unclaimed-flood.example', connections: 16, seconds: 4 });
    const [siteResult, floodResult] = await Promise.all([site.done, flood.done]);
    expect(siteResult.errors, siteResult.errorMessages.join('; ')).toBe(0);
    expect(siteResult.non2xx).toBe(0);
    // Every flood request still got its 404 (non2xx), none an error; many of them after a wait.
    expect(floodResult.errors, floodResult.errorMessages.join('; ')).toBe(0);
    expect(floodResult.non2xx).toBe(floodResult.total);
    expect(await delayedRefusals(server)).toBeGreaterThan(0);
    // Paced at 40 ms per answer while busy, the flood gets far fewer answers than the site.
    expect(floodResult.total).toBeLessThan(siteResult.total);
  });
});
