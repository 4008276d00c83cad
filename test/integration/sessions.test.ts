import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { SignJWT, exportJWK, generateKeyPair } from 'jose';
import { copySites, get, removeDir, startServer, waitFor, type Response, type RunningServer } from '../helpers/server.ts';
import { startRedis, type RunningRedis } from '../helpers/redis.ts';
import { startAll } from '../helpers/processes.ts';
import { request } from 'node:http';
import { cookiesFrom, openForm as openFormAs, signIn as signInAs } from '../helpers/sessions.ts';

const SESSION_KEYS = 'k2:second-signing-secret-for-tests-0123456789,k1:first-signing-secret-for-tests-0123456789';
const KEY = (kid: 'k1' | 'k2') => new TextEncoder().encode(SESSION_KEYS.split(',').find((e) => e.startsWith(`${kid}:`))!.slice(3));
const DEMO = { email: 'demo@docs.example', password: 'docs-demo-password' };

function post(port: number, host: string, path: string, body: string, headers: Record<string, string>): Promise<Response> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method: 'POST', headers: { host, 'content-length': Buffer.byteLength(body), ...headers }, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString() }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/**
 * What a browser does: load the sign-in form, getting the CSRF cookie (a nonce) and the form's
 * token (an HMAC bound to the nonce, the site and the session; never the cookie's value itself).
 */
async function openForm(port: number, host: string, cookie?: string) {
  const form = await openFormAs({ port, host }, cookie ? { cookie } : {});
  expect(form.token).not.toBe(form.nonce);
  expect(form.token).not.toContain(form.nonce);
  return form;
}

async function signIn(port: number, host: string, email: string, password: string, extra: Record<string, string> = {}): Promise<{ res: Response; session?: string }> {
  return signInAs({ port, host }, email, password, extra);
}

async function whoami(port: number, host: string, session: string) {
  const res = await get(port, host, '/_platform/session/whoami', { cookie: `amt_session=${session}` });
  return { status: res.status, body: res.status === 200 || res.status === 503 ? JSON.parse(res.body) : res.body };
}

function sidOf(token: string): string {
  return JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()).sid;
}

describe('sessions shared through a real Redis by two server processes', () => {
  let redis: RunningRedis;
  let sitesDir: string;
  let one: RunningServer;
  let two: RunningServer;
  let idpKey: Awaited<ReturnType<typeof generateKeyPair>>['privateKey'];

  beforeAll(async () => {
    redis = await startRedis();
    sitesDir = await copySites();
    // acme also gets a members page and sign-in by token from its own identity provider.
    const idp = await generateKeyPair('ES256', { extractable: true });
    idpKey = idp.privateKey;
    const acmeConfig = JSON.parse(await readFile(join(sitesDir, 'acme/site.json'), 'utf8'));
    acmeConfig.auth = {
      members: true,
      token: { jwks: { keys: [{ ...(await exportJWK(idp.publicKey)), kid: 'idp-1', alg: 'ES256' }] }, issuer: 'https://id.acme.example', audience: 'acme-web', algorithms: ['ES256'] },
    };
    await writeFile(join(sitesDir, 'acme/site.json'), JSON.stringify(acmeConfig));
    await writeFile(join(sitesDir, 'acme/members.json'), await readFile(join(sitesDir, 'docs/members.json')));
    await mkdir(join(sitesDir, 'acme/pages/staff'), { recursive: true });
    await writeFile(join(sitesDir, 'acme/pages/staff/index.md'), '---\ntitle: Staff only\naccess: members\n---\n\nAcme staff notes.\n');
    const env = { REDIS_URL: redis.url, SESSION_KEYS, SIGNIN_MAX_FAILURES: '3' };
    // `two` treats Redis as critical for readiness; `one` has the default (degraded, still ready).
    [one, two] = await startAll([startServer(sitesDir, env), startServer(sitesDir, { ...env, READY_REQUIRES_REDIS: '1' })]);
  }, 60_000);

  afterAll(async () => {
    await one?.stop();
    await two?.stop();
    await redis?.stop();
    await removeDir(sitesDir);
  });

  it('sends anonymous visitors of a members page to sign-in, while public pages need no session', async () => {
    const members = await get(one.port, 'docs.example', '/members');
    expect(members.status).toBe(303);
    expect(members.headers.location).toBe('/_platform/session/sign-in?next=%2Fmembers');
    expect(members.body).not.toContain('members area');
    expect((await get(one.port, 'docs.example', '/')).status).toBe(200);
  });

  it('signs in on one process and is served as signed in by the other', async () => {
    const { res, session } = await signIn(one.port, 'docs.example', DEMO.email, DEMO.password);
    expect(res.status).toBe(303);
    expect(res.headers.location).toBe('/members');
    const cookie = res.headers['set-cookie']!.find((c) => c.startsWith('amt_session='))!;
    expect(cookie).toMatch(/HttpOnly/);
    expect(cookie).toMatch(/SameSite=Lax/);
    expect(cookie).not.toMatch(/Domain=/i);
    const page = await get(two.port, 'docs.example', '/members', { cookie: `amt_session=${session}` });
    expect(page.status).toBe(200);
    expect(page.body).toContain('Welcome to the members area');
    expect(page.body).toContain('Signed in as <strong>Demo Member</strong>');
    expect(page.headers['cache-control']).toBe('private, no-store');
    expect(await whoami(two.port, 'docs.example', session!)).toEqual({ status: 200, body: { signedIn: true, site: 'docs', user: DEMO.email, name: 'Demo Member', method: 'password' } });
  });

  it('sets Secure and the __Host- prefix on the session cookie behind TLS (X-Forwarded-Proto from a trusted proxy)', async () => {
    const form = await openFormAs({ port: one.port, host: 'docs.example' }, { 'X-Forwarded-Proto': 'https' });
    const body = new URLSearchParams({ csrf: form.token, ...DEMO }).toString();
    const res = await post(one.port, 'docs.example', '/_platform/session/sign-in', body, { 'content-type': 'application/x-www-form-urlencoded', cookie: `amt_csrf=${form.nonce}`, origin: 'https://docs.example', 'x-forwarded-proto': 'https' });
    expect(res.status).toBe(303);
    const cookie = res.headers['set-cookie']!.find((c) => c.startsWith('__Host-amt_session='))!;
    expect(cookie).toMatch(/; Secure/);
    expect(cookie).toMatch(/Path=\//);
  });

  it("rejects site A's session on site B, even re-signed for B with the right key", async () => {
    const { session } = await signIn(one.port, 'docs.example', DEMO.email, DEMO.password);
    expect((await whoami(one.port, 'acme.example', session!)).body.signedIn).toBe(false);
    expect((await get(two.port, 'acme.example', '/staff', { cookie: `amt_session=${session}` })).status).toBe(303);
    // A token that names acme but carries docs' session id: the Redis key is per site, so no.
    const forged = await new SignJWT({ sid: sidOf(session!) }).setProtectedHeader({ alg: 'HS256', kid: 'k2' }).setIssuer('acme').setAudience('acme').setIssuedAt().setExpirationTime('1h').sign(KEY('k2'));
    expect((await whoami(one.port, 'acme.example', forged)).body.signedIn).toBe(false);
    // The genuine token still works on its own site.
    expect((await whoami(one.port, 'docs.example', session!)).body.signedIn).toBe(true);
  });

  describe('rejects cookies that are not genuine', () => {
    let sid: string;
    beforeAll(async () => {
      sid = sidOf((await signIn(one.port, 'docs.example', DEMO.email, DEMO.password)).session!);
    });
    const sign = (claims: { alg?: string; kid?: string; key?: Uint8Array; iss?: string; aud?: string; exp?: number }) =>
      new SignJWT({ sid })
        .setProtectedHeader({ alg: claims.alg ?? 'HS256', kid: claims.kid ?? 'k2' })
        .setIssuer(claims.iss ?? 'docs')
        .setAudience(claims.aud ?? 'docs')
        .setIssuedAt()
        .setExpirationTime(claims.exp ?? Math.floor(Date.now() / 1000) + 3600)
        .sign(claims.key ?? KEY('k2'));

    it('accepts a token signed with the current key, and one signed with the older key still listed', async () => {
      expect((await whoami(two.port, 'docs.example', await sign({}))).body.signedIn).toBe(true);
      expect((await whoami(two.port, 'docs.example', await sign({ kid: 'k1', key: KEY('k1') }))).body.signedIn).toBe(true);
    });
    it('rejects a tampered payload', async () => {
      const [h, , s] = (await sign({})).split('.');
      const payload = Buffer.from(JSON.stringify({ sid, iss: 'docs', aud: 'docs', iat: 1, exp: 4102444800, admin: true })).toString('base64url');
      expect((await whoami(two.port, 'docs.example', `${h}.${payload}.${s}`)).body.signedIn).toBe(false);
    });
    it('rejects an expired token', async () => {
      expect((await whoami(two.port, 'docs.example', await sign({ exp: Math.floor(Date.now() / 1000) - 120 }))).body.signedIn).toBe(false);
    });
    it('rejects alg: none', async () => {
      const enc = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
      const none = `${enc({ alg: 'none', kid: 'k2' })}.${enc({ sid, iss: 'docs', aud: 'docs', iat: 1, exp: 4102444800 })}.`;
      expect((await whoami(two.port, 'docs.example', none)).body.signedIn).toBe(false);
    });
    it('rejects a key id it does not know, and a right kid with the wrong key', async () => {
      expect((await whoami(two.port, 'docs.example', await sign({ kid: 'k9' }))).body.signedIn).toBe(false);
      expect((await whoami(two.port, 'docs.example', await sign({ kid: 'k2', key: KEY('k1') }))).body.signedIn).toBe(false);
    });
    it('rejects another algorithm even with the right secret (HS512)', async () => {
      // The same claims, kid and secret: accepted as HS256, so the refusal below is the algorithm's.
      expect((await whoami(two.port, 'docs.example', await sign({ alg: 'HS256', kid: 'k2', key: KEY('k2') }))).body.signedIn).toBe(true);
      expect((await whoami(two.port, 'docs.example', await sign({ alg: 'HS512', kid: 'k2', key: KEY('k2') }))).body.signedIn).toBe(false);
    });
    it('rejects a token issued for another site', async () => {
      expect((await whoami(two.port, 'docs.example', await sign({ iss: 'acme', aud: 'acme' }))).body.signedIn).toBe(false);
    });
  });

  it('signs out on one process and the other agrees at once; sign out everywhere ends every session of the user', async () => {
    const a = (await signIn(one.port, 'docs.example', DEMO.email, DEMO.password)).session!;
    const b = (await signIn(two.port, 'docs.example', DEMO.email, DEMO.password)).session!;
    const c = (await signIn(two.port, 'docs.example', DEMO.email, DEMO.password)).session!;
    // The form token is bound to the session: each signed-in browser gets its own.
    const formA = await openForm(one.port, 'docs.example', `amt_session=${a}`);
    const headers = { 'content-type': 'application/x-www-form-urlencoded', cookie: `amt_csrf=${formA.nonce}; amt_session=${a}`, origin: 'http://docs.example' };
    const out = await post(one.port, 'docs.example', '/_platform/session/sign-out', new URLSearchParams({ csrf: formA.token }).toString(), headers);
    expect(out.status).toBe(303);
    expect(out.headers['set-cookie']!.some((h) => h.startsWith('amt_session=;') && h.includes('Max-Age=0'))).toBe(true);
    expect((await whoami(two.port, 'docs.example', a)).body.signedIn).toBe(false);
    expect((await whoami(two.port, 'docs.example', b)).body.signedIn).toBe(true);

    // A's token does not work for B's session.
    const misbound = await post(two.port, 'docs.example', '/_platform/session/sign-out-everywhere', new URLSearchParams({ csrf: formA.token }).toString(), { ...headers, cookie: `amt_csrf=${formA.nonce}; amt_session=${b}` });
    expect(misbound.status).toBe(403);
    expect((await whoami(one.port, 'docs.example', b)).body.signedIn).toBe(true);
    const formB = await openForm(two.port, 'docs.example', `amt_session=${b}`);
    const everywhere = await post(two.port, 'docs.example', '/_platform/session/sign-out-everywhere', new URLSearchParams({ csrf: formB.token }).toString(), { ...headers, cookie: `amt_csrf=${formB.nonce}; amt_session=${b}` });
    expect(everywhere.status).toBe(303);
    expect((await whoami(one.port, 'docs.example', b)).body.signedIn).toBe(false);
    expect((await whoami(one.port, 'docs.example', c)).body.signedIn).toBe(false);
  });

  it('refuses sign-in posts without the form token or from another origin (CSRF)', async () => {
    const { token: csrf, nonce } = await openForm(one.port, 'docs.example');
    const form = (token: string) => new URLSearchParams({ csrf: token, ...DEMO }).toString();
    const base = { 'content-type': 'application/x-www-form-urlencoded', origin: 'http://docs.example' };
    expect((await post(one.port, 'docs.example', '/_platform/session/sign-in', form(''), { ...base, cookie: `amt_csrf=${nonce}` })).status).toBe(403);
    expect((await post(one.port, 'docs.example', '/_platform/session/sign-in', form(csrf), base)).status).toBe(403);
    const crossSite = await post(one.port, 'docs.example', '/_platform/session/sign-in', form(csrf), { ...base, origin: 'http://evil.example', cookie: `amt_csrf=${nonce}` });
    expect(crossSite.status).toBe(403);
    expect(cookiesFrom(crossSite).amt_session).toBeUndefined();
    // The old double-submit: the cookie's own value posted back as the token is not a token.
    expect((await post(one.port, 'docs.example', '/_platform/session/sign-in', form(nonce), { ...base, cookie: `amt_csrf=${nonce}` })).status).toBe(403);
    // A token minted for another site, with that site's own cookie, is not a token for this one.
    const acme = await openForm(one.port, 'acme.example');
    expect((await post(one.port, 'docs.example', '/_platform/session/sign-in', form(acme.token), { ...base, cookie: `amt_csrf=${acme.nonce}` })).status).toBe(403);
    // The right token with the right cookie still signs in.
    expect((await post(one.port, 'docs.example', '/_platform/session/sign-in', form(csrf), { ...base, cookie: `amt_csrf=${nonce}` })).status).toBe(303);
  });

  it('answers an unknown member and a wrong password alike, and rate-limits failures per IP and site', async () => {
    const ip = { 'x-forwarded-for': '198.51.100.23' };
    const unknown = await signIn(one.port, 'docs.example', 'nobody@docs.example', 'whatever-password', ip);
    const wrong = await signIn(two.port, 'docs.example', DEMO.email, 'not-the-password', ip);
    expect(unknown.res.status).toBe(401);
    expect(wrong.res.status).toBe(401);
    const message = (html: string) => /data-error>([^<]*)</.exec(html)?.[1];
    expect(message(unknown.res.body)).toBe('The e-mail address or password is not correct.');
    expect(message(wrong.res.body)).toBe(message(unknown.res.body));
    await signIn(one.port, 'docs.example', DEMO.email, 'third-wrong-password', ip);
    // Three failures (SIGNIN_MAX_FAILURES=3), counted in Redis across both processes: now even the
    // right password is refused from this address on this site.
    const blocked = await signIn(two.port, 'docs.example', DEMO.email, DEMO.password, ip);
    expect(blocked.res.status).toBe(429);
    expect(blocked.session).toBeUndefined();
    expect(Number(blocked.res.headers['retry-after'])).toBeGreaterThan(800);
    expect(Number(blocked.res.headers['retry-after'])).toBeLessThanOrEqual(900);
    // Another site, or another address, is not affected.
    expect((await signIn(one.port, 'acme.example', DEMO.email, DEMO.password, ip)).res.status).toBe(303);
    expect((await signIn(one.port, 'docs.example', DEMO.email, DEMO.password, { 'x-forwarded-for': '198.51.100.24' })).res.status).toBe(303);
  });

  it("signs in with a token from the site's identity provider, checked against the site's JWKS", async () => {
    const { token: csrf, nonce } = await openForm(one.port, 'acme.example');
    const mint = (iss: string, aud: string) =>
      new SignJWT({ name: 'Ada from IdP' }).setProtectedHeader({ alg: 'ES256', kid: 'idp-1' }).setIssuer(iss).setAudience(aud).setSubject('user-42').setIssuedAt().setExpirationTime('5m').sign(idpKey);
    const send = async (token: string) =>
      post(one.port, 'acme.example', '/_platform/session/token', JSON.stringify({ token }), { 'content-type': 'application/json', 'x-csrf-token': csrf, cookie: `amt_csrf=${nonce}`, origin: 'http://acme.example' });
    const ok = await send(await mint('https://id.acme.example', 'acme-web'));
    expect(ok.status).toBe(200);
    expect(JSON.parse(ok.body)).toEqual({ signedIn: true, site: 'acme', name: 'Ada from IdP' });
    const session = cookiesFrom(ok).amt_session!;
    expect((await whoami(two.port, 'acme.example', session)).body).toMatchObject({ signedIn: true, user: 'idp:user-42', method: 'token' });
    expect((await send(await mint('https://evil.example', 'acme-web'))).status).toBe(401);
    expect((await send(await mint('https://id.acme.example', 'other-app'))).status).toBe(401);
    // docs has no identity provider configured.
    const docsForm = await openForm(one.port, 'docs.example');
    const docs = await post(one.port, 'docs.example', '/_platform/session/token', JSON.stringify({ token: await mint('https://id.acme.example', 'acme-web') }), { 'content-type': 'application/json', 'x-csrf-token': docsForm.token, cookie: `amt_csrf=${docsForm.nonce}` });
    expect(docs.status).toBe(404);
  });

  it('keeps public pages at 200 while Redis is down, answers members pages and sign-in with a clear 503, reports readiness as degraded, and recovers without a restart', async () => {
    const session = (await signIn(one.port, 'docs.example', DEMO.email, DEMO.password)).session!;
    await redis.kill();
    try {
      for (const server of [one, two]) {
        expect((await get(server.port, 'docs.example', '/')).status).toBe(200);
        expect((await get(server.port, 'acme.example', '/about')).status).toBe(200);
        const members = await get(server.port, 'docs.example', '/members', { cookie: `amt_session=${session}` });
        expect(members.status).toBe(503);
        expect(members.body).toContain('temporarily unavailable');
        expect(members.body).not.toContain('members area');
        expect((await whoami(server.port, 'docs.example', session)).status).toBe(503);
        const attempt = await signIn(server.port, 'docs.example', DEMO.email, DEMO.password);
        expect(attempt.res.status).toBe(503);
        expect(attempt.res.body).toContain('Sign-in is temporarily unavailable');
        const ready = await get(server.port, 'localhost', '/_platform/readyz');
        const readiness = JSON.parse(ready.body);
        expect(readiness.checks.find((c: { name: string }) => c.name === 'redis')).toMatchObject({ ok: false });
        // By default a shared Redis outage must not pull every replica out of the load balancer.
        if (server === one) expect([ready.status, readiness.status]).toEqual([200, 'degraded']);
        else expect([ready.status, readiness.status]).toEqual([503, 'not ready']);
      }
    } finally {
      await redis.start();
    }
    // ioredis reconnects in the background; the session survived in Redis' append-only file.
    for (const server of [one, two]) {
      await waitFor(async () => (await get(server.port, 'docs.example', '/members', { cookie: `amt_session=${session}` })).status === 200, 15_000, 100);
      expect((await get(server.port, 'localhost', '/_platform/readyz')).status).toBe(200);
    }
  }, 60_000);
});

describe('embedded mode (no REDIS_URL)', () => {
  it('signs in with the in-memory store in a single process and says so in the log', async () => {
    const sitesDir = await copySites();
    const server = await startServer(sitesDir, { REDIS_URL: '', SESSION_KEYS: '' });
    try {
      const { res, session } = await signIn(server.port, 'docs.example', DEMO.email, DEMO.password);
      expect(res.status).toBe(303);
      expect((await get(server.port, 'docs.example', '/members', { cookie: `amt_session=${session}` })).status).toBe(200);
      expect(server.logs.some((l) => l.includes('sessions are kept in this process only'))).toBe(true);
    } finally {
      await server.stop();
      await removeDir(sitesDir);
    }
  });
});
