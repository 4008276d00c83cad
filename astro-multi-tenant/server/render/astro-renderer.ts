import { pathToFileURL } from 'node:url';
import type { IncomingHttpHeaders, IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { reasonPhrase } from '../http/respond.ts';
import type { View } from './view.ts';

type AstroHandler = (req: IncomingMessage, res: ServerResponse, next: (() => void) | undefined, locals: object) => Promise<void>;

/** The one Astro route every view is rendered through (src/pages/tenant-view.astro). */
export const VIEW_ROUTE = '/tenant-view';

/**
 * The only request headers Astro sees. Astro builds a URL from the raw Host header (a UTF-8 IDN
 * sent as bytes makes that URL invalid, and the route then "does not exist") and copies every
 * header into its Request; our views read nothing from either (the tenant, origin and viewer come
 * in the view), so Astro gets a fixed, valid host and nothing else the visitor sent.
 */
const VIEW_REQUEST_HEADERS: IncomingHttpHeaders = Object.freeze({ host: 'localhost' }) as IncomingHttpHeaders;

export interface Renderer {
  render(req: IncomingMessage, res: ServerResponse, view: View): Promise<void>;
  /** Renders to the client as usual and also returns the bytes sent, for the render cache. */
  renderCaptured?(req: IncomingMessage, res: ServerResponse, view: View): Promise<Buffer>;
}

/**
 * Tees what is written to `res` into a buffer while it streams to the client. Astro writes through
 * res.write / res.end (writeResponse in @astrojs/node), so wrapping those two for the duration of
 * one render sees every byte without changing what the visitor gets.
 */
export async function captureWhile(res: ServerResponse, work: () => Promise<void>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  const keep = (chunk: unknown, encoding?: unknown) => {
    if (chunk === undefined || chunk === null || typeof chunk === 'function') return;
    chunks.push(typeof chunk === 'string' ? Buffer.from(chunk, typeof encoding === 'string' ? (encoding as BufferEncoding) : 'utf8') : Buffer.from(chunk as Uint8Array));
  };
  const write = res.write;
  const end = res.end;
  res.write = function (this: ServerResponse, chunk: unknown, ...rest: unknown[]) {
    keep(chunk, rest[0]);
    return (write as (...a: unknown[]) => boolean).call(this, chunk, ...rest);
  } as typeof res.write;
  res.end = function (this: ServerResponse, chunk?: unknown, ...rest: unknown[]) {
    keep(chunk, rest[0]);
    return (end as (...a: unknown[]) => ServerResponse).call(this, chunk, ...rest);
  } as typeof res.end;
  try {
    await work();
  } finally {
    res.write = write;
    res.end = end;
  }
  return Buffer.concat(chunks);
}

/**
 * Loads the built Astro app (@astrojs/node in middleware mode) and renders views through it. The
 * request URL is rewritten to the single view route so Astro's router never sees visitor paths:
 * routing and path safety are ours.
 */
export async function loadAstroRenderer(entryPath: string): Promise<Renderer> {
  const entry = (await import(pathToFileURL(entryPath).href)) as { handler?: AstroHandler };
  const handler = entry.handler;
  if (typeof handler !== 'function') throw new Error(`${entryPath} does not export an Astro middleware handler; run npm run build`);
  const renderer: Renderer = {
    async renderCaptured(req, res, view) {
      return captureWhile(res, () => renderer.render(req, res, view));
    },
    async render(req, res, view) {
      const { url, method, headers } = req;
      const writeHead = res.writeHead;
      req.url = VIEW_ROUTE;
      // HEAD is answered by Node without a body; Astro renders GET either way.
      req.method = 'GET';
      req.headers = VIEW_REQUEST_HEADERS;
      res.writeHead = standardWriteHead(res, writeHead);
      let routeMissing = false;
      try {
        await handler(req, res, () => {
          routeMissing = true;
        }, { view });
      } finally {
        req.url = url;
        req.method = method;
        req.headers = headers;
        res.writeHead = writeHead;
      }
      if (routeMissing) throw new Error(`${VIEW_ROUTE} is missing from the Astro build in ${entryPath} (run npm run build)`);
    },
  };
  return renderer;
}

/**
 * Wraps writeHead for one render so that what Astro writes follows our rules: the status line
 * carries its own reason phrase (Astro copies its Response's statusText, "OK", onto a 404) and an
 * HTML body says its charset (RFC 9110 §8.3.1; browsers otherwise guess from the bytes).
 */
function standardWriteHead(res: ServerResponse, writeHead: ServerResponse['writeHead']): ServerResponse['writeHead'] {
  return function (this: ServerResponse, status: number, ...rest: unknown[]) {
    const headers = (typeof rest[0] === 'string' ? rest[1] : rest[0]) as OutgoingHttpHeaders | undefined;
    if (headers && typeof headers === 'object' && !Array.isArray(headers)) {
      for (const name of Object.keys(headers)) {
        if (name.toLowerCase() === 'content-type' && headers[name] === 'text/html') headers[name] = 'text/html; charset=utf-8';
      }
    }
    if (res.getHeader('content-type') === 'text/html') res.setHeader('Content-Type', 'text/html; charset=utf-8');
    return (writeHead as (...a: unknown[]) => ServerResponse).call(this, status, reasonPhrase(status), headers);
  } as ServerResponse['writeHead'];
}
