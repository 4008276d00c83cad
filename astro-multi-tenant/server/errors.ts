/**
 * Typed errors: every failure the platform reports carries a stable code, the offending input and
 * (for content problems) the file and field, so operators can grep logs and site owners can fix
 * their folder without reading a stack trace.
 *
 * The registry below is the one place a code becomes an HTTP status and the words a visitor sees;
 * the pipeline maps any thrown value through `asPlatformError`, so nothing casts an unknown error.
 */
/**
 * How a code answers: `text` is a plain-text body naming what is wrong (the visitor can fix it:
 * a bad Host, a malformed body); `page` is a platform page with fixed words (file names, paths and
 * Redis addresses are for the logs); `internal` is a bare 500 with no details.
 */
export type ErrorAnswer =
  | { kind: 'text' }
  | { kind: 'page'; title: string; message: string; retryAfterSeconds?: number }
  | { kind: 'internal' };

const text = { kind: 'text' } as const;
const internal = { kind: 'internal' } as const;

export const ERRORS = {
  HOST_MISSING: { status: 400, answer: text },
  HOST_MALFORMED: { status: 400, answer: text },
  /** RFC 9112 §3.2: a request with more than one Host field line is invalid. */
  HOST_DUPLICATE: { status: 400, answer: text },
  PATH_MALFORMED: { status: 400, answer: text },
  /** RFC 9110 §15.5.15: longer than we route (2048 characters). */
  PATH_TOO_LONG: { status: 414, answer: text },
  /** A path we refuse to map to a file (`..`, dot-segments, encoded slashes): it names nothing here. */
  PATH_FORBIDDEN: { status: 404, answer: { kind: 'page', title: 'Not found', message: 'There is nothing at this address.' } },
  BODY_MALFORMED: { status: 400, answer: text },
  BODY_TOO_LARGE: { status: 413, answer: text },
  BODY_UNSUPPORTED_TYPE: { status: 415, answer: text },
  SITE_CONFIG_INVALID: {
    status: 503,
    answer: { kind: 'page', title: 'Site unavailable', message: 'This site is temporarily unavailable. Please try again later.', retryAfterSeconds: 30 },
  },
  PAGE_INVALID: {
    status: 503,
    answer: { kind: 'page', title: 'Page unavailable', message: 'This page is temporarily unavailable. Please try again later.', retryAfterSeconds: 30 },
  },
  /**
   * A site's own Astro component or layout (components/) that cannot be used: a compile error, a
   * forbidden import, a missing import. The pages using it answer 503; the file, line and column
   * are in the log, the status page and `sites check`.
   */
  COMPONENT_INVALID: {
    status: 503,
    answer: { kind: 'page', title: 'Page unavailable', message: 'This page is temporarily unavailable. Please try again later.', retryAfterSeconds: 30 },
  },
  SESSION_STORE_UNAVAILABLE: {
    status: 503,
    answer: {
      kind: 'page',
      title: 'Members area unavailable',
      message: 'Signing in is temporarily unavailable, so members-only pages cannot be shown. Please try again in a minute.',
      retryAfterSeconds: 30,
    },
  },
  /**
   * An outbound request to an address a site chose (auth.token.jwksUrl) was refused (not https, not
   * a public address, a redirect elsewhere) or failed (timeout, too large): http/outbound-fetch.ts.
   * Callers turn it into their own answer (a refused token); it never reaches a visitor as such.
   */
  OUTBOUND_REFUSED: { status: 502, answer: internal },
  /**
   * A site over one of its plan's limits (plans/): a short plain-text 429 so a refusal costs no
   * render, with Retry-After from the limiter (ThrottledError), never stored (no-store).
   */
  SITE_RATE_LIMITED: { status: 429, answer: text },
  CONFIG_INVALID: { status: 500, answer: internal },
  INTERNAL: { status: 500, answer: internal },
} as const satisfies Record<string, { status: number; answer: ErrorAnswer }>;

export type ErrorCode = keyof typeof ERRORS;

export class PlatformError extends Error {
  readonly code: ErrorCode;
  readonly input: string | undefined;

  constructor(code: ErrorCode, message: string, input?: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'PlatformError';
    this.code = code;
    this.input = input;
  }

  /** The HTTP status this error answers with (from the registry). */
  get status(): number {
    return ERRORS[this.code].status;
  }

  /** How a visitor is answered (from the registry). */
  get answer(): ErrorAnswer {
    return ERRORS[this.code].answer;
  }
}

/** Any thrown value as a PlatformError: ours pass through, anything else is INTERNAL (500). */
export function asPlatformError(error: unknown): PlatformError {
  if (error instanceof PlatformError) return error;
  return new PlatformError('INTERNAL', error instanceof Error ? error.message : String(error), undefined, { cause: error });
}

/** One problem in a content file: which file, which field (dotted path) and why. */
export interface ContentIssue {
  file: string;
  field: string;
  reason: string;
}

export class ContentError extends PlatformError {
  declare readonly code: 'SITE_CONFIG_INVALID' | 'PAGE_INVALID';
  readonly issues: ContentIssue[];

  constructor(code: 'SITE_CONFIG_INVALID' | 'PAGE_INVALID', issues: ContentIssue[]) {
    super(code, issues.map(formatIssue).join('\n'), issues[0]?.file);
    this.name = 'ContentError';
    this.issues = issues;
  }
}

/** Which limit of its plan a site met (plans/): requests, renders, render concurrency or render time. */
export type ThrottleReason = 'requests' | 'renders' | 'render_concurrency' | 'render_cpu';

/** A site over a limit of its plan: 429 with Retry-After (whole seconds, RFC 9110 §10.2.3). */
export class ThrottledError extends PlatformError {
  declare readonly code: 'SITE_RATE_LIMITED';
  readonly reason: ThrottleReason;
  readonly plan: string;
  readonly retryAfterSeconds: number;

  constructor(site: string, reason: ThrottleReason, plan: string, retryAfterSeconds: number) {
    super('SITE_RATE_LIMITED', `site "${site}" is over its plan's ${reason.replace('_', ' ')} limit; retry in ${retryAfterSeconds} s`, site);
    this.name = 'ThrottledError';
    this.reason = reason;
    this.plan = plan;
    this.retryAfterSeconds = retryAfterSeconds;
  }
}

export function formatIssue(issue: ContentIssue): string {
  return issue.field ? `${issue.file}: ${issue.field}: ${issue.reason}` : `${issue.file}: ${issue.reason}`;
}
