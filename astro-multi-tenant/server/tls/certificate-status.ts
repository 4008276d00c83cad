import type { StatusModel } from '../ops/status.ts';
import type { CertificateManager, CertificateStatus } from './certificate-manager.ts';

/** A certificate this close to expiry is flagged on the status page (renewal normally runs 30 days ahead, so a flag means renewal is failing). */
export const EXPIRY_WARNING_DAYS = 14;

/** One row of the status page's certificate table. */
export interface CertificateStatusRow extends CertificateStatus {
  /** Expires within EXPIRY_WARNING_DAYS (or has expired). */
  expiringSoon: boolean;
}

/** The rows for these statuses at `now` (ms): flagged ones first, then by host. Pure. */
export function certificateRows(statuses: readonly CertificateStatus[], now: number): CertificateStatusRow[] {
  return statuses
    .map((s) => ({ ...s, expiringSoon: s.notAfter !== undefined && s.notAfter - now < EXPIRY_WARNING_DAYS * 86_400_000 }))
    .sort((a, b) => Number(b.expiringSoon) - Number(a.expiringSoon) || (a.host < b.host ? -1 : a.host > b.host ? 1 : 0));
}

/**
 * Adds each certificate of the custom domains and aliases served (state, expiry, last error, a
 * flag within 14 days of expiry) to the status model; returned as is when ACME is off.
 */
export function withCertificateStatus(status: () => Promise<StatusModel>, certificates: CertificateManager | undefined): () => Promise<StatusModel> {
  if (!certificates) return status;
  return async () => {
    const model = await status();
    return { ...model, certificates: certificateRows(certificates.statuses(), Date.parse(model.generatedAt) || Date.now()) };
  };
}
