import autocannon from 'autocannon';

export interface LoadResult {
  total: number;
  ok2xx: number;
  non2xx: number;
  errors: number;
  timeouts: number;
  /** Each distinct error message seen, so a failing assertion says what went wrong. */
  errorMessages: string[];
}

export interface RunningLoad {
  /** Resolves when the load ends (duration, amount, or stop()). */
  done: Promise<LoadResult>;
  stop(): void;
  /** 2xx responses so far. */
  readonly ok: number;
}

/** Continuous keep-alive load on loopback with autocannon, bounded by time or request count. */
export function startLoad(options: { port: number; host: string; path?: string; connections?: number; seconds?: number; amount?: number }): RunningLoad {
  let ok = 0;
  const messages = new Set<string>();
  let settle: { resolve: (r: LoadResult) => void; reject: (e: Error) => void } | undefined;
  const done = new Promise<LoadResult>((resolve, reject) => (settle = { resolve, reject }));
  const instance = autocannon(
    {
    url: `http://127.0.0.1:${options.port}${options.path ?? '/'}`,
    connections: options.connections ?? 8,
    headers: { host: options.host },
    ...(options.amount ? { amount: options.amount } : { duration: options.seconds ?? 60 }),
    timeout: 10,
    },
    (error, result) => {
      if (error) return settle!.reject(error);
      settle!.resolve({
        total: result.requests.total,
        ok2xx: result['2xx'],
        non2xx: result.non2xx,
        errors: result.errors,
        timeouts: result.timeouts,
        errorMessages: [...messages],
      });
    },
  );
  instance.on('response', (_client: unknown, statusCode: number) => {
    if (statusCode >= 200 && statusCode < 300) ok++;
  });
  instance.on('reqError', (error: Error) => messages.add(error.message));
  return {
    done,
    stop: () => instance.stop(),
    get ok() {
      return ok;
    },
  };
}
