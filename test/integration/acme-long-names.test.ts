import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFile } from 'node:fs/promises';
import { Agent } from 'node:https';
import acme from 'acme-client';
import { startPebble, type RunningPebble } from '../helpers/pebble.ts';
import { createAcmeIssuer } from '../../astro-multi-tenant/server/tls/acme-issuer.ts';
import { createMemoryCertificateStore } from '../../astro-multi-tenant/server/tls/certificate-store.ts';

/**
 * A custom domain longer than 64 characters (legal: 253) must still get a certificate. X.509 bounds
 * a common name to 64 characters, and Let's Encrypt refuses a CSR whose CN is longer (badCSR), so
 * such a host is ordered with its name in the subjectAltName only. Pebble accepts either, so the
 * CSR it was sent is read from the finalize request (a JWS whose payload carries `csr`).
 */
let pebble: RunningPebble;
const csrs: string[] = [];
let interceptor: number;

beforeAll(async () => {
  pebble = await startPebble({ dnsServer: '127.0.0.1:1', httpPort: 1, env: { PEBBLE_VA_ALWAYS_VALID: '1' } });
  acme.axios.defaults.httpsAgent = new Agent({ ca: await readFile(pebble.caCertFile, 'utf8') });
  interceptor = acme.axios.interceptors.request.use((config) => {
    const body = typeof config.data === 'string' ? JSON.parse(config.data) : config.data;
    if (body?.payload) {
      const payload = JSON.parse(Buffer.from(body.payload, 'base64url').toString('utf8') || '{}');
      if (typeof payload.csr === 'string') csrs.push(payload.csr);
    }
    return config;
  });
}, 30_000);

afterAll(async () => {
  acme.axios.interceptors.request.eject(interceptor);
  acme.axios.defaults.httpsAgent = undefined;
  await pebble?.stop();
});

const csrDomains = (csr: string) => acme.crypto.readCsrDomains(`-----BEGIN CERTIFICATE REQUEST-----\n${Buffer.from(csr, 'base64url').toString('base64')}\n-----END CERTIFICATE REQUEST-----\n`);

describe('certificates for long host names', () => {
  it('orders a 126-character host with its name in the subjectAltName only (no common name over 64 characters), and a short one with both', async () => {
    const issuer = createAcmeIssuer({ directoryUrl: pebble.directoryUrl, store: createMemoryCertificateStore() });
    const long = `${'a'.repeat(60)}.${'b'.repeat(60)}.test`;
    await issuer.issue(long);
    await issuer.issue('shop.test');
    expect(csrs).toHaveLength(2);
    expect(csrDomains(csrs[0]!)).toEqual({ commonName: null, altNames: [long] });
    expect(csrDomains(csrs[1]!)).toEqual({ commonName: 'shop.test', altNames: ['shop.test'] });
  }, 30_000);
});
