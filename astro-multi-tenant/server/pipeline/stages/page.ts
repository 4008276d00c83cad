import type { SiteRequest, Stage } from '../context.ts';
import type { PageLoader } from '../../sites/pages.ts';
import type { createPageResponse } from '../../render/page-response.ts';

/**
 * A Markdown page of the site (`/a/b` → pages/a/b.md or pages/a/b/index.md). Drafts and paths with
 * no page pass on (to static files without an extension, then the 404); a page that does not
 * validate is a 503 for this page only (thrown: errors.ts maps it).
 */
export function pageStage(deps: { loadPage: PageLoader; respondWithPage: ReturnType<typeof createPageResponse> }): Stage<SiteRequest> {
  return async (ctx) => {
    const started = performance.now();
    const state = await deps.loadPage(ctx.site, ctx.target.segments);
    // Server-Timing: what loading this site and page cost (a cold load vs. a cache hit), visible in
    // browser dev tools and used by the benchmark for cold-load times.
    ctx.res.setHeader('Server-Timing', `site;dur=${ctx.siteLoadMs.toFixed(3)}, page;dur=${(performance.now() - started).toFixed(3)}`);
    if (state?.kind === 'invalid') throw state.error;
    if (state?.kind !== 'page' || state.page.frontmatter.draft) return undefined;
    return deps.respondWithPage(ctx, state.page);
  };
}
