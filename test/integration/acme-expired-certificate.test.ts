import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFile } from 'node:fs/promises';
import { Agent } from 'node:https';
import acme from 'acme-client';
import { startPebble, type RunningPebble } from '../helpers/pebble.ts';
import { createAcmeIssuer } from '../../astro-multi-tenant/server/tls/acme-issuer.ts';
import { AcmeAttemptError } from '../../astro-multi-tenant/server/tls/acme-problem.ts';
import { createCertificateManager } from '../../astro-multi-tenant/server/tls/certificate-manager.ts';
import { createMemoryCertificateStore } from '../../astro-multi-tenant/server/tls/certificate-store.ts';

/**
 * A CA whose certificate is already expired when it arrives (a CA with a wrong clock, a broken
 * intermediate): stored as issued, nginx would serve it, and the manager would see an expired
 * certificate and order again at once, every tick, with no backoff, until the CA's rate limits
 * stop it (and every other order of the account). Real pebble with its validation switched off
 * (PEBBLE_VA_ALWAYS_VALID: no HTTP-01 server needed) issues one-minute certificates; the issuer's
 * clock runs an hour ahead, so each arrives expired.
 */
let pebble: RunningPebble;
const HOUR = 3600_000;

beforeAll(async () => {
  pebble = await startPebble({ dnsServer: '127.0.0.1:1', httpPort: 1, certificateValiditySeconds: 60, env: { PEBBLE_VA_ALWAYS_VALID: '1' } });
  // This test process talks to pebble itself: trust pebble's listener CA on acme-client's requests.
  acme.axios.defaults.httpsAgent = new Agent({ ca: await readFile(pebble.caCertFile, 'utf8') });
}, 30_000);

afterAll(async () => {
  acme.axios.defaults.httpsAgent = undefined;
  await pebble?.stop();
});

describe('a CA that issues an already expired certificate', () => {
  it('fails the attempt as a CA failure naming the expiry', async () => {
    const store = createMemoryCertificateStore();
    const issuer = createAcmeIssuer({ directoryUrl: pebble.directoryUrl, store, now: () => Date.now() + HOUR });
    const error = await issuer.issue('shop.test').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AcmeAttemptError);
    expect((error as AcmeAttemptError).failure).toMatchObject({ kind: 'ca', message: expect.stringMatching(/^the CA issued a certificate for shop\.test that expired at \d{4}-\d\d-\d\dT/) });
  }, 30_000);

  it('backs the host off instead of ordering again on every tick', async () => {
    const store = createMemoryCertificateStore(() => Date.now() + HOUR);
    const issuer = createAcmeIssuer({ directoryUrl: pebble.directoryUrl, store, now: () => Date.now() + HOUR });
    const issued: string[] = [];
    const failed: string[] = [];
    const manager = createCertificateManager({
      store,
      issuer,
      now: () => Date.now() + HOUR,
      wanted: () => new Map([['shop.test', 'shop']]),
      renewBeforeMs: 30 * 24 * HOUR,
      onIssued: (host, _site, cert) => issued.push(`${host} ${cert.serial}`),
      onFailure: (host, _site, failure) => failed.push(`${host} ${failure.kind}`),
    });
    await manager.tick();
    await manager.tick();
    expect(issued).toEqual([]);
    expect(failed).toEqual(['shop.test ca']);
    expect(manager.describe(['shop.test'])[0]).toMatchObject({ state: 'failed', failures: 1, serial: undefined });
  }, 30_000);
});
