import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { createServer } from 'node:http';
import { ariCertId, createRenewalInfoClient, parseRenewalWindow, renewalMoment, type RenewalWindow } from '../../astro-multi-tenant/server/tls/renewal-info.ts';
import { createCertificateManager } from '../../astro-multi-tenant/server/tls/certificate-manager.ts';
import { createMemoryCertificateStore } from '../../astro-multi-tenant/server/tls/certificate-store.ts';
import type { AcmeIssuer } from '../../astro-multi-tenant/server/tls/acme-issuer.ts';

const run = promisify(execFile);
const DAY = 86_400_000;
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'amt-ari-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('the ARI certificate identifier (RFC 9773 §4.1)', () => {
  it('is the issuer key identifier and the serial\'s DER bytes, base64url: the RFC\'s own example, on a certificate openssl makes', async () => {
    // The RFC's example: keyIdentifier 69:88:5B:…:D4 and serial 0x87654321 (DER 00 87 65 43 21).
    await run('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', join(dir, 'ca.key'), '-out', join(dir, 'ca.pem'), '-days', '2', '-subj', '/CN=ari test CA', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'subjectKeyIdentifier=69:88:5B:6B:87:46:40:41:E1:B3:7B:84:7B:A0:AE:2C:DE:01:C8:D4']);
    await run('openssl', ['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', join(dir, 'leaf.key'), '-out', join(dir, 'leaf.csr'), '-subj', '/CN=shop.test']);
    await writeFile(join(dir, 'ext'), 'authorityKeyIdentifier=keyid\nsubjectAltName=DNS:shop.test\n');
    await run('openssl', ['x509', '-req', '-in', join(dir, 'leaf.csr'), '-CA', join(dir, 'ca.pem'), '-CAkey', join(dir, 'ca.key'), '-set_serial', '0x87654321', '-days', '1', '-extfile', join(dir, 'ext'), '-out', join(dir, 'leaf.pem')]);
    const chain = `${await readFile(join(dir, 'leaf.pem'), 'utf8')}${await readFile(join(dir, 'ca.pem'), 'utf8')}`;
    expect(ariCertId(chain)).toBe('aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE');
    await writeFile(join(dir, 'chain.pem'), chain);
  });

  it('is what the client asks a CA that serves ARI for (a local HTTP CA: its directory, then renewalInfo/<id>), with Retry-After', async () => {
    const seen: string[] = [];
    let hasAri = true;
    const ca = createServer((req, res) => {
      seen.push(req.url ?? '');
      res.setHeader('Content-Type', 'application/json');
      if (req.url === '/dir') return res.end(JSON.stringify({ newNonce: 'x', ...(hasAri ? { renewalInfo: `http://127.0.0.1:${(ca.address() as { port: number }).port}/ari/` } : {}) }));
      res.setHeader('Retry-After', '21600');
      res.end(JSON.stringify({ suggestedWindow: { start: '2030-01-01T00:00:00Z', end: '2030-01-02T00:00:00Z' } }));
    });
    await new Promise<void>((r) => ca.listen(0, '127.0.0.1', r));
    try {
      const directoryUrl = `http://127.0.0.1:${(ca.address() as { port: number }).port}/dir`;
      const chain = await readFile(join(dir, 'chain.pem'), 'utf8');
      const ask = createRenewalInfoClient({ directoryUrl, now: () => 0 });
      expect(await ask(chain)).toEqual({ start: Date.parse('2030-01-01T00:00:00Z'), end: Date.parse('2030-01-02T00:00:00Z'), retryAfterMs: 21_600_000 });
      await ask(chain);
      // The directory is read once; each question is one GET of renewalInfo/<id>.
      expect(seen).toEqual(['/dir', '/ari/aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE', '/ari/aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE']);
      hasAri = false;
      expect(await createRenewalInfoClient({ directoryUrl })(chain)).toBeUndefined();
    } finally {
      await new Promise((r) => ca.close(r));
    }
  });

  it('refuses a certificate without an authority key identifier', async () => {
    expect(() => ariCertId(`${'-----BEGIN CERTIFICATE-----\n'}${Buffer.from('x').toString('base64')}\n-----END CERTIFICATE-----\n`)).toThrow();
  });
});

describe('the suggested window', () => {
  it('reads RFC 3339 times and refuses anything else', () => {
    expect(parseRenewalWindow({ suggestedWindow: { start: '2030-01-01T00:00:00Z', end: '2030-01-03T00:00:00Z' } })).toEqual({ start: Date.parse('2030-01-01T00:00:00Z'), end: Date.parse('2030-01-03T00:00:00Z') });
    expect(parseRenewalWindow({ suggestedWindow: { start: 'soon', end: '2030-01-03T00:00:00Z' } })).toBeUndefined();
    expect(parseRenewalWindow({ suggestedWindow: { start: '2030-01-03T00:00:00Z', end: '2030-01-01T00:00:00Z' } })).toBeUndefined();
    expect(parseRenewalWindow(null)).toBeUndefined();
  });

  it('renews at a random moment inside it, at once when it has passed (a revoked certificate)', () => {
    expect(renewalMoment({ start: 1000, end: 2000 }, 0, 0.5)).toBe(1500);
    expect(renewalMoment({ start: 1000, end: 2000 }, 1800, 0.5)).toBe(1900);
    expect(renewalMoment({ start: 0, end: 500 }, 1000, 0.5)).toBe(1000);
  });
});

describe('the certificate manager with ARI', () => {
  function setup(answer: () => RenewalWindow | undefined) {
    const clock = { now: 1_000 * DAY };
    const store = createMemoryCertificateStore(() => clock.now);
    const issued: string[] = [];
    const asked: string[] = [];
    let serial = 0;
    const issuer: AcmeIssuer = {
      async issue(host) {
        issued.push(host);
        serial++;
        return { serial: `S${serial}`, notBefore: clock.now, notAfter: clock.now + 90 * DAY, chainPem: `CHAIN S${serial}`, keyPem: 'KEY' };
      },
      async revoke() {},
    };
    const manager = createCertificateManager({
      store,
      issuer,
      wanted: () => new Map([['shop.test', 'shop']]),
      renewBeforeMs: 30 * DAY,
      now: () => clock.now,
      random: () => 0.5,
      renewalInfo: async (chain) => {
        asked.push(chain);
        return answer();
      },
    });
    return { clock, store, manager, issued, asked };
  }

  it('renews at once when the CA\'s window has already passed (it revoked the certificate), long before the dates say', async () => {
    const revokedAt = { now: 0 };
    const { clock, manager, issued, asked } = setup(() => ({ start: revokedAt.now - DAY, end: revokedAt.now - 1 }));
    await manager.tick();
    expect(issued).toEqual(['shop.test']);
    clock.now += DAY;
    revokedAt.now = clock.now;
    await manager.tick();
    expect(asked).toEqual(['CHAIN S1']);
    expect(manager.describe(['shop.test'])[0]?.state).toBe('due');
    await manager.tick();
    expect(issued).toEqual(['shop.test', 'shop.test']);
    expect(manager.describe(['shop.test'])[0]).toMatchObject({ state: 'valid', serial: 'S2' });
  });

  it('keeps to the dates when the window is the usual one, and asks again only after six hours (or the CA\'s Retry-After)', async () => {
    const { clock, manager, issued, asked, store } = setup(() => ({ start: 1_000 * DAY + 60 * DAY, end: 1_000 * DAY + 62 * DAY, retryAfterMs: 6 * 3600_000 }));
    await manager.tick();
    clock.now += 1000;
    await manager.tick();
    await manager.tick();
    expect(asked).toHaveLength(1);
    expect((await store.get('shop.test'))?.renewAfter).toBe(1_000 * DAY + 61 * DAY);
    clock.now += 6 * 3600_000;
    await manager.tick();
    expect(asked).toHaveLength(2);
    // The moment chosen in the first answer is kept while the window stays the same.
    expect((await store.get('shop.test'))?.renewAfter).toBe(1_000 * DAY + 61 * DAY);
    expect(issued).toEqual(['shop.test']);
  });

  it('asks a CA without ARI once a day and renews by the dates', async () => {
    const { clock, manager, asked, store } = setup(() => undefined);
    await manager.tick();
    clock.now += 1000;
    await manager.tick();
    clock.now += 12 * 3600_000;
    await manager.tick();
    expect(asked).toHaveLength(1);
    expect((await store.get('shop.test'))?.renewAfter).toBeUndefined();
    clock.now += 12 * 3600_000;
    await manager.tick();
    expect(asked).toHaveLength(2);
  });
});
