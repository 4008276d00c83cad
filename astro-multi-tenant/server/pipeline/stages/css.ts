import { join } from 'node:path';
import type { SiteRequest, Stage } from '../context.ts';
import { serveStaticFile } from '../../http/static-file.ts';
import { PLATFORM_PAGES, type PlatformPages } from '../../http/respond.ts';
import { CSS_PREFIX, HASHED_STYLESHEET } from '../../render/site-view.ts';

/**
 * A site's built stylesheet at /_platform/css/<site>/site.<hash>.css, only on that site's hosts
 * (the shared `_base` one is a platform asset on every host). Hashed names never change content,
 * so they are immutable for a year; nothing else in the CSS folder (the build's manifest.json,
 * which changes every build) is ever served.
 */
export function cssStage(deps: { cssDir: string; pages: PlatformPages }): Stage<SiteRequest> {
  return async ({ req, res, site, target }) => {
    if (!target.pathname.startsWith(CSS_PREFIX)) return undefined;
    const [, , owner, file] = target.segments;
    if (target.segments.length === 4 && file && HASHED_STYLESHEET.test(file) && owner === site.id) {
      if (await serveStaticFile(req, res, join(deps.cssDir, owner), [file], { maxAgeSeconds: 0, immutable: true })) return 'css';
    }
    await deps.pages.error(req, res, PLATFORM_PAGES.notFound);
    return 'css';
  };
}
