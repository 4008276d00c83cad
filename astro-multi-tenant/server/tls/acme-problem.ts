import { AsyncLocalStorage } from 'node:async_hooks';
import { loadAcmeClient } from './acme-client-module.ts';
import type { AttemptFailure } from './renewal-schedule.ts';

/**
 * What the CA said when an ACME call failed. acme-client turns a CA's problem document into a
 * plain Error with the `detail` text only; the problem `type`, the HTTP status and `Retry-After`
 * (which rate limits need) are lost. So every response acme-client receives passes through an
 * interceptor on its own axios instance, and the last problem seen is kept in the async context
 * of the attempt that caused it (`withProblemCapture`), never shared between concurrent attempts.
 */
export interface AcmeProblem {
  /** HTTP status of the response (200 for a challenge or order polled into `invalid`). */
  status: number;
  /** RFC 8555 §6.7 problem type, e.g. `urn:ietf:params:acme:error:rateLimited`. */
  type?: string;
  detail?: string;
  /** The Retry-After header in ms, when the CA sent one. */
  retryAfterMs?: number;
}

/** One attempt's async context: the last problem the CA sent, and the bounds its requests run under. */
interface AttemptContext {
  last?: AcmeProblem;
  /** Each request's timeout (ms): a CA that accepts a connection and never answers. */
  requestTimeoutMs?: number;
  /** Aborted at the attempt's deadline: every request still running or started after it fails at once. */
  signal?: AbortSignal;
  /** The request that went unanswered for requestTimeoutMs, when one did (for the failure's message). */
  noAnswer?: string;
}

/** An axios request config as this hook sees it: `amtTimer` is its own per-request timer. */
interface RequestConfig {
  method?: string;
  url?: string;
  signal?: unknown;
  amtTimer?: NodeJS.Timeout;
}

const context = new AsyncLocalStorage<AttemptContext>();
let installed = false;

/**
 * The longest Retry-After honoured (ms): a week, Let's Encrypt's longest rate-limit window. A CA
 * asking for more (a broken one, a typo: ten years) would otherwise stop every order of the account
 * for that long; after a week the next attempt asks again.
 */
export const MAX_RETRY_AFTER_MS = 7 * 86_400_000;

/** Retry-After: delay-seconds or an HTTP date (RFC 9110 §10.2.3), in ms from `now`, at most MAX_RETRY_AFTER_MS; undefined when absent or unreadable. Pure. */
export function parseRetryAfter(header: unknown, now: number): number | undefined {
  if (typeof header !== 'string' || header.trim() === '') return undefined;
  if (/^\d+$/.test(header.trim())) return Math.min(MAX_RETRY_AFTER_MS, Number(header.trim()) * 1000);
  const at = Date.parse(header);
  return Number.isNaN(at) ? undefined : Math.min(MAX_RETRY_AFTER_MS, Math.max(0, at - now));
}

interface ResponseLike {
  status?: number;
  headers?: Record<string, unknown>;
  data?: unknown;
}

function record(response: ResponseLike | undefined): void {
  const store = context.getStore();
  if (!store || !response) return;
  const data = (response.data ?? {}) as { type?: unknown; detail?: unknown; status?: unknown; error?: { type?: unknown; detail?: unknown } };
  // A problem document (4xx/5xx), or an authorization/challenge/order polled into `invalid` with its `error`.
  const problem = (response.status ?? 0) >= 400 ? data : data.status === 'invalid' && data.error ? data.error : undefined;
  if (!problem) return;
  store.last = {
    status: response.status ?? 0,
    type: typeof problem.type === 'string' ? problem.type : undefined,
    detail: typeof problem.detail === 'string' ? problem.detail : undefined,
    retryAfterMs: parseRetryAfter(response.headers?.['retry-after'], Date.now()),
  };
}

/**
 * Hooks acme-client's axios instance once per process: records problems (above), bounds each
 * request of an attempt (its timeout and deadline signal, from withProblemCapture; axios has no
 * timeout by default, so a CA that stopped answering held the order, the domain's lock and the
 * manager's tick forever), and turns off acme-client's own retries of 429 and 5xx answers. Those
 * sleep inside the call for as long as Retry-After says (hours, for a rate limit) while holding the
 * domain's lock; the manager's backoff and per-domain schedule retry instead, shared by the whole
 * cluster.
 */
export async function installProblemCapture(): Promise<void> {
  if (installed) return;
  const acme = await loadAcmeClient();
  if (installed) return;
  installed = true;
  (acme.axios.defaults as unknown as { acmeSettings: { retryMaxAttempts: number } }).acmeSettings.retryMaxAttempts = 0;
  // The request timeout is this hook's own timer and abort, not axios's `timeout`: acme-client's
  // retry interceptor turns every request that got no answer into a TypeError ("reading 'config'"),
  // so the failure could not say which request timed out; the timer records it in the attempt.
  acme.axios.interceptors.request.use((config) => {
    const attempt = context.getStore();
    if (!attempt) return config;
    const signals: AbortSignal[] = attempt.signal ? [attempt.signal] : [];
    const ms = attempt.requestTimeoutMs;
    if (ms) {
      const controller = new AbortController();
      const request = config as RequestConfig;
      request.amtTimer = setTimeout(() => {
        attempt.noAnswer ??= `no answer within ${seconds(ms)} s (${(request.method ?? 'get').toUpperCase()} ${request.url})`;
        controller.abort();
      }, ms);
      request.amtTimer.unref();
      signals.push(controller.signal);
    }
    if (signals.length > 0) config.signal = signals.length === 1 ? signals[0] : AbortSignal.any(signals);
    return config;
  });
  acme.axios.interceptors.response.use(
    (response) => {
      clearTimeout((response.config as RequestConfig).amtTimer);
      record(response);
      return response;
    },
    (error: { config?: RequestConfig; response?: ResponseLike }) => {
      // An answer that is an error (4xx, 5xx) is an answer: its timer must not fire later in the attempt.
      clearTimeout(error?.config?.amtTimer);
      record(error?.response);
      return Promise.reject(error);
    },
  );
}

/** Bounds on one attempt's requests to the CA (ms); unset = unbounded. */
export interface AttemptLimits {
  /** Each request: no answer within this long fails it (kind `network`). */
  requestTimeoutMs?: number;
  /** The whole attempt: at this point every request still running is aborted and the attempt fails with `deadlineMessage`. */
  deadlineMs?: number;
  /** The failure's message at the deadline (kind `network`); default "the CA did not complete the request within N s". */
  deadlineMessage?: string;
}

/**
 * Runs `fn` with problem capture and `limits` on its requests to the CA; returns its result, or
 * throws an AttemptFailure-carrying AcmeAttemptError. At the deadline the attempt fails at once;
 * `fn` itself is left to fail on its next request (the signal is aborted), never awaited.
 */
export async function withProblemCapture<T>(fn: () => Promise<T>, limits: AttemptLimits = {}): Promise<T> {
  await installProblemCapture();
  const controller = limits.deadlineMs ? new AbortController() : undefined;
  const store: AttemptContext = { requestTimeoutMs: limits.requestTimeoutMs, signal: controller?.signal };
  let timer: NodeJS.Timeout | undefined;
  try {
    const run = context.run(store, fn);
    if (!controller) return await run;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        controller.abort();
        const message = limits.deadlineMessage ?? `the CA did not complete the request within ${seconds(limits.deadlineMs!)} s`;
        reject(new AcmeAttemptError({ kind: 'network', message }));
      }, limits.deadlineMs);
    });
    return await Promise.race([run, deadline]);
  } catch (error) {
    if (error instanceof AcmeAttemptError) throw error;
    if (store.noAnswer) throw new AcmeAttemptError({ kind: 'network', message: `cannot reach the CA: ${store.noAnswer}` });
    throw new AcmeAttemptError(classifyAcmeFailure(error, store.last));
  } finally {
    if (timer) clearTimeout(timer);
  }
}

/** ms as seconds for a message: 300 → "0.3", 30000 → "30". Pure. */
export function seconds(ms: number): string {
  return String(Math.round(ms / 100) / 10);
}

/**
 * Whose rate limit a CA's `rateLimited` refusal of an order for `host` is, from its detail text
 * (RFC 8555 gives no structured scope; these are Let's Encrypt's wordings, current and older). Pure.
 * - `host`: the CA names the host or a domain it is under (certificates per registered domain,
 *   failed authorisations per name), or "this exact set" of names: only this host waits, so one
 *   tenant hitting the limits of its own domain never pauses everyone's orders;
 * - `account`: anything else (new orders per account, registrations, no detail): every order of
 *   the account waits.
 */
export function rateLimitScope(host: string, detail: string | undefined): 'host' | 'account' {
  if (!detail) return 'account';
  if (/exact set of (?:identifiers|domains|hostnames|names)/i.test(detail)) return 'host';
  const named = [...detail.matchAll(/"([a-z0-9.-]+)"|issued for:? ([a-z0-9-]+(?:\.[a-z0-9-]+)+)/gi)].map((m) => (m[1] ?? m[2]!).toLowerCase());
  return named.some((name) => host === name || host.endsWith(`.${name}`)) ? 'host' : 'account';
}

/** A failed attempt, classified: thrown by the issuer, recorded by the manager. */
export class AcmeAttemptError extends Error {
  readonly failure: AttemptFailure;
  constructor(failure: AttemptFailure) {
    super(failure.message);
    this.name = 'AcmeAttemptError';
    this.failure = failure;
  }
}

const VALIDATION = new Set(['unauthorized', 'connection', 'dns', 'incorrectResponse', 'caa', 'tls', 'rejectedIdentifier', 'unsupportedIdentifier']);
const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'ECONNABORTED', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'SELF_SIGNED_CERT_IN_CHAIN', 'CERT_HAS_EXPIRED']);

/**
 * The kind of a failure, from the last problem the CA sent (if any) and the thrown error. Pure.
 * - `rate_limited`: HTTP 429 or `rateLimited`: wait at least Retry-After;
 * - `validation`: the CA could not confirm the HTTP-01 answer (DNS, connection, wrong answer, CAA);
 * - `ca`: the CA failed (5xx, `serverInternal`) or refused the request for another reason;
 * - `network`: no answer from the CA at all (refused, timeout, TLS trust);
 * - `other`: anything else (a bug, a store failure inside the attempt).
 */
export function classifyAcmeFailure(error: unknown, problem: AcmeProblem | undefined): AttemptFailure {
  const failure = kindOf(error, problem);
  const type = problem?.type?.replace('urn:ietf:params:acme:error:', '');
  return type ? { ...failure, type } : failure;
}

function kindOf(error: unknown, problem: AcmeProblem | undefined): AttemptFailure {
  const message = (error as Error)?.message || String(error);
  const code = (error as NodeJS.ErrnoException)?.code;
  const short = problem?.type?.replace('urn:ietf:params:acme:error:', '');
  if (problem?.status === 429 || short === 'rateLimited') return { kind: 'rate_limited', message: `rate limited by the CA: ${problem?.detail ?? message}`, retryAfterMs: problem?.retryAfterMs };
  if (short && VALIDATION.has(short)) return { kind: 'validation', message: `${short}: ${problem?.detail ?? message}` };
  if (problem && (problem.status >= 500 || short === 'serverInternal')) return { kind: 'ca', message: `CA error ${problem.status}${short ? ` ${short}` : ''}: ${problem.detail ?? message}`, retryAfterMs: problem.retryAfterMs };
  if (problem && problem.status >= 400) return { kind: 'ca', message: `CA refused (${problem.status}${short ? ` ${short}` : ''}): ${problem.detail ?? message}` };
  if (code && NETWORK_CODES.has(code)) return { kind: 'network', message: `cannot reach the CA: ${code}` };
  return { kind: 'other', message };
}
