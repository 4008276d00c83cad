import type { Frontmatter, LayoutName, SiteConfig } from '../sites/schema.ts';
import type { BodySegment } from '../sites/page-body.ts';

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

/**
 * A site component loaded by the server (components/component-loader.ts LoadedComponent): the
 * view makes the Astro component with its own compiler runtime, `factory(runtime)`.
 */
export interface ViewComponent {
  factory(runtime: object): unknown;
}

export interface PageView {
  title: string;
  description: string;
  layout: LayoutName;
  /** The body's HTML when it calls no site component; '' when it does (then see `segments`). */
  html: string;
  /** The body as HTML segments and component calls (sites/page-body.ts); shared-components/ContentSegments.astro renders it. */
  segments: BodySegment[];
  /**
   * Every component the segments call, as Astro components (name → component), made by the view
   * (tenant-view.astro) from the View's `components`; absent when the body calls none.
   */
  components?: Readonly<Record<string, unknown>>;
  date: string | undefined;
  hero: Frontmatter['hero'];
  cards: Frontmatter['cards'];
}

export type View =
  | {
      kind: 'page';
      status: 200;
      site: SiteView;
      page: PageView;
      canonical: string;
      stylesheets: string[];
      /** The site's own layouts/<page.layout>.astro, replacing the shared layout with the same props; absent: the shared one. */
      siteLayout?: ViewComponent;
      /** The site components the page calls, loaded by the server before the render; absent when none. */
      components?: Readonly<Record<string, ViewComponent>>;
      /**
       * Set by the view when making a site component or layout threw (its module code failed,
       * a ComponentError): the render then fails, and the server answers this error (503 for this
       * page, the file named in the log) instead of a render failure's 500.
       */
      componentFailure?: unknown;
    }
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
