import { AsyncLocalStorage } from 'node:async_hooks';
import acme from 'acme-client';
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

const context = new AsyncLocalStorage<{ last?: AcmeProblem }>();
let installed = false;

/** Retry-After: delay-seconds or an HTTP date (RFC 9110 §10.2.3), in ms from `now`; undefined when absent or unreadable. Pure. */
export function parseRetryAfter(header: unknown, now: number): number | undefined {
  if (typeof header !== 'string' || header.trim() === '') return undefined;
  if (/^\d+$/.test(header.trim())) return Number(header.trim()) * 1000;
  const at = Date.parse(header);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
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
 * Hooks acme-client's axios instance once per process: records problems (above), and turns off
 * acme-client's own retries of 429 and 5xx answers. Those sleep inside the call for as long as
 * Retry-After says (hours, for a rate limit) while holding the domain's lock; the manager's
 * backoff and per-domain schedule retry instead, shared by the whole cluster.
 */
export function installProblemCapture(): void {
  if (installed) return;
  installed = true;
  (acme.axios.defaults as unknown as { acmeSettings: { retryMaxAttempts: number } }).acmeSettings.retryMaxAttempts = 0;
  acme.axios.interceptors.response.use(
    (response) => {
      record(response);
      return response;
    },
    (error: { response?: ResponseLike }) => {
      record(error?.response);
      return Promise.reject(error);
    },
  );
}

/** Runs `fn` with problem capture; returns its result, or throws an AttemptFailure-carrying AcmeAttemptError. */
export async function withProblemCapture<T>(fn: () => Promise<T>): Promise<T> {
  installProblemCapture();
  const store: { last?: AcmeProblem } = {};
  try {
    return await context.run(store, fn);
  } catch (error) {
    throw error instanceof AcmeAttemptError ? error : new AcmeAttemptError(classifyAcmeFailure(error, store.last));
  }
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
