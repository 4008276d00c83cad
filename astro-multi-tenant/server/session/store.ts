import { PlatformError } from '../errors.ts';
/**
 * Where sessions live. Every operation is scoped by site: a session id from site A looked up under
 * site B simply does not exist, whatever the cookie or token claims.
 */
export interface SessionRecord {
  site: string;
  id: string;
  /** Stable user key within the site: member email, or the identity provider's `sub`. */
  user: string;
  name: string;
  method: 'password' | 'token';
  createdAt: number;
}

export interface SessionStore {
  readonly kind: 'redis' | 'memory';
  create(record: SessionRecord, idleTtlSeconds: number): Promise<void>;
  /** Returns the session and slides its idle expiry, or null when it expired or was revoked. */
  get(site: string, id: string, idleTtlSeconds: number): Promise<SessionRecord | null>;
  destroy(site: string, id: string): Promise<void>;
  /** Revokes every session of one user on one site; returns how many there were. */
  destroyAllForUser(site: string, user: string): Promise<number>;
  /**
   * A counter of sign-in attempts in this store (Redis: shared by every worker and machine), for
   * at most `limit.maxAttempts` attempts per key in a fixed window of `limit.windowSeconds`.
   */
  attemptLimiter(limit: AttemptLimit): AttemptLimiter;
  ping(): Promise<void>;
  close(): Promise<void>;
}

/** Thrown when the store cannot answer (Redis down, timeout); callers turn it into a 503. */
export class SessionStoreUnavailable extends PlatformError {
  declare readonly code: 'SESSION_STORE_UNAVAILABLE';
  constructor(operation: string, cause: unknown) {
    super('SESSION_STORE_UNAVAILABLE', `session store unavailable during ${operation}: ${(cause as Error)?.message ?? String(cause)}`, operation, { cause });
    this.name = 'SessionStoreUnavailable';
  }
}

export const sessionKey = (site: string, id: string) => `sess:${site}:${id}`;
export const userIndexKey = (site: string, user: string) => `sessu:${site}:${user}`;

export interface AttemptLimit {
  maxAttempts: number;
  windowSeconds: number;
}

export type AttemptDecision = { allowed: true; remaining: number } | { allowed: false; retryAfterSeconds: number };

/**
 * Counts attempts before the work they guard. `take` adds one and answers in the same atomic step
 * (a Lua script in Redis, one synchronous step in memory), so parallel requests can never all read
 * "below the limit" and then all be checked: at most `maxAttempts` of them are ever allowed.
 */
export interface AttemptLimiter {
  /** Counts one attempt for `key`; refused (with seconds until the window ends) past the limit. */
  take(key: string): Promise<AttemptDecision>;
  /** Gives back one attempt (a sign-in that succeeded), so only failures use up the allowance. */
  refund(key: string): Promise<void>;
}

/** The key a sign-in attempt is counted under: one site, one client (see sign-in-subject.ts). */
export const attemptKey = (site: string, subject: string) => `${site}:${subject}`;
