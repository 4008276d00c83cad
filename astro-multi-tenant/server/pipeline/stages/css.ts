import { join } from 'node:path';
import type { SiteRequest, Stage } from '../context.ts';
import { serveStaticFile } from '../../http/static-file.ts';
import { PLATFORM_PAGES, type PlatformPages } from '../../http/respond.ts';
import { CSS_PREFIX, HASHED_STYLESHEET } from '../../render/site-view.ts';
import { COMPONENT_STYLESHEET } from '../../css/component-stylesheet.ts';
import type { Site } from '../../sites/loader.ts';

/**
 * A site's built stylesheet at /_platform/css/<site>/site.<hash>.css, and the stylesheet of its own
 * components at /_platform/css/<site>/components.<hash>.css, only on that site's hosts
 * (the shared `_base` one is a platform asset on every host). Hashed names never change content,
 * so they are immutable for a year; nothing else in the CSS folder (the build's manifest.json,
 * which changes every build) is ever served.
 */
export function cssStage(deps: { cssDir: string; pages: PlatformPages; componentCss?: (site: Site, file: string) => Promise<string | undefined> }): Stage<SiteRequest> {
  return async ({ req, res, site, target }) => {
    if (!target.pathname.startsWith(CSS_PREFIX)) return undefined;
    const [, , owner, file] = target.segments;
    if (target.segments.length === 4 && file && HASHED_STYLESHEET.test(file) && owner === site.id) {
      if (await serveStaticFile(req, res, join(deps.cssDir, owner), [file], { maxAgeSeconds: 0, immutable: true })) return 'css';
    }
    // The scoped CSS of the site's own components (css/component-stylesheet.ts): made in memory, as immutable.
    if (target.segments.length === 4 && file && COMPONENT_STYLESHEET.test(file) && owner === site.id && deps.componentCss) {
      const css = await deps.componentCss(site, file);
      if (css !== undefined) {
        const body = Buffer.from(css);
        res.writeHead(200, { 'Content-Type': 'text/css; charset=utf-8', 'Content-Length': body.length, 'Cache-Control': 'public, max-age=31536000, immutable' });
        res.end(req.method === 'HEAD' ? undefined : body);
        return 'css';
      }
    }
    await deps.pages.error(req, res, PLATFORM_PAGES.notFound);
    return 'css';
  };
}
