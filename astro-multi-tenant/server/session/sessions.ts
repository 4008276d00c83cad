import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Site } from '../sites/loader.ts';
import type { SignInView } from '../render/view.ts';
import type { Logger } from '../log.ts';
import type { RouteKind } from '../ops/metrics.ts';
import { clientAddress, type TrustedProxies } from '../tenant/trusted-proxies.ts';
import { CSRF_COOKIE, readCookie, serializeCookie, sessionCookieName } from './cookies.ts';
import { BodyError, readFormBody, safeNext } from './request-body.ts';
import { signSessionToken, verifySessionToken, type SessionKeys } from './session-token.ts';
import { SessionStoreUnavailable, attemptKey, type SessionRecord, type SessionStore } from './store.ts';
import { createCsrfTokens, isCsrfNonce, isSameOrigin, newCsrfNonce } from './csrf.ts';
import { signInSubject } from './sign-in-subject.ts';
import { verifyAgainstDummy, verifyPassword } from './passwords.ts';
import type { MembersLoader } from './members.ts';
import type { IdpVerifier } from './idp-token.ts';

export const SESSION_PREFIX = '/_platform/session/';

/** What the sign-in view needs; rendered by the Astro side with the site's own theme. */
export type SignInForm = SignInView;

export type Viewer = { kind: 'signed-in'; session: SessionRecord } | { kind: 'anonymous' } | { kind: 'unavailable' };

export interface RequestOrigin {
  proto: 'http' | 'https';
  /**
   * host[:port] as the visitor typed it (behind a trusted proxy: X-Forwarded-Host, which must carry
   * the port the browser used), for the same-origin check.
   */
  authority: string;
}

export interface SessionsDeps {
  store: SessionStore;
  keys: SessionKeys;
  /** Absolute lifetime of a session cookie, however active it is. */
  maxAgeSeconds: number;
  loadMembers: MembersLoader;
  verifyIdpToken: IdpVerifier;
  proxies: TrustedProxies;
  /** Password sign-in attempts per client and site in a fixed window (SIGNIN_MAX_FAILURES, SIGNIN_WINDOW_S). */
  rateLimit: { maxFailures: number; windowSeconds: number };
  logger: Logger;
}

export type RenderSignIn = (status: number, form: SignInForm) => Promise<void>;

/** The session endpoints and the methods each takes. */
const ENDPOINT_METHODS: Readonly<Record<string, readonly string[]>> = {
  whoami: ['GET', 'HEAD'],
  'sign-in': ['GET', 'HEAD', 'POST'],
  token: ['POST'],
  'sign-out': ['POST'],
  'sign-out-everywhere': ['POST'],
};

const GENERIC_FAILURE = 'The e-mail address or password is not correct.';
const UNAVAILABLE = 'Sign-in is temporarily unavailable. Please try again in a minute.';

const idleSeconds = (site: Site) => (site.config.auth?.sessionIdleMinutes ?? 1440) * 60;
const newId = () => randomBytes(32).toString('base64url');

/**
 * Per-site sign-in: reads the session cookie (a jose-verified JWT naming this site) and the Redis
 * record behind it, and serves /_platform/session/* (sign-in form, sign in with password or token,
 * sign out, sign out everywhere, whoami). Public pages never call into this, so a Redis outage
 * cannot slow them down.
 */
export function createSessions(deps: SessionsDeps) {
  const { store, keys, logger } = deps;
  const csrf = createCsrfTokens(keys);
  // Counted before the password is checked, atomically, in the store every worker shares.
  const attempts = store.attemptLimiter({ maxAttempts: deps.rateLimit.maxFailures, windowSeconds: deps.rateLimit.windowSeconds });

  /** The session id of a genuine session cookie for this site (no store round trip), for CSRF binding. */
  async function cookieSessionId(req: IncomingMessage, site: Site, origin: RequestOrigin): Promise<string | undefined> {
    const token = readCookie(req.headers.cookie, sessionCookieName(origin.proto === 'https'));
    if (!token) return undefined;
    const verified = await verifySessionToken(keys, token, site.id);
    return verified.ok ? verified.sid : undefined;
  }

  async function viewer(req: IncomingMessage, site: Site, origin: RequestOrigin): Promise<Viewer> {
    const token = readCookie(req.headers.cookie, sessionCookieName(origin.proto === 'https'));
    if (!token) return { kind: 'anonymous' };
    const verified = await verifySessionToken(keys, token, site.id);
    if (!verified.ok) {
      logger.debug({ site: site.id, reason: verified.reason }, 'session cookie rejected');
      return { kind: 'anonymous' };
    }
    try {
      const session = await store.get(site.id, verified.sid, idleSeconds(site));
      return session ? { kind: 'signed-in', session } : { kind: 'anonymous' };
    } catch (error) {
      if (error instanceof SessionStoreUnavailable) {
        logger.warn({ site: site.id, err: error.message }, 'session store unavailable');
        return { kind: 'unavailable' };
      }
      throw error;
    }
  }

  /**
   * The CSRF token for forms that post to /_platform/session/ on `siteId`, bound to the session
   * `sessionId` (undefined when signed out; see csrf.ts). Sets the nonce cookie when there is none.
   */
  function csrfFor(req: IncomingMessage, res: ServerResponse, siteId: string, proto: RequestOrigin['proto'], sessionId: string | undefined): string {
    let nonce = readCookie(req.headers.cookie, CSRF_COOKIE);
    if (!isCsrfNonce(nonce)) {
      nonce = newCsrfNonce();
      res.appendHeader('Set-Cookie', serializeCookie(CSRF_COOKIE, nonce, { path: SESSION_PREFIX, sameSite: 'Strict', secure: proto === 'https' }));
    }
    return csrf.mint({ site: siteId, sessionId }, nonce);
  }

  /**
   * A state-changing request must come from this site's own page: an Origin, when sent, equal to
   * this request's origin including its port; no `Sec-Fetch-Site: cross-site`; and a form token
   * minted for this site, this session and the nonce in this browser's cookie.
   */
  function csrfProblem(req: IncomingMessage, body: Record<string, string>, site: Site, origin: RequestOrigin, sessionId: string | undefined): string | undefined {
    const sentOrigin = req.headers.origin;
    if (sentOrigin !== undefined && !isSameOrigin(sentOrigin, origin)) return `Origin ${JSON.stringify(sentOrigin.slice(0, 200))} is not ${origin.proto}://${origin.authority}`;
    if (req.headers['sec-fetch-site'] === 'cross-site') return 'Sec-Fetch-Site says cross-site';
    const nonce = readCookie(req.headers.cookie, CSRF_COOKIE);
    const sent = body.csrf ?? (typeof req.headers['x-csrf-token'] === 'string' ? req.headers['x-csrf-token'] : undefined);
    if (!csrf.verify(sent, { site: site.id, sessionId }, nonce)) return 'the form token is missing or does not match';
    return undefined;
  }

  async function startSession(res: ServerResponse, site: Site, origin: RequestOrigin, user: string, name: string, method: SessionRecord['method']) {
    const record: SessionRecord = { site: site.id, id: newId(), user, name, method, createdAt: Date.now() };
    await store.create(record, idleSeconds(site));
    const token = await signSessionToken(keys, { site: site.id, sid: record.id }, deps.maxAgeSeconds);
    res.appendHeader('Set-Cookie', serializeCookie(sessionCookieName(origin.proto === 'https'), token, { maxAgeSeconds: deps.maxAgeSeconds, sameSite: 'Lax', secure: origin.proto === 'https' }));
  }

  function clearSessionCookie(res: ServerResponse, origin: RequestOrigin) {
    res.appendHeader('Set-Cookie', serializeCookie(sessionCookieName(origin.proto === 'https'), '', { maxAgeSeconds: 0, sameSite: 'Lax', secure: origin.proto === 'https' }));
  }

  function seeOther(res: ServerResponse, location: string) {
    res.statusCode = 303;
    res.setHeader('Location', location);
    res.setHeader('Cache-Control', 'no-store');
    res.end();
  }

  function json(res: ServerResponse, status: number, value: unknown) {
    const body = `${JSON.stringify(value)}\n`;
    res.statusCode = status;
    res.setHeader('Content-Type', 'application/json');
    res.setHeader('Cache-Control', 'no-store');
    res.setHeader('Content-Length', Buffer.byteLength(body));
    res.end(res.req?.method === 'HEAD' ? undefined : body);
  }

  async function signInWithPassword(req: IncomingMessage, res: ServerResponse, site: Site, origin: RequestOrigin, body: Record<string, string>, form: SignInForm, render: RenderSignIn): Promise<void> {
    const email = (body.email ?? '').trim().toLowerCase().slice(0, 320);
    const password = (body.password ?? '').slice(0, 1024);
    const limitKey = attemptKey(site.id, signInSubject(clientAddress(req.headers, req.socket.remoteAddress, deps.proxies)));
    // Taken before the slow password check, so a burst of parallel guesses cannot all be checked.
    const attempt = await attempts.take(limitKey);
    if (!attempt.allowed) {
      res.setHeader('Retry-After', String(attempt.retryAfterSeconds));
      logger.info({ site: site.id }, 'sign-in refused: too many attempts from this client');
      return render(429, { ...form, email, error: 'Too many failed attempts. Please wait a few minutes and try again.' });
    }
    const members = await deps.loadMembers(site.id);
    if (members && !members.ok) logger.error({ site: site.id, issues: members.error.issues }, 'members file invalid; nobody can sign in');
    const member = members?.ok ? members.byEmail.get(email) : undefined;
    const valid = member ? await verifyPassword(password, member.password) : await verifyAgainstDummy(password);
    if (!valid || !member) {
      logger.info({ site: site.id, reason: member ? 'wrong password' : 'no such member' }, 'sign-in failed');
      return render(401, { ...form, email, error: GENERIC_FAILURE });
    }
    // Only failures use up the allowance: a right password gives its attempt back.
    await attempts.refund(limitKey);
    await startSession(res, site, origin, member.email, member.name, 'password');
    logger.info({ site: site.id, user: member.email }, 'signed in');
    return seeOther(res, form.next);
  }

  async function signInWithToken(res: ServerResponse, site: Site, origin: RequestOrigin, body: Record<string, string>, form: SignInForm, render: RenderSignIn, wantsJson: boolean): Promise<void> {
    const settings = site.config.auth?.token;
    if (!settings) return wantsJson ? json(res, 404, { error: 'token sign-in is not enabled for this site' }) : render(404, { ...form, error: 'Token sign-in is not enabled for this site.' });
    const result = await deps.verifyIdpToken(site.id, settings, (body.token ?? '').trim());
    if (!result.ok) {
      logger.info({ site: site.id, reason: result.reason }, 'token sign-in refused');
      return wantsJson ? json(res, 401, { error: 'the token was not accepted' }) : render(401, { ...form, error: 'The token was not accepted.' });
    }
    await startSession(res, site, origin, `idp:${result.identity.sub}`, result.identity.name, 'token');
    return wantsJson ? json(res, 200, { signedIn: true, site: site.id, name: result.identity.name }) : seeOther(res, form.next);
  }

  /** Serves /_platform/session/<action> for `site`. */
  async function handle(req: IncomingMessage, res: ServerResponse, site: Site, origin: RequestOrigin, action: string, query: URLSearchParams, render: RenderSignIn): Promise<RouteKind> {
    res.setHeader('Cache-Control', 'no-store');
    const methods = { members: site.config.auth?.members ?? false, token: site.config.auth?.token !== undefined };
    try {
      if (action === 'whoami' && (req.method === 'GET' || req.method === 'HEAD')) {
        const v = await viewer(req, site, origin);
        if (v.kind === 'unavailable') json(res, 503, { error: 'session store unavailable' });
        else json(res, 200, v.kind === 'signed-in' ? { signedIn: true, site: site.id, user: v.session.user, name: v.session.name, method: v.session.method } : { signedIn: false, site: site.id });
        return 'session';
      }
      if (action === 'sign-in' && (req.method === 'GET' || req.method === 'HEAD')) {
        const form: SignInForm = { csrf: csrfFor(req, res, site.id, origin.proto, await cookieSessionId(req, site, origin)), next: safeNext(query.get('next')), ...methods };
        if (!methods.members && !methods.token) form.notice = 'This site has no sign-in.';
        const v = await viewer(req, site, origin);
        if (v.kind === 'signed-in') form.viewer = { name: v.session.name };
        await render(200, form);
        return 'session';
      }
      const allowed = Object.hasOwn(ENDPOINT_METHODS, action) ? ENDPOINT_METHODS[action] : undefined;
      if (!allowed) {
        json(res, 404, { error: 'no such session endpoint' });
        return 'platform';
      }
      if (!allowed.includes(req.method ?? '')) {
        // RFC 9110 §15.5.6: a 405 names the methods the endpoint does take.
        res.setHeader('Allow', allowed.join(', '));
        json(res, 405, { error: `${req.method} is not allowed here; use ${allowed.join(' or ')}` });
        return 'method_not_allowed';
      }
      const wantsJson = String(req.headers['content-type'] ?? '').startsWith('application/json');
      const body = await readFormBody(req);
      const sessionId = await cookieSessionId(req, site, origin);
      const form: SignInForm = { csrf: csrfFor(req, res, site.id, origin.proto, sessionId), next: safeNext(body.next), ...methods };
      const problem = csrfProblem(req, body, site, origin, sessionId);
      if (problem) {
        logger.info({ site: site.id, reason: problem }, 'session request refused (CSRF)');
        if (wantsJson) json(res, 403, { error: 'request refused: reload the page and try again' });
        else await render(403, { ...form, error: 'The form expired. Please try again.' });
        return 'forbidden';
      }
      if (action === 'sign-in') {
        if (!methods.members) {
          await render(404, { ...form, error: 'Password sign-in is not enabled for this site.' });
          return 'session';
        }
        await signInWithPassword(req, res, site, origin, body, form, render);
        return 'session';
      }
      if (action === 'token') {
        await signInWithToken(res, site, origin, body, form, render, wantsJson);
        return 'session';
      }
      const v = await viewer(req, site, origin);
      if (v.kind === 'unavailable') throw new SessionStoreUnavailable('sign-out', new Error('store unavailable'));
      if (v.kind === 'signed-in') {
        if (action === 'sign-out') await store.destroy(site.id, v.session.id);
        else await store.destroyAllForUser(site.id, v.session.user);
      }
      clearSessionCookie(res, origin);
      if (wantsJson) json(res, 200, { signedIn: false });
      else seeOther(res, form.next);
      return 'session';
    } catch (error) {
      if (error instanceof BodyError) {
        json(res, error.status, { error: error.message });
        return 'bad_request';
      }
      if (error instanceof SessionStoreUnavailable) {
        logger.warn({ site: site.id, err: error.message }, 'session store unavailable');
        res.setHeader('Retry-After', '30');
        if (res.headersSent) return 'unavailable';
        if (action === 'whoami' || String(req.headers['content-type'] ?? '').startsWith('application/json')) json(res, 503, { error: 'session store unavailable' });
        else await render(503, { csrf: '', next: '/', ...methods, error: UNAVAILABLE });
        return 'unavailable';
      }
      throw error;
    }
  }

  return { viewer, handle, csrfFor };
}

export type Sessions = ReturnType<typeof createSessions>;
