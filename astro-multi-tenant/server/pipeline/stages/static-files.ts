import { join } from 'node:path';
import type { SiteRequest, Stage } from '../context.ts';
import { serveStaticFile } from '../../http/static-file.ts';

const HAS_EXTENSION = /\.[A-Za-z0-9]{1,10}$/;

/**
 * Files from the site's `public/` folder. A path whose last segment has an extension is looked up
 * here before pages (`/logo.svg`); one without is looked up only after no page matched
 * (`/downloads/README`), so a page always wins its own URL. `withExtension` picks which of the two
 * positions this instance serves.
 */
export function staticFilesStage(deps: { staticMaxAgeSeconds: number; withExtension: boolean }): Stage<SiteRequest> {
  return async ({ req, res, site, target }) => {
    const { segments } = target;
    if (segments.length === 0 || HAS_EXTENSION.test(segments.at(-1)!) !== deps.withExtension) return undefined;
    return (await serveStaticFile(req, res, join(site.dir, 'public'), segments, { maxAgeSeconds: deps.staticMaxAgeSeconds })) ? 'static' : undefined;
  };
}
