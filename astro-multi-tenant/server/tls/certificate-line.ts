import type { CertificateRecord } from './certificate-store.ts';
import { certificateState, renewAt } from './renewal-schedule.ts';

const day = (ms: number) => new Date(ms).toISOString().slice(0, 10);

/**
 * One line on a host's certificate for `npm run sites -- domains <id>`: its state, expiry and
 * renewal date, or why the last order failed and when the next one runs. Pure; `now` in ms.
 */
export function certificateLine(record: CertificateRecord | undefined, now: number, renewBeforeMs: number): string {
  const state = certificateState(record, now, renewBeforeMs);
  const parts = [`certificate: ${state}`];
  if (record?.serial && record.notBefore !== undefined && record.notAfter !== undefined) {
    parts.push(`expires ${day(record.notAfter)} (${Math.floor((record.notAfter - now) / 86_400_000)} days)`);
    if (state === 'valid') parts.push(`renewal from ${day(renewAt(record.notBefore, record.notAfter, renewBeforeMs))}`);
  } else if (state === 'pending') {
    parts.push('ordered once the domain is served (verified) and a worker runs');
  }
  if (record && record.failures > 0) {
    parts.push(`${record.failures} failed attempt${record.failures === 1 ? '' : 's'}${record.lastError ? ` — ${record.lastError}` : ''}`);
    if (record.nextAttemptAt !== undefined) parts.push(`next attempt ${new Date(record.nextAttemptAt).toISOString()}`);
  }
  return parts.join(', ');
}
