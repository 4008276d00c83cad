import { join, relative, sep } from 'node:path';
import type { SiteRequest, Stage } from '../context.ts';
import { cacheControlFor, locateStaticFile, serveStaticFile } from '../../http/static-file.ts';
import { accelRedirectUri, edgeFilesPrefix, sendAccelRedirect } from '../../http/accel-redirect.ts';
import { contentTypeFor } from '../../http/mime.ts';
import type { TrustedProxies } from '../../tenant/trusted-proxies.ts';
import type { Site } from '../../sites/loader.ts';

const HAS_EXTENSION = /\.[A-Za-z0-9]{1,10}$/;

export interface StaticFilesDeps {
  staticMaxAgeSeconds: number;
  withExtension: boolean;
  /** Who may offer X-Accel-Redirect (the nginx edge); undefined = always send files ourselves. */
  trustedProxies?: TrustedProxies;
  /**
   * The refusal (503) of the site's public files while its public/ is over its plan's total
   * (plans/content-gate.ts), or undefined. Undefined: no plan limit.
   */
  publicRefusal?: (site: Site) => Error | undefined;
}

/**
 * Files from the site's `public/` folder. A path whose last segment has an extension is looked up
 * here before pages (`/logo.svg`); one without is looked up only after no page matched
 * (`/downloads/README`), so a page always wins its own URL. `withExtension` picks which of the two
 * positions this instance serves.
 *
 * Behind the nginx edge (a trusted proxy offering its internal location, http/accel-redirect.ts)
 * the file is opened and checked here exactly as when it is sent from here (static-file.ts), and
 * nginx is told which one to send: by its real name relative to the site folder, so nginx, which
 * follows no symlink below the site folder, opens the very file that was checked, or refuses if
 * an owner swapped a link in since. A file whose real name is not under `public/` (a `public/`
 * that is a link to another folder of the site) is sent from here.
 */
export function staticFilesStage(deps: StaticFilesDeps): Stage<SiteRequest> {
  return async ({ req, res, site, target }) => {
    const { segments } = target;
    if (segments.length === 0 || HAS_EXTENSION.test(segments.at(-1)!) !== deps.withExtension) return undefined;
    const root = join(site.dir, 'public');
    const refusal = deps.publicRefusal?.(site);
    if (refusal) {
      // Only a file that is there is refused: a missing one stays a 404 (or a page's URL).
      if (await locateStaticFile(root, segments, site.dir)) throw refusal;
      return undefined;
    }
    const options = { maxAgeSeconds: deps.staticMaxAgeSeconds, within: site.dir };
    const prefix = deps.trustedProxies ? edgeFilesPrefix(req, deps.trustedProxies) : undefined;
    if (prefix !== undefined) {
      // Only its name is needed: nginx opens the file itself.
      const found = await locateStaticFile(root, segments, site.dir);
      if (!found) return undefined;
      const inside = relative(site.dir, found.realFile).split(sep);
      const uri = inside[0] === 'public' ? accelRedirectUri(prefix, site.id, inside) : undefined;
      if (uri !== undefined) {
        sendAccelRedirect(res, uri, { contentType: contentTypeFor(segments.at(-1)!), cacheControl: cacheControlFor(options) });
        return 'static';
      }
    }
    return (await serveStaticFile(req, res, root, segments, options)) ? 'static' : undefined;
  };
}
