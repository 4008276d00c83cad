import type { Frontmatter, LayoutName, SiteConfig } from '../sites/schema.ts';

/**
 * Everything the Astro view layer gets for one response, passed as `Astro.locals.view`. The Astro
 * side never reads files, headers or Astro.url: the server entry has already resolved the tenant
 * from its own normalised host, which is how no page can render with another tenant's data.
 */
export interface SiteView {
  id: string;
  name: string;
  description: string;
  locale: string;
  theme: SiteConfig['theme'];
  nav: SiteConfig['nav'];
  footer: string;
  /** scheme://primary-host[:port] */
  origin: string;
  /** site.json robots.index is false: every page says noindex. */
  noindex?: boolean;
  /** Only on members pages: who is signed in, and the token their sign-out form must carry. */
  viewer?: { name: string; csrf: string };
}

/** The sign-in page's state (see session/sessions.ts). */
export interface SignInView {
  csrf: string;
  next: string;
  members: boolean;
  token: boolean;
  error?: string;
  notice?: string;
  email?: string;
  viewer?: { name: string };
}

export interface PageView {
  title: string;
  description: string;
  layout: LayoutName;
  html: string;
  date: string | undefined;
  hero: Frontmatter['hero'];
  cards: Frontmatter['cards'];
}

export type View =
  | { kind: 'page'; status: 200; site: SiteView; page: PageView; canonical: string; stylesheets: string[] }
  | { kind: 'site-not-found'; status: 404; site: SiteView; stylesheets: string[] }
  | { kind: 'sign-in'; status: number; site: SiteView; form: SignInView; stylesheets: string[] }
  | { kind: 'platform-error'; status: 404 | 503 | 500; title: string; message: string; stylesheets: string[] }
  | { kind: 'platform-home'; status: 200; platformDomain: string; sites: PlatformHomeSite[] | undefined; moreSites: number; stylesheets: string[] };

/**
 * One site on the platform home page (the bare PLATFORM_DOMAIN). Only listed in embedded mode,
 * where every site is the operator's own: a shared deployment lists no tenant.
 */
export interface PlatformHomeSite {
  id: string;
  /** The site's home page on its platform subdomain. */
  url: string;
}

export interface ViewLocals {
  view: View;
}
