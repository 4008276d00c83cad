import { request } from 'node:http';
import type { Response } from './server.ts';

/**
 * A browser's view of sign-in over node:http (fetch cannot set Host). `from` binds the client to
 * a local address (127.0.0.2 is loopback but outside the default TRUSTED_PROXIES and ADMIN_ALLOW),
 * so tests can be an untrusted peer without leaving the machine.
 */
export interface Client {
  port: number;
  host: string;
  from?: string;
}

export const DEMO = { email: 'demo@docs.example', password: 'docs-demo-password' };

export function send(client: Client, method: string, path: string, headers: Record<string, string> = {}, body?: string): Promise<Response> {
  return new Promise((resolve, reject) => {
    const all: Record<string, string | number> = { host: client.host, ...headers };
    if (body !== undefined) all['content-length'] = Buffer.byteLength(body);
    const req = request({ host: '127.0.0.1', port: client.port, path, method, headers: all, agent: false, localAddress: client.from }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString() }));
    });
    req.on('error', reject);
    req.setTimeout(20_000, () => req.destroy(new Error(`timeout: ${method} ${client.host}${path}`)));
    req.end(body);
  });
}

/** name=value pairs from Set-Cookie headers. */
export function cookiesFrom(res: Response): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of res.headers['set-cookie'] ?? []) {
    const [pair] = line.split(';');
    const eq = pair!.indexOf('=');
    out[pair!.slice(0, eq)] = pair!.slice(eq + 1);
  }
  return out;
}

export interface OpenForm {
  /** The form's hidden csrf field. */
  token: string;
  /** The amt_csrf cookie (the nonce the token is bound to). */
  nonce: string;
  page: Response;
}

/** What a browser does first: load the sign-in form, keeping its CSRF cookie and field. */
export async function openForm(client: Client, headers: Record<string, string> = {}): Promise<OpenForm> {
  const page = await send(client, 'GET', '/_platform/session/sign-in?next=/members', headers);
  if (page.status !== 200) throw new Error(`sign-in form answered ${page.status}: ${page.body.slice(0, 200)}`);
  const nonce = cookiesFrom(page).amt_csrf ?? /amt_csrf=([^;]+)/.exec(headers.cookie ?? '')?.[1];
  const token = /name="csrf" value="([^"]+)"/.exec(page.body)?.[1];
  if (!nonce || !token) throw new Error('the sign-in form has no CSRF cookie or field');
  return { token, nonce, page };
}

export const formHeaders = (form: OpenForm, origin: string, extra: Record<string, string> = {}) => ({
  'content-type': 'application/x-www-form-urlencoded',
  cookie: `amt_csrf=${form.nonce}`,
  origin,
  ...extra,
});

/** Loads the form and posts e-mail and password from the same origin, as a browser would. */
export async function signIn(client: Client, email: string, password: string, extra: Record<string, string> = {}, origin = `http://${client.host}`) {
  const form = await openForm(client);
  const body = new URLSearchParams({ csrf: form.token, email, password, next: '/members' }).toString();
  const res = await send(client, 'POST', '/_platform/session/sign-in', formHeaders(form, origin, extra), body);
  return { res, session: cookiesFrom(res).amt_session };
}
