import { join } from 'node:path';
import type { Exchange, Stage } from '../context.ts';
import { serveStaticFile } from '../../http/static-file.ts';
import { HASHED_STYLESHEET } from '../../render/site-view.ts';
import { sendText } from '../../http/respond.ts';
import { DEFAULT_FAVICON, DEFAULT_FAVICON_TYPE } from '../../http/default-favicon.ts';

export const BASE_CSS_PREFIX = '/_platform/css/_base/';
export const PLATFORM_FAVICON = '/_platform/favicon.ico';

/**
 * The shared base stylesheet and the platform favicon, on every host, before tenant routing:
 * platform pages (unknown host, unavailable site) link them, and on exactly those hosts there is
 * no site to serve them from.
 */
export function platformAssetsStage(deps: { cssDir: string; staticMaxAgeSeconds: number }): Stage<Exchange> {
  return async ({ req, res }) => {
    const url = req.url ?? '/';
    if (url.startsWith(BASE_CSS_PREFIX)) {
      const file = url.slice(BASE_CSS_PREFIX.length).split('?', 1)[0]!;
      if (HASHED_STYLESHEET.test(file) && (await serveStaticFile(req, res, join(deps.cssDir, '_base'), [file], { maxAgeSeconds: 0, immutable: true }))) return 'css';
      return undefined; // the tenant stages answer 404 in the site's own look, or the platform's
    }
    if (url === PLATFORM_FAVICON || url.startsWith(`${PLATFORM_FAVICON}?`)) {
      sendText(res, 200, DEFAULT_FAVICON, { type: DEFAULT_FAVICON_TYPE, headers: { 'Cache-Control': `public, max-age=${deps.staticMaxAgeSeconds}` } });
      return 'static';
    }
    return undefined;
  };
}
