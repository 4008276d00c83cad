import { describe, it, expect } from 'vitest';
import { createHealth, type ReadinessCheck } from '../../astro-multi-tenant/server/ops/health.ts';

const ok = (name: string): ReadinessCheck => ({ name, run: async () => {} });
const failing = (name: string, message: string): ReadinessCheck => ({
  name,
  run: async () => {
    throw new Error(message);
  },
});
const hanging = (name: string): ReadinessCheck => ({ name, run: () => new Promise<void>(() => {}) });

describe('createHealth', () => {
  it('is ready when it is accepting and every check passes', async () => {
    const health = createHealth({ checks: [ok('sites'), ok('redis')], isDraining: () => false });
    expect(await health.readiness()).toEqual({
      ready: true,
      status: 'ready',
      checks: [
        { name: 'accepting', ok: true, critical: true },
        { name: 'sites', ok: true, critical: true },
        { name: 'redis', ok: true, critical: true },
      ],
    });
  });

  it('is ready with no dependency checks at all', async () => {
    const health = createHealth({ checks: [], isDraining: () => false });
    expect(await health.readiness()).toEqual({ ready: true, status: 'ready', checks: [{ name: 'accepting', ok: true, critical: true }] });
  });

  it('is not ready when one check fails, and reports that check with its error', async () => {
    const health = createHealth({ checks: [ok('sites'), failing('redis', 'connect ECONNREFUSED 127.0.0.1:6379')], isDraining: () => false });
    const result = await health.readiness();
    expect(result.ready).toBe(false);
    expect(result.checks).toEqual([
      { name: 'accepting', ok: true, critical: true },
      { name: 'sites', ok: true, critical: true },
      { name: 'redis', ok: false, critical: true, error: 'connect ECONNREFUSED 127.0.0.1:6379' },
    ]);
  });

  it('reports a check that throws before returning a promise as failed instead of crashing', async () => {
    const throwsSync: ReadinessCheck = {
      name: 'sites',
      run: () => {
        throw new Error('EACCES');
      },
    };
    const result = await createHealth({ checks: [throwsSync], isDraining: () => false }).readiness();
    expect(result.ready).toBe(false);
    expect(result.checks[1]).toEqual({ name: 'sites', ok: false, critical: true, error: 'EACCES' });
  });

  it('fails a check that never answers once the timeout passes, saying so', async () => {
    const health = createHealth({ checks: [hanging('redis'), ok('sites')], isDraining: () => false, timeoutMs: 50 });
    const result = await health.readiness();
    expect(result.ready).toBe(false);
    expect(result.checks).toEqual([
      { name: 'accepting', ok: true, critical: true },
      { name: 'redis', ok: false, critical: true, error: 'no answer within 50 ms' },
      { name: 'sites', ok: true, critical: true },
    ]);
  });

  it('is not accepting while draining, even when every check passes', async () => {
    let draining = false;
    const health = createHealth({ checks: [ok('sites')], isDraining: () => draining });
    expect((await health.readiness()).ready).toBe(true);
    draining = true;
    const result = await health.readiness();
    expect(result.ready).toBe(false);
    expect(result.checks).toEqual([
      { name: 'accepting', ok: false, critical: true, error: 'shutting down' },
      { name: 'sites', ok: true, critical: true },
    ]);
  });

  it('runs the checks afresh on every call', async () => {
    let healthy = false;
    const flaky: ReadinessCheck = {
      name: 'redis',
      run: async () => {
        if (!healthy) throw new Error('down');
      },
    };
    const health = createHealth({ checks: [flaky], isDraining: () => false });
    expect((await health.readiness()).ready).toBe(false);
    healthy = true;
    expect((await health.readiness()).ready).toBe(true);
  });

  it('stays ready but says degraded when only a non-critical check (a shared Redis) fails', async () => {
    const redis: ReadinessCheck = { ...failing('redis', 'ECONNREFUSED'), critical: false };
    const result = await createHealth({ checks: [ok('sites'), redis], isDraining: () => false }).readiness();
    expect(result.ready).toBe(true);
    expect(result.status).toBe('degraded');
    expect(result.checks[2]).toEqual({ name: 'redis', ok: false, critical: false, error: 'ECONNREFUSED' });
    const draining = await createHealth({ checks: [redis], isDraining: () => true }).readiness();
    expect([draining.ready, draining.status]).toEqual([false, 'not ready']);
  });
});
