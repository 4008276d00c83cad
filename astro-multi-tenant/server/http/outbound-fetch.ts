import { lookup as dnsLookup } from 'node:dns/promises';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { isIP } from 'node:net';
import { PlatformError } from '../errors.ts';
import { normalizeHost } from '../tenant/normalize-host.ts';
import { addressProblem } from './public-address.ts';

/**
 * GET requests to addresses a site owner chose (today: `auth.token.jwksUrl`), made so that a site
 * cannot point the server at anything it should not reach: internal services, the server's own
 * /_platform/ pages, the cloud metadata address.
 *
 * Every hop (the URL and each redirect) is checked the same way:
 * - https only, no user info in the URL;
 * - the host name is resolved (injected `lookup`, the system resolver in production) and EVERY
 *   address it resolves to must be public (public-address.ts), an IP literal likewise;
 * - the connection goes to the checked address itself (Host and TLS SNI/certificate check still
 *   use the name), so a second DNS answer cannot swap in another address (DNS rebinding);
 * - redirects are followed by hand, at most `maxRedirects`, each target checked again.
 * One deadline covers the whole request (DNS, connect, redirects, body), and bodies larger than
 * `maxBytes` are refused (by Content-Length, or as they stream).
 *
 * Hosts on the operator's allowlist (JWKS_ALLOW_HOSTS) skip the scheme and address checks: an
 * identity provider on a private network, or a test server on loopback.
 */
export type Lookup = (hostname: string) => Promise<Array<{ address: string; family: number }>>;

export const systemLookup: Lookup = (hostname) => dnsLookup(hostname, { all: true, verbatim: true });

export interface OutboundAllowList {
  /** True when host (lowercase, IPv6 bracketed) on `port` may be reached whatever its address or scheme. */
  allows(hostname: string, port: number): boolean;
  readonly description: string;
}

/**
 * Parses a comma-separated list of `host` or `host:port` entries (DNS names or IP literals, IPv6 in
 * brackets), e.g. `idp.internal,127.0.0.1:8443,[::1]:9000`. An entry without a port allows every
 * port of that host.
 *
 * @throws PlatformError CONFIG_INVALID naming `field` and the entry.
 */
export function parseOutboundAllowList(spec: string | undefined, field = 'JWKS_ALLOW_HOSTS'): OutboundAllowList {
  const entries = (spec ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  const parsed = entries.map((entry) => {
    if (/^[a-z][a-z0-9+.-]*:\/\//i.test(entry)) throw new PlatformError('CONFIG_INVALID', `${field}: "${entry}" must be a host or host:port, not a URL`, entry);
    try {
      return normalizeHost(entry);
    } catch (error) {
      throw new PlatformError('CONFIG_INVALID', `${field}: "${entry}" is not a host or host:port (${(error as Error).message})`, entry);
    }
  });
  return {
    description: entries.join(',') || '(none)',
    allows(hostname, port) {
      const host = hostname.toLowerCase().replace(/\.$/, '');
      return parsed.some((entry) => entry.hostname === host && (entry.port === undefined || entry.port === port));
    },
  };
}

export interface OutboundFetchOptions {
  allow: OutboundAllowList;
  /** Name resolution; tests inject one, production uses the system resolver. */
  lookup?: Lookup;
  /** Deadline for the whole request, redirects and body included (ms). */
  timeoutMs?: number;
  /** Largest body accepted (bytes). */
  maxBytes?: number;
  maxRedirects?: number;
  /** Extra trusted CA certificates (PEM), for tests; production uses the system store. */
  ca?: string | Buffer;
}

export interface OutboundResponse {
  /** The URL that answered, after redirects. */
  url: string;
  status: number;
  contentType: string | undefined;
  body: Buffer;
}

export type OutboundFetch = (url: string, init?: { accept?: string }) => Promise<OutboundResponse>;

const refuse = (message: string, input: string) => new PlatformError('OUTBOUND_REFUSED', message, input);

/**
 * @returns a GET function. It rejects with PlatformError OUTBOUND_REFUSED when a hop is not allowed,
 *   the deadline passes, the body is too large, or there are too many redirects; with the network
 *   error (also wrapped as OUTBOUND_REFUSED) when the connection fails. Any status is returned as is.
 */
export function createOutboundFetch(options: OutboundFetchOptions): OutboundFetch {
  const lookup = options.lookup ?? systemLookup;
  const timeoutMs = options.timeoutMs ?? 3000;
  const maxBytes = options.maxBytes ?? 256 * 1024;
  const maxRedirects = options.maxRedirects ?? 3;

  /** The address to connect to for `url`, once every check has passed. */
  async function checkedTarget(url: URL): Promise<{ address: string; family: number; hostname: string; port: number }> {
    const hostname = url.hostname.toLowerCase();
    const port = Number(url.port || (url.protocol === 'https:' ? 443 : 80));
    const allowed = options.allow.allows(hostname, port);
    if (url.protocol !== 'https:' && !(url.protocol === 'http:' && allowed)) throw refuse(`${url.protocol}// is not allowed (https only, unless the host is in JWKS_ALLOW_HOSTS)`, url.href);
    if (url.username || url.password) throw refuse('URLs with user information are not allowed', url.href);
    const literal = hostname.startsWith('[') ? hostname.slice(1, -1) : hostname;
    const addresses = isIP(literal) ? [{ address: literal, family: isIP(literal) }] : await lookup(hostname).catch((error: Error) => {
      throw refuse(`cannot resolve ${hostname}: ${error.message}`, url.href);
    });
    if (addresses.length === 0) throw refuse(`${hostname} has no addresses`, url.href);
    if (!allowed) {
      // Every address, not just the first: the connection could otherwise be steered to a bad one.
      for (const { address } of addresses) {
        const problem = addressProblem(address);
        if (problem) throw refuse(`${isIP(literal) ? '' : `${hostname} resolves to `}${problem}`, url.href);
      }
    }
    return { ...addresses[0]!, hostname, port };
  }

  function once(url: URL, target: { address: string; family: number; hostname: string; port: number }, accept: string, signal: AbortSignal): Promise<{ res: IncomingMessage; body: Buffer | undefined }> {
    return new Promise((resolve, reject) => {
      const name = target.hostname.startsWith('[') ? target.hostname.slice(1, -1) : target.hostname;
      const request = url.protocol === 'https:' ? httpsRequest : httpRequest;
      const req = request(
        {
          host: target.address,
          family: target.family,
          port: target.port,
          path: `${url.pathname}${url.search}`,
          method: 'GET',
          agent: false,
          signal,
          headers: { host: url.host, accept, 'user-agent': 'astro-multi-tenant' },
          // SNI and the certificate check use the name, the connection the checked address.
          ...(url.protocol === 'https:' ? { servername: isIP(name) ? undefined : name, ca: options.ca } : {}),
        },
        (res) => {
          if (res.statusCode && res.statusCode >= 300 && res.statusCode < 400 && res.headers.location) {
            res.resume();
            resolve({ res, body: undefined });
            return;
          }
          // Rejecting first and then dropping the connection: once a response has begun, destroying
          // it may still end the stream normally, and a cut-off body must never count as the answer.
          const fail = (error: Error) => {
            reject(error);
            req.destroy();
          };
          const declared = Number(res.headers['content-length'] ?? 0);
          if (declared > maxBytes) return fail(refuse(`the answer is ${declared} bytes, more than ${maxBytes}`, url.href));
          const chunks: Buffer[] = [];
          let size = 0;
          res.on('data', (chunk: Buffer) => {
            size += chunk.length;
            if (size > maxBytes) fail(refuse(`the answer is more than ${maxBytes} bytes`, url.href));
            else chunks.push(chunk);
          });
          res.on('end', () => {
            if (size <= maxBytes) resolve({ res, body: Buffer.concat(chunks) });
          });
          res.on('error', reject);
        },
      );
      req.on('error', reject);
      req.end();
    });
  }

  return async function outboundFetch(href, init = {}) {
    const accept = init.accept ?? 'application/json';
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(refuse(`no complete answer within ${timeoutMs} ms`, href)), timeoutMs);
    try {
      let url: URL;
      try {
        url = new URL(href);
      } catch {
        throw refuse('not a URL', href);
      }
      for (let redirects = 0; ; redirects++) {
        const target = await Promise.race([checkedTarget(url), aborted(controller.signal)]);
        const { res, body } = await once(url, target, accept, controller.signal);
        if (body !== undefined) return { url: url.href, status: res.statusCode ?? 0, contentType: res.headers['content-type'], body };
        if (redirects >= maxRedirects) throw refuse(`more than ${maxRedirects} redirects`, href);
        url = new URL(res.headers.location!, url);
      }
    } catch (error) {
      if (controller.signal.aborted && controller.signal.reason instanceof PlatformError) throw controller.signal.reason;
      if (error instanceof PlatformError) throw error;
      throw new PlatformError('OUTBOUND_REFUSED', `request failed: ${(error as Error).message}`, href, { cause: error });
    } finally {
      clearTimeout(timer);
    }
  };
}

function aborted(signal: AbortSignal): Promise<never> {
  return new Promise((_, reject) => {
    if (signal.aborted) reject(signal.reason);
    signal.addEventListener('abort', () => reject(signal.reason), { once: true });
  });
}
