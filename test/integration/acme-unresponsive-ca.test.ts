import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, type Server } from 'node:http';
import type { Socket } from 'node:net';
import { createAcmeIssuer } from '../../astro-multi-tenant/server/tls/acme-issuer.ts';
import { AcmeAttemptError } from '../../astro-multi-tenant/server/tls/acme-problem.ts';
import { createCertificateManager } from '../../astro-multi-tenant/server/tls/certificate-manager.ts';
import { createMemoryCertificateStore } from '../../astro-multi-tenant/server/tls/certificate-store.ts';

/**
 * A CA that stops answering: a real HTTP server on 127.0.0.1 that sends its ACME directory (so the
 * client gets as far as asking for a nonce) and then reads every other request and never answers.
 * Without a bound on each request and on the whole attempt, an order waits forever, and with it the
 * manager's tick, so no other host of that process is ever issued or renewed again.
 */
let server: Server;
let base: string;
const sockets = new Set<Socket>();
const seen: string[] = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    seen.push(`${req.method} ${req.url}`);
    if (req.url === '/dir') {
      res.setHeader('Content-Type', 'application/json');
      res.end(JSON.stringify({ newNonce: `${base}/nonce`, newAccount: `${base}/account`, newOrder: `${base}/order`, revokeCert: `${base}/revoke`, keyChange: `${base}/key` }));
    }
    // Anything else: read, never answered.
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
});

afterAll(async () => {
  for (const socket of sockets) socket.destroy();
  await new Promise((resolve) => server.close(resolve));
});

describe('a CA that stops answering', () => {
  it('fails the attempt as a network failure once one request goes unanswered for the request timeout', async () => {
    const store = createMemoryCertificateStore();
    const issuer = createAcmeIssuer({ directoryUrl: `${base}/dir`, store, requestTimeoutMs: 300 });
    const error = await issuer.issue('shop.test').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AcmeAttemptError);
    expect((error as AcmeAttemptError).failure).toMatchObject({ kind: 'network', message: expect.stringMatching(/^cannot reach the CA: no answer within 0\.3 s/) });
    // It got past the directory: the request left unanswered was the nonce's.
    expect(seen).toContain('GET /dir');
    expect(seen.some((line) => line.endsWith('/nonce'))).toBe(true);
    // The account lock taken to register is released, so the next attempt can register.
    expect(await store.lock('account', 'someone-else', 1000)).toBe(true);
  }, 15_000);

  it('abandons an order still unfinished at the attempt deadline, even while each request is within its own timeout', async () => {
    const store = createMemoryCertificateStore();
    const issuer = createAcmeIssuer({ directoryUrl: `${base}/dir`, store, requestTimeoutMs: 60_000, attemptTimeoutMs: 400 });
    const error = await issuer.issue('shop.test').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AcmeAttemptError);
    expect((error as AcmeAttemptError).failure).toMatchObject({ kind: 'network', message: 'the CA did not complete the order for shop.test within 0.4 s' });
  }, 15_000);

  it('ends the manager\'s tick after one unanswered order: that host backs off, its lock is released, and the other hosts wait for the next tick instead of each waiting out the timeout', async () => {
    const store = createMemoryCertificateStore();
    const issuer = createAcmeIssuer({ directoryUrl: `${base}/dir`, store, requestTimeoutMs: 200 });
    const failures: string[] = [];
    const manager = createCertificateManager({
      store,
      issuer,
      wanted: () => new Map([['shop.test', 'shop'], ['blog.test', 'blog']]),
      renewBeforeMs: 30 * 86_400_000,
      onFailure: (host, _site, failure) => failures.push(`${host} ${failure.kind}`),
    });
    await manager.tick();
    expect(failures).toEqual(['shop.test network']);
    expect(manager.describe(['shop.test'])[0]).toMatchObject({ state: 'failed', failures: 1, lastError: expect.stringMatching(/^cannot reach the CA: no answer within 0\.2 s/), nextAttemptAt: expect.any(Number) });
    expect(manager.describe(['blog.test'])[0]).toMatchObject({ state: 'pending', failures: 0 });
    expect(await store.lock('cert:shop.test', 'someone-else', 1000)).toBe(true);
    // The next tick tries the next host (shop.test backs off), and ends too.
    await manager.tick();
    expect(failures).toEqual(['shop.test network', 'blog.test network']);
  }, 15_000);
});
