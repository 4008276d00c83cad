import type { AcmeErrorKind, CertificateRecord } from './certificate-store.ts';

/**
 * When a host's certificate is (re)issued and when a failed attempt may run again. Pure: every
 * function takes the time (ms since the epoch) it decides for.
 */

/** Where a host's certificate stands, for metrics (`state` label), the status page and the CLI. */
export type CertificateState = 'pending' | 'valid' | 'due' | 'failing' | 'failed' | 'expired' | 'revoked';

export const CERTIFICATE_STATES: readonly CertificateState[] = ['pending', 'valid', 'due', 'failing', 'failed', 'expired', 'revoked'];

/** The first retry after a failure waits this long; each further failure doubles it. */
export const BACKOFF_BASE_MS = 2 * 60_000;
/** Never more than a day between attempts, whatever the failure count. */
export const BACKOFF_MAX_MS = 24 * 3600_000;

/**
 * When a certificate valid from `notBefore` to `notAfter` is renewed: `renewBeforeMs` before it
 * expires (ACME_RENEW_DAYS, 30 days by default), but never earlier than two thirds into its
 * lifetime, so short-lived certificates (six-day ones, a test CA's minutes) are not renewed
 * continuously. For a 90-day certificate both rules give day 60.
 */
export function renewAt(notBefore: number, notAfter: number, renewBeforeMs: number): number {
  return notAfter - Math.min(renewBeforeMs, Math.max(0, notAfter - notBefore) / 3);
}

/** A record that holds a certificate: its serial and validity are known. */
export type Certified = CertificateRecord & { serial: string; notBefore: number; notAfter: number };

export const hasCertificate = (record: CertificateRecord | undefined): record is Certified =>
  record?.serial !== undefined && record.notBefore !== undefined && record.notAfter !== undefined;

/** When this certificate is renewed: by its dates, or earlier when the CA's renewal information (ARI) says so. */
export function renewalTime(record: Certified, renewBeforeMs: number): number {
  return Math.min(renewAt(record.notBefore, record.notAfter, renewBeforeMs), record.renewAfter ?? Infinity);
}

/** Where `record` stands at `now`. No record or no certificate yet: pending, or failed after an attempt failed. */
export function certificateState(record: CertificateRecord | undefined, now: number, renewBeforeMs: number): CertificateState {
  if (!hasCertificate(record)) return record && record.failures > 0 ? 'failed' : 'pending';
  if (record.revoked) return 'revoked';
  if (now >= record.notAfter) return 'expired';
  if (record.failures > 0) return 'failing';
  return now >= renewalTime(record, renewBeforeMs) ? 'due' : 'valid';
}

/** Whether this host needs a new certificate now (none, revoked, expired, or inside its renewal window). */
export function needsCertificate(record: CertificateRecord | undefined, now: number, renewBeforeMs: number): boolean {
  if (!hasCertificate(record) || record.revoked) return true;
  return now >= renewalTime(record, renewBeforeMs);
}

/** Whether backoff (or the CA's Retry-After) still holds the next attempt back. */
export function isBackingOff(record: CertificateRecord | undefined, now: number): boolean {
  return record?.nextAttemptAt !== undefined && now < record.nextAttemptAt;
}

/** Wait after the `failures`-th failure in a row (1 = first): 2, 4, 8 … minutes, at most a day. */
export function backoffMs(failures: number): number {
  return Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** Math.max(0, Math.min(failures - 1, 30)));
}

/** What went wrong with one attempt: `retryAfterMs` is the CA's Retry-After, when it sent one. */
export interface AttemptFailure {
  kind: AcmeErrorKind;
  message: string;
  retryAfterMs?: number;
  /** The CA's problem type without its `urn:ietf:params:acme:error:` prefix (`accountDoesNotExist`), when it sent one. */
  type?: string;
  /** For `rate_limited`: whether only this host waits (`host`) or every order of the account (`account`, the default); tls/acme-problem.ts rateLimitScope. */
  scope?: 'host' | 'account';
}

/** The record after a failed attempt at `now`: one more failure, the next attempt after backoff or the CA's Retry-After, whichever is later. The certificate it had is kept (nginx keeps serving it). */
export function afterFailure(record: CertificateRecord | undefined, site: string, failure: AttemptFailure, now: number): CertificateRecord {
  const failures = (record?.failures ?? 0) + 1;
  const wait = Math.max(backoffMs(failures), failure.retryAfterMs ?? 0);
  return { ...record, site, failures, lastError: failure.message.slice(0, 500), lastErrorKind: failure.kind, lastAttemptAt: now, nextAttemptAt: now + wait, unwantedSince: undefined };
}

/** The record after a certificate was issued at `now`. */
export function afterSuccess(site: string, cert: { serial: string; notBefore: number; notAfter: number }, now: number): CertificateRecord {
  return { site, serial: cert.serial, notBefore: cert.notBefore, notAfter: cert.notAfter, issuedAt: now, failures: 0, lastAttemptAt: now };
}

/**
 * The earliest moment after `now` at which one of `records` (of wanted hosts) becomes due:
 * its renewal time or the end of its backoff. Undefined when nothing is scheduled. The manager
 * sleeps until then (bounded by its interval), so a renewal window is met to the second.
 */
export function nextEventAt(records: Iterable<CertificateRecord>, now: number, renewBeforeMs: number): number | undefined {
  let next: number | undefined;
  const consider = (t: number | undefined) => {
    if (t !== undefined && t > now && (next === undefined || t < next)) next = t;
  };
  for (const r of records) {
    consider(r.nextAttemptAt);
    if (hasCertificate(r)) consider(renewalTime(r, renewBeforeMs));
  }
  return next;
}
