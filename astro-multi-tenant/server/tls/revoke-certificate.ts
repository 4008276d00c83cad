import type { AcmeIssuer } from './acme-issuer.ts';
import type { CertificateStore } from './certificate-store.ts';

/** What `revokeCertificate` did: the serial revoked at the CA, now marked revoked in the store. */
export interface RevokeResult {
  host: string;
  serial: string;
}

/**
 * Revokes `host`'s current certificate at the CA (a leaked key, a CA's revocation notice) and marks
 * it revoked in the shared store: every worker sees the version move within its poll, and the one
 * that takes the host's lock orders a new certificate at once (renewal-schedule.ts: a revoked
 * certificate is due). Revocations the CA makes on its own arrive through its renewal information
 * (tls/renewal-info.ts) where it serves ARI; this is the operator's own path.
 *
 * @throws Error naming the host when it has no certificate in the store; AcmeAttemptError when the CA refuses.
 */
export async function revokeCertificate(options: { store: CertificateStore; issuer: AcmeIssuer; host: string }): Promise<RevokeResult> {
  const { store, issuer, host } = options;
  const [record, bundle] = await Promise.all([store.get(host), store.getBundle(host)]);
  if (!record?.serial || !bundle || bundle.serial !== record.serial) throw new Error(`${host} has no certificate in ${store.location}`);
  await issuer.revoke(bundle.chainPem);
  // Re-read: a worker may have renewed meanwhile; only the revoked serial is marked.
  const current = await store.get(host);
  if (current?.serial === record.serial) await store.put(host, { ...current, revoked: true });
  return { host, serial: record.serial };
}
