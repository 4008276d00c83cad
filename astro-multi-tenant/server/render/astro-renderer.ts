import { pathToFileURL } from 'node:url';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { View } from './view.ts';

type AstroHandler = (req: IncomingMessage, res: ServerResponse, next: (() => void) | undefined, locals: object) => Promise<void>;

/** The one Astro route every view is rendered through (src/pages/tenant-view.astro). */
export const VIEW_ROUTE = '/tenant-view';

export interface Renderer {
  render(req: IncomingMessage, res: ServerResponse, view: View): Promise<void>;
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
  return {
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
}
