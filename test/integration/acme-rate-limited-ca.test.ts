import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, type Server } from 'node:http';
import { createAcmeIssuer } from '../../astro-multi-tenant/server/tls/acme-issuer.ts';
import { AcmeAttemptError } from '../../astro-multi-tenant/server/tls/acme-problem.ts';
import { createCertificateManager } from '../../astro-multi-tenant/server/tls/certificate-manager.ts';
import { createMemoryCertificateStore } from '../../astro-multi-tenant/server/tls/certificate-store.ts';

/**
 * A CA that refuses orders with 429 rateLimited, as Let's Encrypt words it: for names under
 * evil.test "too many certificates (50) already issued for \"evil.test\"" (a limit on that tenant's
 * own registered domain), for anything else "too many new orders (300) recently" (the account's).
 * A real HTTP server on 127.0.0.1 speaking just enough ACME (directory, nonce, account, order).
 */
let server: Server;
let base: string;
const orders: string[] = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      res.setHeader('Replay-Nonce', `nonce${Math.random().toString(36).slice(2)}`);
      if (req.url === '/dir') {
        res.setHeader('Content-Type', 'application/json');
        res.end(JSON.stringify({ newNonce: `${base}/nonce`, newAccount: `${base}/account`, newOrder: `${base}/order`, revokeCert: `${base}/revoke`, keyChange: `${base}/key` }));
      } else if (req.url === '/nonce') {
        res.end();
      } else if (req.url === '/account') {
        res.statusCode = 201;
        res.setHeader('Location', `${base}/acct/1`);
        res.setHeader('Content-Type', 'application/json');
        res.end(JSON.stringify({ status: 'valid' }));
      } else if (req.url === '/order') {
        const payload = JSON.parse(Buffer.from(JSON.parse(body).payload, 'base64url').toString('utf8')) as { identifiers: Array<{ value: string }> };
        const host = payload.identifiers[0]!.value;
        orders.push(host);
        res.statusCode = 429;
        res.setHeader('Content-Type', 'application/problem+json');
        // decade.test: a broken CA asking for ten years.
        res.setHeader('Retry-After', host.endsWith('.evil.test') ? '604800' : host === 'decade.test' ? '315360000' : '3600');
        const detail = host.endsWith('.evil.test') ? 'too many certificates (50) already issued for "evil.test" in the last 168h0m0s' : 'too many new orders (300) recently';
        res.end(JSON.stringify({ type: 'urn:ietf:params:acme:error:rateLimited', detail, status: 429 }));
      } else {
        res.statusCode = 404;
        res.end();
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
});

afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
});

describe('a CA that rate-limits', () => {
  it('is waited for at most a week, whatever Retry-After says: a broken CA asking for ten years does not stop the account for ten years', async () => {
    const issuer = createAcmeIssuer({ directoryUrl: `${base}/dir`, store: createMemoryCertificateStore() });
    const failure = ((await issuer.issue('decade.test').catch((e: unknown) => e)) as AcmeAttemptError).failure;
    expect(failure).toMatchObject({ kind: 'rate_limited', scope: 'account', retryAfterMs: 7 * 86_400_000 });
  });

  it('says whose limit it is: the host\'s for a limit on its registered domain, the account\'s for new orders', async () => {
    const issuer = createAcmeIssuer({ directoryUrl: `${base}/dir`, store: createMemoryCertificateStore() });
    const own = (await issuer.issue('n1.evil.test').catch((e: unknown) => e)) as AcmeAttemptError;
    expect(own.failure).toMatchObject({ kind: 'rate_limited', scope: 'host', retryAfterMs: 604_800_000 });
    const account = (await issuer.issue('shop.test').catch((e: unknown) => e)) as AcmeAttemptError;
    expect(account.failure).toMatchObject({ kind: 'rate_limited', scope: 'account', retryAfterMs: 3_600_000 });
  });

  it('a tenant hitting its own domain\'s limit holds back its names only: the next site is ordered in the same tick, and only the account-wide limit pauses everything', async () => {
    orders.length = 0;
    const store = createMemoryCertificateStore();
    const manager = createCertificateManager({
      store,
      issuer: createAcmeIssuer({ directoryUrl: `${base}/dir`, store }),
      wanted: () => new Map([['n1.evil.test', 'evil'], ['shop.test', 'shop'], ['blog.test', 'blog']]),
      renewBeforeMs: 30 * 86_400_000,
    });
    await manager.tick();
    // n1.evil.test waits a week on its own; shop.test's account-wide refusal stops blog.test.
    expect(orders).toEqual(['n1.evil.test', 'shop.test']);
    expect(await store.getPause()).toBeGreaterThan(Date.now() + 3_500_000);
    expect(await store.getPause()).toBeLessThan(Date.now() + 3_700_000);
  });
});
