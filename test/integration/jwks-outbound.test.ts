import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFile, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { SignJWT, exportJWK, generateKeyPair } from 'jose';
import { copySites, removeDir, startServer, waitFor, type RunningServer } from '../helpers/server.ts';
import { startAll } from '../helpers/processes.ts';
import { openForm, send, type Client } from '../helpers/sessions.ts';

/**
 * A site's auth.token.jwksUrl is an address the site owner chose. The real server must not make a
 * request there unless it is https to a public address, or the operator allowlisted the host
 * (JWKS_ALLOW_HOSTS). A loopback "identity provider" counts every request it gets.
 */
describe('token sign-in with a jwksUrl chosen by the site', () => {
  let sitesDir: string;
  let idp: Server;
  let idpHits: string[] = [];
  let jwksUrl: string;
  let signing: Awaited<ReturnType<typeof generateKeyPair>>;
  let guarded: RunningServer;
  let allowing: RunningServer;

  async function pointAcmeAt(url: string) {
    const file = join(sitesDir, 'acme/site.json');
    const config = JSON.parse(await readFile(file, 'utf8'));
    config.auth = { token: { jwksUrl: url, issuer: 'https://id.acme.example', audience: 'acme-web', algorithms: ['ES256'] } };
    await writeFile(file, JSON.stringify(config));
  }

  async function tokenSignIn(server: RunningServer) {
    const client: Client = { port: server.port, host: 'acme.example' };
    const form = await openForm(client);
    const token = await new SignJWT({ name: 'Ada' }).setProtectedHeader({ alg: 'ES256', kid: 'idp-1' }).setIssuer('https://id.acme.example').setAudience('acme-web').setSubject('u-1').setIssuedAt().setExpirationTime('5m').sign(signing.privateKey);
    return send(client, 'POST', '/_platform/session/token', { 'content-type': 'application/json', 'x-csrf-token': form.token, cookie: `amt_csrf=${form.nonce}`, origin: 'http://acme.example' }, JSON.stringify({ token }));
  }

  beforeAll(async () => {
    signing = await generateKeyPair('ES256', { extractable: true });
    const jwk = { ...(await exportJWK(signing.publicKey)), kid: 'idp-1', alg: 'ES256' };
    idp = createServer((req, res) => {
      idpHits.push(req.url ?? '');
      res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify({ keys: [jwk] }));
    });
    await new Promise<void>((resolve) => idp.listen(0, '127.0.0.1', resolve));
    jwksUrl = `http://127.0.0.1:${(idp.address() as AddressInfo).port}/jwks.json`;
    sitesDir = await copySites();
    await pointAcmeAt(jwksUrl);
    const env = { SESSION_KEYS: 'k1:jwks-outbound-test-secret-0123456789abcdef', CONTENT_CHECK_MS: '100' };
    [guarded, allowing] = await startAll([startServer(sitesDir, env), startServer(sitesDir, { ...env, JWKS_ALLOW_HOSTS: new URL(jwksUrl).host })]);
  }, 60_000);

  afterAll(async () => {
    await guarded?.stop();
    await allowing?.stop();
    idp?.closeAllConnections();
    await new Promise((resolve) => idp?.close(resolve));
    await removeDir(sitesDir);
  });

  it('signs in through a loopback identity provider the operator allowlisted', async () => {
    await pointAcmeAt(jwksUrl);
    idpHits = [];
    const res = await tokenSignIn(allowing);
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body)).toMatchObject({ signedIn: true, site: 'acme' });
    expect(idpHits).toEqual(['/jwks.json']);
  });

  it('never requests a loopback jwksUrl that is not allowlisted, and refuses the token', async () => {
    await pointAcmeAt(jwksUrl);
    idpHits = [];
    for (let i = 0; i < 3; i++) expect((await tokenSignIn(guarded)).status).toBe(401);
    expect(idpHits).toEqual([]);
  });

  it.each([
    ['its own metrics page', (s: RunningServer) => `http://127.0.0.1:${s.port}/_platform/metrics`],
    ['its own status page over https', (s: RunningServer) => `https://127.0.0.1:${s.port}/_platform/status.json`],
    ['the cloud metadata address', () => 'https://169.254.169.254/latest/meta-data/iam/security-credentials/'],
    ['a private address', () => 'https://10.0.0.1/jwks.json'],
    ['IPv6 loopback', (s: RunningServer) => `https://[::1]:${s.port}/jwks.json`],
    ['a name that resolves to loopback', (s: RunningServer) => `https://localhost:${s.port}/jwks.json`],
  ])('refuses a jwksUrl pointing at %s without making the request', async (_what, url) => {
    const target = url(guarded);
    await pointAcmeAt(target);
    // Until the server has read the edited site.json, the refusal names the previous URL.
    let refusal: string | undefined;
    await waitFor(async () => {
      const before = guarded.logs.length;
      expect((await tokenSignIn(guarded)).status).toBe(401);
      refusal = guarded.logs.slice(before).find((l) => l.includes('token sign-in refused') && l.includes(`JWKS ${target}`));
      return refusal !== undefined;
    }, 10_000, 100);
    // Refused by the address check, before any connection was made.
    expect(refusal).toMatch(/not a public address|not allowed/);
    expect(idpHits).toEqual([]);
  });
});
