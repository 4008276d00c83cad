import type { SiteRequest, Stage } from '../context.ts';
import { allowEdgeCache, sendText } from '../../http/respond.ts';
import { buildRobots } from '../../sites/robots.ts';
import { buildSitemap, sitemapEntries, type SitemapSources } from '../../sites/sitemap.ts';
import { readPageFrontmatter } from '../../sites/page-frontmatter.ts';

/** How long a built sitemap answers further requests (ms), and how many sites' are kept. */
const SITEMAP_REUSE_MS = 500;
const SITEMAP_REUSE_ENTRIES = 1000;

/**
 * `/robots.txt` and `/sitemap.xml`, generated per site on its primary origin (Astro's sitemap
 * integration only knows build-time routes). Both are the same for every visitor: an edge may keep
 * them for EDGE_CACHE_S, browsers for five minutes.
 */
export function robotsSitemapStage(
  deps: Pick<SitemapSources, 'listRoutes' | 'served'> & {
    /** Frontmatter source; default readPageFrontmatter. The sitemap never renders a page. */
    readFrontmatter?: SitemapSources['readFrontmatter'];
    edgeCacheSeconds: number;
  },
): Stage<SiteRequest> {
  const sources: SitemapSources = { listRoutes: deps.listRoutes, readFrontmatter: deps.readFrontmatter ?? readPageFrontmatter, served: deps.served };
  // One build per site and origin at a time, kept for SITEMAP_REUSE_MS: a sitemap reads every
  // page's frontmatter, so a burst of requests (or a visitor hammering it) shares one pass instead
  // of multiplying it. Short enough that an edit still shows within a second.
  const building = new Map<string, { at: number; xml: Promise<string> }>();
  const sitemapXml = (site: SiteRequest['site'], siteOrigin: string): Promise<string> => {
    const key = `${site.id}\0${site.version}\0${siteOrigin}`;
    const now = performance.now();
    const known = building.get(key);
    if (known && now - known.at < SITEMAP_REUSE_MS) return known.xml;
    if (building.size >= SITEMAP_REUSE_ENTRIES) building.clear();
    const xml = sitemapEntries(site, sources).then((entries) => buildSitemap(siteOrigin, entries));
    building.set(key, { at: now, xml });
    xml.catch(() => building.delete(key));
    return xml;
  };
  return async ({ res, site, siteOrigin, target }) => {
    const { segments } = target;
    if (segments.length !== 1) return undefined;
    if (segments[0] === 'robots.txt') {
      allowEdgeCache(res, deps.edgeCacheSeconds);
      sendText(res, 200, buildRobots(siteOrigin, site.config.robots), { headers: { 'Cache-Control': 'public, max-age=300' } });
      return 'robots';
    }
    if (segments[0] === 'sitemap.xml') {
      const xml = await sitemapXml(site, siteOrigin);
      allowEdgeCache(res, deps.edgeCacheSeconds);
      sendText(res, 200, xml, { type: 'application/xml; charset=utf-8', headers: { 'Cache-Control': 'public, max-age=300' } });
      return 'sitemap';
    }
    return undefined;
  };
}
