import { ThrottledError, type ThrottleReason } from '../errors.ts';

/**
 * A ThrottledError without a stack trace. Refusing is what a limit does all day under a flood, and
 * a 429 is answered from the error's fields alone (pipeline/error-response.ts `answerThrottled`),
 * never from where it was made: V8 captures a stack in the Error constructor unless
 * `Error.stackTraceLimit` is 0 (https://v8.dev/docs/stack-trace-api), and that capture was most of
 * the cost of a refusal (a micro-benchmark on this machine, Node 24, 8 async frames deep: ~12 µs
 * to construct with a stack, ~2 µs without; ~17 µs to throw and catch one with a stack, ~5 µs
 * without). The limit is restored before returning: construction is synchronous, so no other
 * code can run meanwhile.
 */
export function throttledError(siteId: string, reason: ThrottleReason, plan: string, retryAfterSeconds: number): ThrottledError {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    return new ThrottledError(siteId, reason, plan, retryAfterSeconds);
  } finally {
    Error.stackTraceLimit = limit;
  }
}
