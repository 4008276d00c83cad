import { join } from 'node:path';
import type { SiteRequest, Stage } from '../context.ts';
import { WELL_KNOWN } from '../../http/request-path.ts';
import { serveStaticFile } from '../../http/static-file.ts';
import { renderSiteNotFound, type NotFoundDeps } from './not-found.ts';

/**
 * RFC 8615 well-known URIs from the site's own `public/.well-known/` folder: ACME HTTP-01 tokens
 * (`acme-challenge/<token>`), `security.txt` and friends. Answered here and only here: no page or
 * other static rule ever sees a dot-segment. Not cached by browsers or the edge for long, so a
 * new ACME token is visible at once.
 */
export function wellKnownStage(deps: NotFoundDeps): Stage<SiteRequest> {
  return async (ctx) => {
    const { req, res, site, target } = ctx;
    if (target.segments[0] !== WELL_KNOWN) return undefined;
    if (await serveStaticFile(req, res, join(site.dir, 'public', WELL_KNOWN), target.segments.slice(1), { maxAgeSeconds: 0, within: site.dir })) return 'static';
    return renderSiteNotFound(deps, ctx);
  };
}
