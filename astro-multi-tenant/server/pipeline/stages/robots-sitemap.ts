import type { SiteRequest, Stage } from '../context.ts';
import { allowEdgeCache, sendText } from '../../http/respond.ts';
import { buildRobots } from '../../sites/robots.ts';
import { buildSitemap, sitemapEntries, type SitemapSources } from '../../sites/sitemap.ts';
import { readPageFrontmatter } from '../../sites/page-frontmatter.ts';

/**
 * `/robots.txt` and `/sitemap.xml`, generated per site on its primary origin (Astro's sitemap
 * integration only knows build-time routes). Both are the same for every visitor: an edge may keep
 * them for EDGE_CACHE_S, browsers for five minutes.
 */
export function robotsSitemapStage(
  deps: Pick<SitemapSources, 'listRoutes'> & {
    /** Frontmatter source; default readPageFrontmatter. The sitemap never renders a page. */
    readFrontmatter?: SitemapSources['readFrontmatter'];
    edgeCacheSeconds: number;
  },
): Stage<SiteRequest> {
  const sources: SitemapSources = { listRoutes: deps.listRoutes, readFrontmatter: deps.readFrontmatter ?? readPageFrontmatter };
  return async ({ res, site, siteOrigin, target }) => {
    const { segments } = target;
    if (segments.length !== 1) return undefined;
    if (segments[0] === 'robots.txt') {
      allowEdgeCache(res, deps.edgeCacheSeconds);
      sendText(res, 200, buildRobots(siteOrigin, site.config.robots), { headers: { 'Cache-Control': 'public, max-age=300' } });
      return 'robots';
    }
    if (segments[0] === 'sitemap.xml') {
      const xml = buildSitemap(siteOrigin, await sitemapEntries(site, sources));
      allowEdgeCache(res, deps.edgeCacheSeconds);
      sendText(res, 200, xml, { type: 'application/xml; charset=utf-8', headers: { 'Cache-Control': 'public, max-age=300' } });
      return 'sitemap';
    }
    return undefined;
  };
}
