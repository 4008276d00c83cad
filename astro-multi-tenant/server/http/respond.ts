import { STATUS_CODES, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Renderer } from '../render/astro-renderer.ts';
import type { PlatformHomeSite } from '../render/view.ts';

/**
 * The ways the server answers without Astro: plain text, redirects and 304s. Every stage answers
 * through these (or through the renderer), so headers that must go together stay together.
 */

export interface TextOptions {
  /** Content-Type; plain UTF-8 text by default. */
  type?: string;
  headers?: Readonly<Record<string, string>>;
}

/**
 * Sends a complete small body with its Content-Length. HEAD gets the same headers and no body
 * (RFC 9110 §9.3.2).
 */
export function sendText(res: ServerResponse, status: number, body: string | Buffer, options: TextOptions = {}): void {
  res.statusCode = status;
  res.setHeader('Content-Type', options.type ?? 'text/plain; charset=utf-8');
  res.setHeader('Content-Length', typeof body === 'string' ? Buffer.byteLength(body) : body.length);
  if (options.headers) for (const [k, v] of Object.entries(options.headers)) res.setHeader(k, v);
  res.end(res.req?.method === 'HEAD' ? undefined : body);
}

/**
 * Edge cacheability for nginx: X-Accel-Expires lets the edge keep an anonymous response for
 * `seconds` while browsers still revalidate every time. Must be set before Cache-Control: nginx
 * before 1.23 reads the two in header order, and a max-age=0 seen first makes the response
 * uncacheable whatever X-Accel-Expires says. 0 = tell the edge nothing.
 */
export function allowEdgeCache(res: ServerResponse, seconds: number): void {
  if (seconds > 0) res.setHeader('X-Accel-Expires', String(seconds));
}

export interface RedirectOptions {
  /** Seconds an edge cache (nginx) may keep the redirect; only for `cache: 'public'`. */
  edgeCacheSeconds?: number;
  /** `public`: the same for every visitor (aliases, trailing slashes); `private`: never stored. */
  cache: 'public' | 'private';
}

/**
 * A redirect with an empty body. 301 for permanent moves (alias → primary domain, trailing
 * slash), 303 after a form or to the sign-in page (RFC 9110 §15.4).
 */
export function redirect(res: ServerResponse, status: 301 | 302 | 303 | 307 | 308, location: string, options: RedirectOptions): void {
  res.statusCode = status;
  if (options.cache === 'public') {
    allowEdgeCache(res, options.edgeCacheSeconds ?? 0);
    res.setHeader('Cache-Control', 'public, max-age=3600');
  } else {
    res.setHeader('Cache-Control', 'no-store');
  }
  res.setHeader('Location', location);
  res.setHeader('Content-Length', 0);
  res.end();
}

/** 304 Not Modified: no body, validators already set by the caller (RFC 9110 §15.4.5). */
export function notModified(res: ServerResponse): void {
  res.statusCode = 304;
  res.removeHeader('Content-Type');
  res.removeHeader('Content-Length');
  res.end();
}

/**
 * The reason phrase that belongs to a status code (RFC 9110 §15), never a stale one another
 * layer set: Astro copies its Response's statusText (often "OK") onto every status it writes.
 */
export function reasonPhrase(status: number): string {
  return STATUS_CODES[status] ?? '';
}

/** A platform page's words; `status` is the HTTP status it answers with. */
export interface PlatformPage {
  status: 404 | 500 | 503;
  title: string;
  message: string;
}

/** Platform pages that are not errors of a request (see errors.ts for those). */
export const PLATFORM_PAGES = {
  notFound: { status: 404, title: 'Not found', message: 'There is nothing at this address.' },
  unknownHost: { status: 404, title: 'Site not found', message: 'No site is configured for this address.' },
} as const satisfies Record<string, PlatformPage>;

/** Renders platform pages through Astro with the shared base stylesheet (render/view.ts). */
export interface PlatformPages {
  /** An error or not-found page; never stored by a cache (`no-store`). */
  error(req: IncomingMessage, res: ServerResponse, page: PlatformPage, headers?: Readonly<Record<string, string>>): Promise<void>;
  /** The home page of the bare PLATFORM_DOMAIN; `sites` undefined lists none. */
  home(req: IncomingMessage, res: ServerResponse, platformDomain: string, sites: PlatformHomeSite[] | undefined, moreSites: number): Promise<void>;
  /** The stylesheets platform pages link: only assets every host serves. */
  readonly stylesheets: readonly string[];
}

/** Distinct platform pages kept rendered (there are a handful; the bound is a guard). */
const PLATFORM_PAGE_CACHE_LIMIT = 32;

export function createPlatformPages(deps: { renderer: Renderer; baseStylesheets: readonly string[] }): PlatformPages {
  const stylesheets = [...deps.baseStylesheets];
  const rendered = new Map<string, Buffer>();
  return {
    stylesheets,
    async error(req, res, page, headers = {}) {
      // The same few pages for every host (they carry no tenant data): each is rendered once per
      // process and then sent from memory, so a flood of unknown hosts costs no render at all.
      const key = `${page.status}\0${page.title}\0${page.message}`;
      const known = rendered.get(key);
      if (known) {
        sendText(res, page.status, known, { type: 'text/html; charset=utf-8', headers: { 'Cache-Control': 'no-store', ...headers } });
        return;
      }
      res.setHeader('Cache-Control', 'no-store');
      for (const [k, v] of Object.entries(headers)) res.setHeader(k, v);
      const view = { kind: 'platform-error', status: page.status, title: page.title, message: page.message, stylesheets } as const;
      if (!deps.renderer.renderCaptured || req.method === 'HEAD') return deps.renderer.render(req, res, view);
      const body = await deps.renderer.renderCaptured(req, res, view);
      if (res.statusCode === page.status && body.length > 0 && rendered.size < PLATFORM_PAGE_CACHE_LIMIT) rendered.set(key, body);
    },
    async home(req, res, platformDomain, sites, moreSites) {
      res.setHeader('Cache-Control', 'no-store');
      await deps.renderer.render(req, res, { kind: 'platform-home', status: 200, platformDomain, sites, moreSites, stylesheets });
    },
  };
}
