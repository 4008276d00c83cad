import type { SiteRequest, Stage } from '../context.ts';
import { sendText } from '../../http/respond.ts';
import { DEFAULT_FAVICON, DEFAULT_FAVICON_TYPE } from '../../http/default-favicon.ts';

/**
 * `/favicon.ico` for a site that has none in `public/` (the static stage before this one serves a
 * site's own): the platform's default icon instead of a 404 on every page view.
 */
export function faviconStage(deps: { staticMaxAgeSeconds: number }): Stage<SiteRequest> {
  return ({ res, target }) => {
    if (target.segments.length !== 1 || target.segments[0] !== 'favicon.ico') return undefined;
    sendText(res, 200, DEFAULT_FAVICON, { type: DEFAULT_FAVICON_TYPE, headers: { 'Cache-Control': `public, max-age=${deps.staticMaxAgeSeconds}` } });
    return 'static';
  };
}
