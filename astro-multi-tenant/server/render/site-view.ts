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

/**
 * The stylesheets a site's pages link: its own built stylesheet, or the shared base one (with one
 * warning per site and process) while its CSS is missing or stale.
 */
export function createSiteStylesheets(deps: { baseStylesheets: readonly string[]; logger: Logger }): (site: Site) => string[] {
  const warned = new Set<string>();
  return (site) => {
    if (site.cssFile) return [`${CSS_PREFIX}${site.id}/${site.cssFile}`];
    if (!warned.has(site.id)) {
      warned.add(site.id);
      deps.logger.warn({ site: site.id, css: site.cssProblem }, `site CSS is ${site.cssProblem}; rendering with the shared base CSS (run npm run css -- ${site.id})`);
    }
    return [...deps.baseStylesheets];
  };
}
