/** The PEM blocks of certificates in a chain, in order (RFC 7468 §2 textual encoding). Pure. */
const CERTIFICATE_BLOCK = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g;

/**
 * The first certificate (the leaf) of a PEM chain as its own PEM block; '' when there is none
 * (X509Certificate then throws naming the bad input). Pure.
 */
export function leafPem(chainPem: string): string {
  CERTIFICATE_BLOCK.lastIndex = 0;
  return CERTIFICATE_BLOCK.exec(chainPem)?.[0] ?? '';
}
