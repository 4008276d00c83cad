import type { Site } from '../sites/loader.ts';
import type { Logger } from '../log.ts';
import type { SiteView } from './view.ts';

export const CSS_PREFIX = '/_platform/css/';

/** The only files served from the CSS folder: what css/build-css.ts writes (16 hex digits of sha256). */
export const HASHED_STYLESHEET = /^site\.[0-9a-f]{16}\.css$/;

/** What the Astro side gets to know about a site (render/view.ts); `origin` is scheme://primary-host. */
export function siteView(site: Site, origin: string): SiteView {
  const c = site.config;
  return { id: site.id, name: c.name, description: c.description, locale: c.locale, theme: c.theme, nav: c.nav, footer: c.footer, origin, noindex: !c.robots.index };
}

/** Sites warned about one by one per process; past them, one summary line per `summaryMs`. */
const WARN_EACH = 20;
/** Sites remembered as warned (then forgotten all at once: a few may be warned again). */
const WARNED_LIMIT = 10_000;

/**
 * The stylesheets a site's pages link: its own built stylesheet, or the shared base one while its
 * CSS is missing or stale. The first WARN_EACH such sites of a process get a warning each; after
 * that they are counted and summed up in one line at most every `summaryMs` (default a minute):
 * a fresh process passing over 10,000 sites without built CSS wrote 10,000 lines (and a file
 * write each), a visible share of a cold request's cost, to say one thing.
 */
export function createSiteStylesheets(deps: { baseStylesheets: readonly string[]; logger: Logger; summaryMs?: number; now?: () => number }): (site: Site) => string[] {
  const summaryMs = deps.summaryMs ?? 60_000;
  const now = deps.now ?? Date.now;
  const warned = new Set<string>();
  let individually = 0;
  let unreported = 0;
  let lastSummary = -Infinity;
  return (site) => {
    if (site.cssFile) return [`${CSS_PREFIX}${site.id}/${site.cssFile}`];
    if (!warned.has(site.id)) {
      if (warned.size >= WARNED_LIMIT) warned.clear();
      warned.add(site.id);
      if (individually < WARN_EACH) {
        individually++;
        deps.logger.warn({ site: site.id, css: site.cssProblem }, `site CSS is ${site.cssProblem}; rendering with the shared base CSS (run npm run css -- ${site.id})`);
      } else {
        unreported++;
      }
    }
    if (unreported > 0 && now() - lastSummary >= summaryMs) {
      deps.logger.warn({ sites: unreported }, `${unreported} more site(s) have no current CSS and render with the shared base CSS (run npm run css)`);
      unreported = 0;
      lastSummary = now();
    }
    return [...deps.baseStylesheets];
  };
}
