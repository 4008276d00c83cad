import type { SiteRequest, Stage } from '../context.ts';
import type { Renderer } from '../../render/astro-renderer.ts';
import { siteView } from '../../render/site-view.ts';
import type { Site } from '../../sites/loader.ts';

export interface NotFoundDeps {
  renderer: Renderer;
  stylesheets: (site: Site) => string[];
}

/** The site's own 404 page, in its look, never stored by a cache. */
export async function renderSiteNotFound(deps: NotFoundDeps, ctx: SiteRequest): Promise<'site_not_found'> {
  ctx.res.setHeader('Cache-Control', 'no-store');
  await deps.renderer.render(ctx.req, ctx.res, { kind: 'site-not-found', status: 404, site: siteView(ctx.site, ctx.siteOrigin), stylesheets: deps.stylesheets(ctx.site) });
  return 'site_not_found';
}

/** Last stage: nothing of the site answers this path. */
export function notFoundStage(deps: NotFoundDeps): Stage<SiteRequest> {
  return (ctx) => renderSiteNotFound(deps, ctx);
}
