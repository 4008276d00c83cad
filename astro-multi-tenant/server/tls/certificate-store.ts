/**
 * What the certificate manager keeps in the shared store (Redis, or a private file in STATE_DIR),
 * so that every worker on every machine sees one account, one certificate per host and every
 * pending HTTP-01 answer. Times are ms since the epoch.
 */

/** The ACME account of one directory (CA): created once by whichever process needs it first. */
export interface AccountRecord {
  directoryUrl: string;
  /** PEM (PKCS#8) of the account key. */
  keyPem: string;
  /** The account's URL at the CA (`kid`). */
  url: string;
  createdAt: number;
}

/** Why an attempt failed, for backoff, metrics (`kind` is a label value) and the status page. */
export type AcmeErrorKind = 'rate_limited' | 'validation' | 'ca' | 'network' | 'store' | 'other';

/**
 * One host's certificate facts, without the PEMs (small: every worker lists them all each tick).
 * No `serial` = no certificate yet.
 */
export interface CertificateRecord {
  /** The site the host belonged to when last handled (for the status page; the certificate is the host's). */
  site: string;
  serial?: string;
  notBefore?: number;
  notAfter?: number;
  issuedAt?: number;
  /** Failed attempts since the last success (0 = none). */
  failures: number;
  lastError?: string;
  lastErrorKind?: AcmeErrorKind;
  lastAttemptAt?: number;
  /** No attempt before this (backoff or the CA's Retry-After). */
  nextAttemptAt?: number;
  /** Since when no site wants this host (domain removed, no longer verified): removed after a delay. */
  unwantedSince?: number;
  /** Marked revoked (`sites revoke-certificate`): renewed at once. */
  revoked?: boolean;
  /** ARI (tls/renewal-info.ts): the moment inside the CA's suggested window chosen to renew at; a past window means at once. */
  renewAfter?: number;
  /** ARI: when to ask the CA about this certificate again. */
  ariCheckAt?: number;
}

/** The certificate itself: the chain nginx serves and the key it signs with. */
export interface CertificateBundle {
  serial: string;
  /** Leaf first, then the chain, PEM. */
  chainPem: string;
  keyPem: string;
}

/** A pending HTTP-01 answer: served only on `host`, until `expiresAt`. */
export interface ChallengeRecord {
  host: string;
  keyAuthorization: string;
  expiresAt: number;
}

/**
 * The shared store. Every method may throw when the store is unreachable (Redis down, STATE_DIR
 * unusable); the manager logs that and tries again on its next tick.
 */
export interface CertificateStore {
  /** Where the records live, for messages. */
  readonly location: string;
  getAccount(directoryUrl: string): Promise<AccountRecord | undefined>;
  putAccount(record: AccountRecord): Promise<void>;
  /** Every host's record: host → record (no PEMs). */
  list(): Promise<Map<string, CertificateRecord>>;
  /**
   * A cheap token that changes whenever a record or certificate is written or removed (one GET or
   * one stat): each worker polls it every few seconds and lists the records only when it moved, so
   * a certificate issued on one machine reaches every machine's CERTS_DIR within seconds.
   */
  version(): Promise<string>;
  get(host: string): Promise<CertificateRecord | undefined>;
  getBundle(host: string): Promise<CertificateBundle | undefined>;
  /**
   * Writes a host's record and, when given, its certificate (both replace what was there).
   * `quiet`: a schedule-only change (ARI's renewal moment) that moves no file, so the version is not
   * moved where the store can avoid it (Redis, memory) and workers see it at their next full tick
   * instead of all listing at once.
   */
  put(host: string, record: CertificateRecord, bundle?: CertificateBundle, options?: { quiet?: boolean }): Promise<void>;
  /** Forgets a host: record and certificate. */
  remove(host: string): Promise<void>;
  /**
   * Takes the named lock for `ttlMs` unless another owner holds it; true when taken. A lock whose
   * holder died expires by itself, so a crash never blocks a domain for longer than `ttlMs`.
   */
  lock(name: string, owner: string, ttlMs: number): Promise<boolean>;
  /** Drops the lock if `owner` still holds it. */
  unlock(name: string, owner: string): Promise<void>;
  putChallenge(token: string, challenge: ChallengeRecord): Promise<void>;
  /** The challenge for this token, if it has not expired. */
  getChallenge(token: string): Promise<ChallengeRecord | undefined>;
  removeChallenge(token: string): Promise<void>;
  /** Until when the CA asked the whole account to wait (rate limits); 0 when it did not. */
  getPause(): Promise<number>;
  /** Pauses every order until `until` (ms), unless a later pause is already stored: a shorter one never replaces it. */
  setPause(until: number): Promise<void>;
}

/** Whether a parsed value is a usable CertificateRecord (fields this version cannot read make it unusable). */
export function isCertificateRecord(value: unknown): value is CertificateRecord {
  const r = value as CertificateRecord | null;
  return typeof r === 'object' && r !== null && typeof r.site === 'string' && typeof r.failures === 'number'
    && (r.serial === undefined || (typeof r.serial === 'string' && typeof r.notBefore === 'number' && typeof r.notAfter === 'number'));
}

export function isCertificateBundle(value: unknown): value is CertificateBundle {
  const b = value as CertificateBundle | null;
  return typeof b === 'object' && b !== null && typeof b.serial === 'string' && typeof b.chainPem === 'string' && typeof b.keyPem === 'string';
}

export function isAccountRecord(value: unknown): value is AccountRecord {
  const a = value as AccountRecord | null;
  return typeof a === 'object' && a !== null && typeof a.directoryUrl === 'string' && typeof a.keyPem === 'string' && typeof a.url === 'string';
}

export function isChallengeRecord(value: unknown): value is ChallengeRecord {
  const c = value as ChallengeRecord | null;
  return typeof c === 'object' && c !== null && typeof c.host === 'string' && typeof c.keyAuthorization === 'string' && typeof c.expiresAt === 'number';
}

/** A store kept in this process only: for tests and one-shot commands. `now` decides lock and challenge expiry. */
export function createMemoryCertificateStore(now: () => number = Date.now): CertificateStore {
  const accounts = new Map<string, AccountRecord>();
  const records = new Map<string, CertificateRecord>();
  const bundles = new Map<string, CertificateBundle>();
  const locks = new Map<string, { owner: string; expiresAt: number }>();
  const challenges = new Map<string, ChallengeRecord>();
  let pause = 0;
  let version = 0;
  const copy = <T>(value: T): T => structuredClone(value);
  return {
    location: '(memory)',
    getAccount: async (directoryUrl) => (accounts.has(directoryUrl) ? copy(accounts.get(directoryUrl)) : undefined),
    async putAccount(record) {
      accounts.set(record.directoryUrl, copy(record));
    },
    list: async () => new Map([...records].map(([host, r]) => [host, copy(r)])),
    version: async () => String(version),
    get: async (host) => (records.has(host) ? copy(records.get(host)) : undefined),
    getBundle: async (host) => (bundles.has(host) ? copy(bundles.get(host)) : undefined),
    async put(host, record, bundle, options) {
      records.set(host, copy(record));
      if (bundle) bundles.set(host, copy(bundle));
      if (!options?.quiet) version++;
    },
    async remove(host) {
      records.delete(host);
      bundles.delete(host);
      version++;
    },
    async lock(name, owner, ttlMs) {
      const held = locks.get(name);
      if (held && held.owner !== owner && held.expiresAt > now()) return false;
      locks.set(name, { owner, expiresAt: now() + ttlMs });
      return true;
    },
    async unlock(name, owner) {
      if (locks.get(name)?.owner === owner) locks.delete(name);
    },
    async putChallenge(token, challenge) {
      challenges.set(token, copy(challenge));
    },
    async getChallenge(token) {
      const c = challenges.get(token);
      return c && c.expiresAt > now() ? copy(c) : undefined;
    },
    async removeChallenge(token) {
      challenges.delete(token);
    },
    getPause: async () => (pause > now() ? pause : 0),
    async setPause(until) {
      pause = Math.max(pause, until);
    },
  };
}
