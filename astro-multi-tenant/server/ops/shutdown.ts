import type { Logger } from '../log.ts';
import type { Drain } from './drain.ts';

export interface ShutdownDeps {
  drain: Drain;
  /** Keep serving this long (ms) after readiness turns 503, so a load balancer notices first. */
  delayMs: number;
  /** Drain deadline (ms), for the log line. */
  deadlineMs: number;
  /** Closed in order after the drain; a failing one does not stop the others. */
  close: ReadonlyArray<() => Promise<unknown>>;
  logger: Logger;
  exit: (code: number) => void;
  sleep?: (ms: number) => Promise<void>;
}

/**
 * The shutdown sequence for SIGINT/SIGTERM and PM2's `shutdown` message: readiness 503 at once,
 * keep serving for `delayMs` (Kubernetes polls readiness before it stops sending traffic), drain
 * open requests (ops/drain.ts), close shared connections, exit 0. Called twice, it runs once.
 */
export function createShutdown(deps: ShutdownDeps): (signal: string) => Promise<void> {
  const sleep = deps.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  let stopping = false;
  return async (signal) => {
    if (stopping) return;
    stopping = true;
    deps.drain.beginDrain();
    deps.logger.info({ signal, delayMs: deps.delayMs, deadlineMs: deps.deadlineMs, open: deps.drain.openConnections }, 'shutting down: readiness is now 503');
    if (deps.delayMs > 0) await sleep(deps.delayMs);
    const started = performance.now();
    await deps.drain.drain();
    for (const close of deps.close) await close().catch(() => {});
    deps.logger.info({ drainMs: Math.round(performance.now() - started) }, 'stopped');
    deps.exit(0);
  };
}
