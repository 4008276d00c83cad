import type { Exchange } from './context.ts';
import { ContentError, ERRORS, ThrottledError, type ErrorCode, type PlatformError } from '../errors.ts';
import { reasonPhrase, sendText, type PlatformPages } from '../http/respond.ts';
import type { RouteKind } from '../ops/metrics.ts';

/** Log words for codes operators meet often; others log their code. */
const SUMMARY: Partial<Record<ErrorCode, string>> = {
  SITE_CONFIG_INVALID: 'site config invalid',
  PAGE_INVALID: 'page invalid',
  SESSION_STORE_UNAVAILABLE: 'session store unavailable',
};

/**
 * Answers a request whose stages threw, using the error registry (errors.ts) for the status and
 * the words: the one place a code becomes a response. Headers an earlier stage set (ETag,
 * Cache-Control, X-Accel-Expires) are dropped first, so an error is never cached as a page; a
 * response already under way is cut off instead (the client sees a broken response, never a
 * wrong one). A plan's 429 first waits for `pace` (pipeline/refusal-pacer.ts) while the worker is
 * busy. Returns the route kind for metrics and the access log.
 */
export async function answerError(ctx: Exchange, error: PlatformError, pages: PlatformPages, pace?: () => Promise<void> | undefined): Promise<RouteKind> {
  const { req, res, log } = ctx;
  const { status, answer } = ERRORS[error.code];
  if (status >= 500) {
    if (answer.kind === 'internal') log.error({ err: error.cause ?? error, code: error.code }, 'request failed');
    else log.error({ code: error.code, input: error.input, ...(error instanceof ContentError ? { issues: error.issues } : { err: error.message }) }, `${SUMMARY[error.code] ?? error.code}; answering ${status}`);
  } else if (error instanceof ThrottledError) {
    // Render throttles: the 429 waits like the request-limit stage's while the worker is busy.
    const paced = pace?.();
    if (paced) await paced;
    return answerThrottled(ctx, error);
  } else {
    log.info({ code: error.code, input: error.input?.slice(0, 200), reason: error.message }, 'request refused');
  }
  const route: RouteKind = status >= 500 ? (answer.kind === 'internal' ? 'error' : 'unavailable') : 'bad_request';
  if (res.headersSent) {
    res.destroy();
    return route;
  }
  for (const name of res.getHeaderNames()) if (name !== 'x-request-id') res.removeHeader(name);
  res.setHeader('Cache-Control', 'no-store');
  if (answer.kind === 'text') {
    sendText(res, status, `${reasonPhrase(status)}: ${error.message}\n`);
  } else if (answer.kind === 'page') {
    const retryAfter = 'retryAfterSeconds' in answer ? { 'Retry-After': String(answer.retryAfterSeconds) } : undefined;
    try {
      await pages.error(req, res, { status: status as 404 | 503, title: answer.title, message: answer.message }, retryAfter);
    } catch (renderError) {
      // The renderer itself is broken: the words still reach the visitor, as text.
      log.error({ err: renderError }, 'platform page failed to render');
      if (!res.headersSent) sendText(res, status, `${answer.title}\n`, { headers: { 'Cache-Control': 'no-store' } });
      else res.destroy();
    }
  } else {
    sendText(res, 500, 'Internal Server Error\n');
  }
  return route;
}

/**
 * Answers a request refused by a limit of its site's plan: 429 (errors.ts SITE_RATE_LIMITED) with
 * Retry-After in whole seconds (RFC 9110 §10.2.3), `no-store`, and the error's words as short plain
 * text, with any header an earlier stage set dropped. For a ThrottledError thrown by any stage (via
 * answerError) and called directly by the request-limit stage, which makes its error without a
 * stack (plans/throttled.ts) and answers without throwing: a flood of refusals costs no stack
 * capture and no rejection through the stages. Logged at debug only: a flood of these is what a
 * limit is for, and the access log line (status 429) says enough. Returns the route kind.
 */
export function answerThrottled(ctx: Exchange, error: ThrottledError): RouteKind {
  const { res } = ctx;
  ctx.log.debug({ code: error.code, reason: error.reason, plan: error.plan }, 'request throttled');
  if (res.headersSent) {
    res.destroy();
    return 'throttled';
  }
  for (const name of res.getHeaderNames()) if (name !== 'x-request-id') res.removeHeader(name);
  const status = ERRORS[error.code].status;
  sendText(res, status, `${reasonPhrase(status)}: ${error.message}\n`, { headers: { 'Cache-Control': 'no-store', 'Retry-After': String(error.retryAfterSeconds) } });
  return 'throttled';
}
