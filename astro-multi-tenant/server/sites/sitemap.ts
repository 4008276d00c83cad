import type { Site } from './loader.ts';
import { pageCandidates, type PageRoute } from './pages.ts';
import type { FrontmatterReader } from './page-frontmatter.ts';

/** One URL of a sitemap: its path segments and, when known, when it last changed. */
export interface SitemapEntry {
  segments: readonly string[];
  /** W3C datetime (YYYY-MM-DD or a full ISO 8601 time), sitemaps.org `<lastmod>`. */
  lastmod?: string;
}

export interface SitemapSources {
  /** Every page file of a site with its route (sites/pages.ts listPageRoutes). */
  listRoutes: (site: Site) => Promise<PageRoute[]>;
  /** One page file's frontmatter (page-frontmatter.ts readPageFrontmatter): never its rendered body. */
  readFrontmatter: FrontmatterReader;
  /**
   * Whether a page file is served at all; default: every one. The plan's page count
   * (plans/content-gate.ts beyondPageCount) answers 503 for pages beyond it, so they are left out.
   */
  served?: (site: Site, route: PageRoute) => boolean;
}

/**
 * The pages a site's sitemap lists, in route order. Left out: everything when site.json says
 * `robots.index: false`; drafts; pages whose frontmatter does not validate; members pages (a
 * crawler cannot read them); paths under a `robots.disallow` prefix; and the second file of a
 * route (`a.md` and `a/index.md` are both pages but only the first is served at /a, pageCandidates);
 * and pages `sources.served` says are not served (beyond the plan's page count).
 * `lastmod` is the page's `date` frontmatter, else its file's modification time: search engines
 * use it to schedule crawls.
 *
 * Built from frontmatter alone, never from rendered pages: a page whose body cannot be rendered
 * (too costly, refused) is still listed, and the sitemap costs one read and one YAML parse per
 * page however hostile a body is. Listing it is right: the sitemap says what exists, and a
 * crawler that fetches the page gets its 503.
 */
export async function sitemapEntries(site: Site, sources: SitemapSources): Promise<SitemapEntry[]> {
  const { robots } = site.config;
  if (!robots.index) return [];
  const disallowed = (path: string) => robots.disallow.some((prefix) => path === prefix || path.startsWith(prefix.endsWith('/') ? prefix : `${prefix}/`));
  const routes = await sources.listRoutes(site);
  const filesByPath = new Map<string, Set<string>>();
  for (const route of routes) {
    const path = routePath(route.segments);
    filesByPath.set(path, (filesByPath.get(path) ?? new Set()).add(route.file));
  }
  const entries: SitemapEntry[] = [];
  for (const route of routes) {
    const path = routePath(route.segments);
    if (disallowed(path)) continue;
    // Only the file the route serves: the first candidate that exists.
    if (pageCandidates(route.segments).find((candidate) => filesByPath.get(path)!.has(candidate)) !== route.file) continue;
    if (sources.served && !sources.served(site, route)) continue;
    const read = await sources.readFrontmatter(site, route);
    if (read === null) continue;
    const { frontmatter, modifiedMs } = read;
    if (frontmatter.draft || frontmatter.access !== 'public') continue;
    entries.push({ segments: route.segments, lastmod: frontmatter.date ?? (modifiedMs > 0 ? new Date(modifiedMs).toISOString() : undefined) });
  }
  return entries;
}

/** sitemap.xml (sitemaps.org 0.9) for one site; `origin` is scheme://primary-host. */
export function buildSitemap(origin: string, entries: readonly SitemapEntry[]): string {
  const urls = entries
    .map(({ segments, lastmod }) => `  <url><loc>${escapeXml(origin + routePath(segments))}</loc>${lastmod ? `<lastmod>${escapeXml(lastmod)}</lastmod>` : ''}</url>`)
    .join('\n');
  return `<?xml version="1.0" encoding="UTF-8"?>\n<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">\n${urls}\n</urlset>\n`;
}

export function routePath(segments: readonly string[]): string {
  return '/' + segments.map(encodeURIComponent).join('/');
}

function escapeXml(text: string): string {
  return text.replace(/[<>&'"]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', "'": '&apos;', '"': '&quot;' })[c]!);
}
