/**
 * Liveness says the process can answer; readiness says it should get traffic. Readiness runs the
 * dependency checks (sites folder readable, Redis reachable when configured) with a short timeout
 * each, and turns false the moment shutdown begins so a load balancer stops sending new work.
 */
export interface ReadinessCheck {
  name: string;
  /** Resolves when healthy; rejects with a reason otherwise. */
  run(): Promise<void>;
  /**
   * false: a failure is reported (status "degraded") but the process stays ready. For shared
   * dependencies such as Redis: if every replica turned unready together, a load balancer would
   * drop all of them, and the public pages that never need Redis would go down with it.
   */
  critical?: boolean;
}

export interface ReadinessResult {
  ready: boolean;
  status: 'ready' | 'degraded' | 'not ready';
  checks: Array<{ name: string; ok: boolean; critical: boolean; error?: string }>;
}

export function createHealth(options: { checks: ReadinessCheck[]; isDraining: () => boolean; timeoutMs?: number }) {
  const timeoutMs = options.timeoutMs ?? 1000;

  async function runCheck(check: ReadinessCheck): Promise<ReadinessResult['checks'][number]> {
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        check.run(),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
        }),
      ]);
      return { name: check.name, ok: true, critical: check.critical ?? true };
    } catch (error) {
      return { name: check.name, ok: false, critical: check.critical ?? true, error: error instanceof Error ? error.message : String(error ?? 'failed') };
    } finally {
      clearTimeout(timer);
    }
  }

  return {
    async readiness(): Promise<ReadinessResult> {
      const draining = options.isDraining();
      const checks = [{ name: 'accepting', ok: !draining, critical: true, ...(draining ? { error: 'shutting down' } : {}) }, ...(await Promise.all(options.checks.map(runCheck)))];
      const ready = checks.every((c) => c.ok || !c.critical);
      return { ready, status: !ready ? 'not ready' : checks.every((c) => c.ok) ? 'ready' : 'degraded', checks };
    },
  };
}

export type Health = ReturnType<typeof createHealth>;
