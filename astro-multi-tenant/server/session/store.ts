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
  /** Counts one failed sign-in for `key` in a fixed window; returns the count so far. */
  recordFailure(key: string, windowSeconds: number): Promise<number>;
  failures(key: string): Promise<number>;
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
export const failureKey = (site: string, ip: string) => `signin-fail:${site}:${ip}`;
