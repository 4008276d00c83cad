import type { SiteRequest, Stage } from '../context.ts';
import { redirect } from '../../http/respond.ts';
import { routePath } from '../../sites/sitemap.ts';

/** `/a/` → 301 `/a` (query kept): every page has exactly one URL, the one its canonical names. */
export function trailingSlashStage(deps: { edgeCacheSeconds: number }): Stage<SiteRequest> {
  return ({ res, target }) => {
    if (!target.trailingSlash) return undefined;
    redirect(res, 301, `${routePath(target.segments)}${target.search}`, { cache: 'public', edgeCacheSeconds: deps.edgeCacheSeconds });
    return 'redirect';
  };
}
