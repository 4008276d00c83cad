import { Agent, request } from 'node:http';

export interface RetryingLoadResult {
  ok2xx: number;
  non2xx: number;
  failed: number;
  /** Requests resent because a reused keep-alive connection was closed under them. */
  retried: number;
  errorMessages: string[];
}

/**
 * Keep-alive load from a client that behaves like a browser: when a server closes an idle
 * keep-alive connection just as the next request goes out on it, the request is sent again on a
 * fresh connection, which HTTP allows for idempotent requests (RFC 9110 §9.2.2) and Node documents
 * (`request.reusedSocket`). Any other error, and any failure of the retry, counts as failed.
 */
export function startRetryingLoad(options: { port: number; host: string; path?: string; connections?: number }) {
  const agent = new Agent({ keepAlive: true, maxSockets: options.connections ?? 8 });
  const result: RetryingLoadResult = { ok2xx: 0, non2xx: 0, failed: 0, retried: 0, errorMessages: [] };
  let running = true;

  const once = (fresh = false) =>
    new Promise<number>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port: options.port, path: options.path ?? '/', headers: { host: options.host }, agent: fresh ? false : agent }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
        res.on('error', reject);
      });
      req.on('error', (error: NodeJS.ErrnoException) => reject(Object.assign(error, { reused: req.reusedSocket })));
      req.setTimeout(10_000, () => req.destroy(new Error('timeout')));
      req.end();
    });

  async function worker() {
    while (running) {
      let status: number;
      try {
        status = await once();
      } catch (error) {
        const e = error as NodeJS.ErrnoException & { reused?: boolean };
        if (!(e.reused && (e.code === 'ECONNRESET' || e.message === 'socket hang up'))) {
          result.failed++;
          result.errorMessages.push(e.message);
          continue;
        }
        result.retried++;
        try {
          status = await once(true);
        } catch (retryError) {
          result.failed++;
          result.errorMessages.push(`retry: ${(retryError as Error).message}`);
          continue;
        }
      }
      if (status >= 200 && status < 300) result.ok2xx++;
      else result.non2xx++;
    }
  }

  const workers = Array.from({ length: options.connections ?? 8 }, worker);
  return {
    result,
    async stop(): Promise<RetryingLoadResult> {
      running = false;
      await Promise.all(workers);
      agent.destroy();
      return result;
    },
  };
}
