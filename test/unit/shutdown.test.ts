import { describe, it, expect } from 'vitest';
import pino from 'pino';
import { createShutdown } from '../../astro-multi-tenant/server/ops/shutdown.ts';
import type { Drain } from '../../astro-multi-tenant/server/ops/drain.ts';

function fakeDrain(steps: string[]): Drain {
  return {
    beginDrain: () => steps.push('readiness 503'),
    drain: async () => {
      steps.push('drained');
    },
    openConnections: 0,
  } as unknown as Drain;
}

describe('the shutdown sequence', () => {
  it('turns readiness 503, waits the delay, drains, closes every connection, then exits 0 — once, however often it is asked', async () => {
    const steps: string[] = [];
    const shutdown = createShutdown({
      drain: fakeDrain(steps),
      delayMs: 250,
      deadlineMs: 1000,
      close: [async () => steps.push('peers closed'), async () => steps.push('store closed')],
      logger: pino({ level: 'silent' }),
      exit: (code) => steps.push(`exit ${code}`),
      sleep: async (ms) => {
        steps.push(`waited ${ms} ms`);
      },
    });
    await Promise.all([shutdown('SIGTERM'), shutdown('SIGINT'), shutdown('shutdown message')]);
    expect(steps).toEqual(['readiness 503', 'waited 250 ms', 'drained', 'peers closed', 'store closed', 'exit 0']);
  });

  it('still closes the rest and exits when one connection fails to close, and skips the wait when no delay is set', async () => {
    const steps: string[] = [];
    const shutdown = createShutdown({
      drain: fakeDrain(steps),
      delayMs: 0,
      deadlineMs: 1000,
      close: [async () => Promise.reject(new Error('socket gone')), async () => steps.push('store closed')],
      logger: pino({ level: 'silent' }),
      exit: (code) => steps.push(`exit ${code}`),
      sleep: async () => {
        steps.push('waited');
      },
    });
    await shutdown('SIGTERM');
    expect(steps).toEqual(['readiness 503', 'drained', 'store closed', 'exit 0']);
  });
});
