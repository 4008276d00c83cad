import type { SiteRequest, Stage } from '../context.ts';
import { PLATFORM_PAGES, type PlatformPages } from '../../http/respond.ts';

/** Everything under this prefix belongs to the platform, not to any tenant. */
export const PLATFORM_PREFIX = '/_platform/';

/**
 * Whatever the platform stages before did not answer under /_platform/ is a platform 404: a site
 * can never serve a page or file there, so no tenant can imitate a platform endpoint.
 */
export function platformPathsStage(deps: { pages: PlatformPages }): Stage<SiteRequest> {
  return async ({ req, res, target }) => {
    if (!target.pathname.startsWith(PLATFORM_PREFIX)) return undefined;
    await deps.pages.error(req, res, PLATFORM_PAGES.notFound);
    return 'platform';
  };
}
