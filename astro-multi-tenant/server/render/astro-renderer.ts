import { pathToFileURL } from 'node:url';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { View } from './view.ts';

type AstroHandler = (req: IncomingMessage, res: ServerResponse, next: (() => void) | undefined, locals: object) => Promise<void>;

/** The one Astro route every view is rendered through (src/pages/tenant-view.astro). */
export const VIEW_ROUTE = '/tenant-view';

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
      const originalUrl = req.url;
      req.url = VIEW_ROUTE;
      try {
        await handler(req, res, () => {
          res.statusCode = 500;
          res.end('view route missing from the Astro build');
        }, { view });
      } finally {
        req.url = originalUrl;
      }
    },
  };
  return renderer;
}
