import { EventEmitter } from 'node:events';
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
  /**
   * Renders `view` and answers with it: the head and the whole body, or nothing at all. Throws
   * (and writes nothing) when the view cannot be rendered, so the pipeline answers a 500 with
   * `Cache-Control: no-store` (pipeline/error-response.ts) and no cache keeps it.
   */
  render(req: IncomingMessage, res: ServerResponse, view: View): Promise<void>;
  /** Renders as `render` does and also returns the body sent, for the render cache. */
  renderCaptured?(req: IncomingMessage, res: ServerResponse, view: View): Promise<Buffer>;
}

/** What Astro answered for one view, held in memory until it is known to be whole. */
interface Rendered {
  status: number;
  headers: OutgoingHttpHeaders;
  body: Buffer;
}

/**
 * Stands in for the visitor's response while Astro renders, keeping everything Astro writes.
 *
 * @astrojs/node streams: it writes the head, then the body as it renders, and when a component
 * throws midway it can only append "Internal server error" to a 200 already sent and cut the
 * connection (writeResponse in astro/dist/core/app/node.js). Pages are small, so we take the whole
 * answer first and decide afterwards: a render counts only if Astro ended the response itself,
 * never destroyed it, and answered with the view's own status (Astro answers its own 500 when
 * rendering fails before the first byte). Implements the part of ServerResponse that Astro's
 * node middleware uses (writeHead, write, end, destroy, headersSent, statusCode, req, events);
 * anything else it might call is missing, which fails the render rather than reaching the socket.
 */
class ResponseSink extends EventEmitter {
  statusCode = 200;
  statusMessage = '';
  headersSent = false;
  headers: OutgoingHttpHeaders = {};
  readonly chunks: Buffer[] = [];
  ended = false;
  failure: unknown;
  readonly req: IncomingMessage;

  constructor(req: IncomingMessage) {
    super();
    this.req = req;
  }

  writeHead(status: number, ...rest: unknown[]): this {
    const headers = typeof rest[0] === 'string' ? rest[1] : rest[0];
    this.statusCode = status;
    if (headers && typeof headers === 'object' && !Array.isArray(headers)) this.headers = { ...(headers as OutgoingHttpHeaders) };
    this.headersSent = true;
    return this;
  }

  write(chunk: unknown, ...rest: unknown[]): boolean {
    this.keep(chunk, rest[0]);
    const callback = rest.find((r) => typeof r === 'function') as (() => void) | undefined;
    callback?.();
    return true;
  }

  end(chunk?: unknown, ...rest: unknown[]): this {
    if (typeof chunk !== 'function') this.keep(chunk, rest[0]);
    this.headersSent = true;
    this.ended = true;
    this.emit('finish');
    this.emit('close');
    return this;
  }

  destroy(error?: unknown): this {
    this.failure ??= error ?? new Error('Astro cut the response off');
    this.emit('close');
    return this;
  }

  private keep(chunk: unknown, encoding: unknown) {
    if (chunk === undefined || chunk === null || typeof chunk === 'function') return;
    if (this.ended) {
      this.failure ??= new Error('Astro wrote after ending the response');
      return;
    }
    if (typeof chunk === 'string') {
      this.chunks.push(Buffer.from(chunk, typeof encoding === 'string' ? (encoding as BufferEncoding) : 'utf8'));
      return;
    }
    // A view of the bytes, not a copy (Buffer.from(Uint8Array) copies them one by one: ~30 µs
    // of a render's CPU in the cold-pass profile). Astro's node adapter writes each chunk of the
    // Response body as its stream produced it, a fresh array it never touches again; the chunks
    // are joined into one Buffer (renderWhole) before this render returns anyway.
    if (Buffer.isBuffer(chunk)) this.chunks.push(chunk);
    else if (ArrayBuffer.isView(chunk)) this.chunks.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
    else this.chunks.push(Buffer.from(chunk as Uint8Array));
  }
}

/**
 * Loads the built Astro app (@astrojs/node in middleware mode) and renders views through it. The
 * request URL is rewritten to the single view route so Astro's router never sees visitor paths:
 * routing and path safety are ours. Every render is whole before a byte of it is sent (see
 * ResponseSink): a view that fails to render, before or after its first byte, throws instead.
 */
export async function loadAstroRenderer(entryPath: string): Promise<Renderer> {
  const entry = (await import(pathToFileURL(entryPath).href)) as { handler?: AstroHandler };
  if (typeof entry.handler !== 'function') throw new Error(`${entryPath} does not export an Astro middleware handler; run npm run build`);
  const handler: AstroHandler = entry.handler;

  async function renderWhole(req: IncomingMessage, view: View): Promise<Rendered> {
    const { url, method, headers } = req;
    const sink = new ResponseSink(req);
    req.url = VIEW_ROUTE;
    // HEAD is answered without a body when the result is sent; Astro renders GET either way.
    req.method = 'GET';
    req.headers = VIEW_REQUEST_HEADERS;
    let routeMissing = false;
    try {
      await handler(req, sink as unknown as ServerResponse, () => {
        routeMissing = true;
      }, { view });
    } finally {
      req.url = url;
      req.method = method;
      req.headers = headers;
    }
    if (routeMissing) throw new Error(`${VIEW_ROUTE} is missing from the Astro build in ${entryPath} (run npm run build)`);
    if (sink.failure !== undefined) throw new Error(`view "${view.kind}" failed while rendering`, { cause: sink.failure });
    if (!sink.ended) throw new Error(`view "${view.kind}" did not finish rendering`);
    if (sink.statusCode !== view.status) throw new Error(`view "${view.kind}" did not render: Astro answered ${sink.statusCode} instead of ${view.status}`);
    return { status: sink.statusCode, headers: sink.headers, body: Buffer.concat(sink.chunks) };
  }

  const renderer: Renderer = {
    async renderCaptured(req, res, view) {
      const rendered = await renderWhole(req, view);
      // The visitor left while it rendered: nothing to send, and nothing to keep.
      if (res.destroyed) return Buffer.alloc(0);
      sendRendered(req, res, rendered);
      return rendered.body;
    },
    async render(req, res, view) {
      const rendered = await renderWhole(req, view);
      if (!res.destroyed) sendRendered(req, res, rendered);
    },
  };
  return renderer;
}

/**
 * Sends a whole render with our rules on top of Astro's head: the status line carries its own
 * reason phrase (Astro copies its Response's statusText, "OK", onto a 404), an HTML body says its
 * charset (RFC 9110 §8.3.1; browsers otherwise guess from the bytes), and the length is known.
 * Headers set on `res` before the render (Cache-Control, ETag) stay unless Astro set the same.
 */
function sendRendered(req: IncomingMessage, res: ServerResponse, { status, headers, body }: Rendered): void {
  for (const name of Object.keys(headers)) {
    const lower = name.toLowerCase();
    if (lower === 'content-type' && headers[name] === 'text/html') headers[name] = 'text/html; charset=utf-8';
    if (lower === 'content-length' || lower === 'transfer-encoding') delete headers[name];
  }
  if (res.getHeader('content-type') === 'text/html') res.setHeader('Content-Type', 'text/html; charset=utf-8');
  headers['content-length'] = body.length;
  res.writeHead(status, reasonPhrase(status), headers);
  res.end(req.method === 'HEAD' ? undefined : body);
}
