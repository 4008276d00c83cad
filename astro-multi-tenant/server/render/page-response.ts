import type { SiteRequest } from '../pipeline/context.ts';
import type { Page } from '../sites/pages.ts';
import type { Renderer } from './astro-renderer.ts';
import type { SiteView, View } from './view.ts';
import type { RenderedPagesFolder } from './rendered-pages-folder.ts';
import { siteView } from './site-view.ts';
import type { Site } from '../sites/loader.ts';
import { memoisedETag, matchesIfNoneMatch, renderKey, type RenderCache } from './render-cache.ts';
import { allowEdgeCache, notModified, redirect } from '../http/respond.ts';
import { routePath } from '../sites/sitemap.ts';
import { SESSION_PREFIX, type Sessions } from '../session/sessions.ts';
import { SESSION_COOKIE_NAMES } from '../session/cookies.ts';
import { SessionStoreUnavailable } from '../session/store.ts';
import type { RouteKind } from '../ops/metrics.ts';
import { siteComponentFailure, type PageComponents } from './page-components.ts';

export interface PageResponseDeps {
  renderer: Renderer;
  stylesheets: (site: Site) => string[];
  sessions: Sessions | undefined;
  /** Rendered HTML of anonymous pages; undefined renders every time. */
  renderCache: RenderCache | undefined;
  /** The same on disk, under the in-memory cache (rendered-pages-folder.ts): read on its misses, written on renders. */
  renderedPages?: RenderedPagesFolder;
  /** Identifies the build (Astro bundle + base CSS) in page ETags, so a deploy changes them all. */
  buildId: string;
  edgeCacheSeconds: number;
  /**
   * Asked before every render of a site page (never for a 304 or a render-cache hit): waits for
   * the site's turn and returns the function to call when the render is done, or throws a
   * ThrottledError (429) when the site's plan sheds it (plans/render-budget.ts). Undefined: no gate.
   */
  renderGate?: (siteId: string) => Promise<() => void>;
  /**
   * Asked first, for every answer of a page (304s and render-cache hits too): throws a
   * ContentError (503) when the page is over its plan's size or beyond its page count
   * (plans/content-gate.ts). Undefined: no plan limits.
   */
  checkPage?: (site: Site, page: Page) => void;
  /**
   * The page's own site components and layout (render/page-components.ts), resolved before the
   * ETag (their versions are part of it) and the render. Throws a 503 error (plan, unknown name,
   * compile error). Undefined: pages calling components answer as if no site had any.
   */
  pageComponents?: (site: Site, page: Page) => Promise<PageComponents>;
}

/**
 * Answers with one page of a site. Members pages are personal: a signed-in visitor gets them
 * rendered and never stored anywhere; anyone else is sent to sign in (303). Anonymous pages render
 * the same HTML for the same inputs, so their ETag is known before rendering: a revalidation costs
 * no render, and the render cache (then nginx) can answer.
 *
 * @throws SessionStoreUnavailable (503) when a members page cannot learn who is signed in.
 */
export function createPageResponse(deps: PageResponseDeps) {
  const gated = async <T>(siteId: string, render: () => Promise<T>): Promise<T> => {
    if (!deps.renderGate) return render();
    const done = await deps.renderGate(siteId);
    try {
      return await render();
    } finally {
      done();
    }
  };
  /**
   * A render that failed in a site component answers with that component's error (503 for this
   * page): one that could not be made (its module code threw), or one that threw while rendering.
   */
  const componentFailed = (view: View, site: Site, page: Page) => (error: unknown) => {
    if (view.kind === 'page' && view.componentFailure) throw view.componentFailure;
    throw siteComponentFailure(error, site.id, page) ?? error;
  };
  return async function respondWithPage(ctx: SiteRequest, page: Page): Promise<RouteKind> {
    const { req, res, site, siteOrigin, target } = ctx;
    const { frontmatter, html, layout, segments } = page;
    deps.checkPage?.(site, page);
    const own: PageComponents = deps.pageComponents ? await deps.pageComponents(site, page) : { version: '' };
    let viewer: SiteView['viewer'];
    if (frontmatter.access === 'members') {
      res.setHeader('Cache-Control', 'private, no-store');
      const who = await ctx.viewer();
      if (who.kind === 'unavailable') throw new SessionStoreUnavailable('members page', new Error('store unavailable'));
      if (who.kind === 'anonymous') {
        redirect(res, 303, `${SESSION_PREFIX}sign-in?next=${encodeURIComponent(routePath(target.segments) + target.search)}`, { cache: 'private' });
        return 'redirect';
      }
      viewer = { name: who.session.name, csrf: deps.sessions!.csrfFor(req, res, site.id, ctx.proto, who.session.id) };
    }
    const view: View = {
      kind: 'page',
      status: 200,
      site: { ...siteView(site, siteOrigin), viewer },
      page: { title: frontmatter.title, description: frontmatter.description, layout, html, segments, date: frontmatter.date, hero: frontmatter.hero, cards: frontmatter.cards },
      canonical: siteOrigin + routePath(target.segments),
      stylesheets: own.stylesheet ? [...deps.stylesheets(site), own.stylesheet] : deps.stylesheets(site),
      ...(own.siteLayout ? { siteLayout: own.siteLayout } : {}),
      ...(own.components ? { components: own.components } : {}),
    };
    if (viewer) {
      await gated(site.id, () => deps.renderer.render(req, res, view)).catch(componentFailed(view, site, page));
      return 'page';
    }

    // The year is an input too: the shared footer prints it, and a page kept across New Year (in
    // memory, or on disk across restarts) must not keep the old one.
    const etag = memoisedETag(page, [deps.buildId, site.version, page.version, siteOrigin, view.stylesheets.join(' '), own.version, currentYear()]);
    allowEdgeCache(res, deps.edgeCacheSeconds);
    res.setHeader('Cache-Control', 'public, max-age=0, must-revalidate');
    res.setHeader('ETag', etag);
    if (matchesIfNoneMatch(joined(req.headers['if-none-match']), etag)) {
      notModified(res);
      return 'page';
    }
    const cache = deps.renderCache && !hasSessionCookie(req.headers.cookie) ? deps.renderCache : undefined;
    const key = renderKey(site.id, siteOrigin, routePath(target.segments));
    let cached = cache?.get(key, etag);
    let from = 'hit';
    if (!cached && cache && deps.renderedPages) {
      // Rendered before by a worker of this machine, this process or an earlier one (same build,
      // code and settings: the file's name says so), under this very ETag.
      cached = await deps.renderedPages.read(key, etag);
      if (cached) {
        from = 'disk';
        cache.set(key, etag, cached);
      }
    }
    if (cached) {
      res.statusCode = 200;
      res.setHeader('Content-Type', 'text/html; charset=utf-8');
      res.setHeader('Content-Length', cached.length);
      res.setHeader('X-Render-Cache', from);
      res.end(req.method === 'HEAD' ? undefined : cached);
      return 'page';
    }
    if (!cache || !deps.renderer.renderCaptured || req.method === 'HEAD') {
      await gated(site.id, () => deps.renderer.render(req, res, view)).catch(componentFailed(view, site, page));
      return 'page';
    }
    res.setHeader('X-Render-Cache', 'miss');
    const body = await gated(site.id, () => deps.renderer.renderCaptured!(req, res, view)).catch(componentFailed(view, site, page));
    if (res.statusCode === 200 && body.length > 0) {
      cache.set(key, etag, body);
      deps.renderedPages?.write(key, etag, body);
    }
    return 'page';
  };
}

/** The year in the process's time zone, as the shared footer renders it. */
function currentYear(): string {
  return String(new Date().getFullYear());
}

function joined(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value.join(', ') : value;
}

/** Signed-in visitors never get (or fill) the shared render cache, whatever page they ask for. */
function hasSessionCookie(cookie: string | undefined): boolean {
  return cookie !== undefined && SESSION_COOKIE_NAMES.some((name) => cookie.includes(`${name}=`));
}
