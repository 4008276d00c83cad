import pino from 'pino';

/** JSON lines on stdout: PM2, Docker and Kubernetes all collect stdout, and pino is cheap on the hot path. */
export function createLogger(level: string) {
  return pino({ level, base: { pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime });
}

export type Logger = ReturnType<typeof createLogger>;
