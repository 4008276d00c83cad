import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TLSSocket } from 'node:tls';
import { PlatformError } from './errors.ts';
import { formatAuthority, normalizeHost } from './tenant/normalize-host.ts';
import { effectiveOrigin, type TrustedProxies } from './tenant/trusted-proxies.ts';
import type { SiteRegistry } from './tenant/registry.ts';
import { parseRequestTarget, isSafeSegment } from './http/request-path.ts';
import { serveStaticFile } from './http/static-file.ts';
import type { Site, SiteLoader, SiteState } from './sites/loader.ts';
import type { HostResolution } from './tenant/resolve-host.ts';
import { listPageRoutes, type PageLoader } from './sites/pages.ts';
import { buildSitemap, routePath } from './sites/sitemap.ts';
import { buildRobots } from './sites/robots.ts';
import type { Renderer } from './render/astro-renderer.ts';
import type { SiteView, View } from './render/view.ts';
import type { Logger } from './log.ts';
import type { Metrics, RouteKind } from './ops/metrics.ts';
import type { SiteTraffic } from './ops/site-traffic.ts';
import { SESSION_PREFIX, type Sessions, type SignInForm } from './session/sessions.ts';
import { memoisedETag, matchesIfNoneMatch, renderKey, type RenderCache } from './render/render-cache.ts';
import { SESSION_COOKIE_NAMES } from './session/cookies.ts';

export interface AppDeps {
  registry: SiteRegistry;
  loadSite: SiteLoader;
  loadPage: PageLoader;
  renderer: Renderer;
  trustedProxies: TrustedProxies;
  cssDir: string;
  /** File name of the shared base stylesheet under cssDir/_base, if built. */
  baseCssFile: string | undefined;
  staticMaxAge: number;
  logger: Logger;
  /** Health, readiness, metrics and status: answered before any tenant routing. */
  platformRoutes?: (req: IncomingMessage, res: ServerResponse) => Promise<RouteKind | undefined>;
  metrics?: Metrics;
  traffic?: SiteTraffic;
  /** Sign-in and members pages; without it every page is public and session endpoints 404. */
  sessions?: Sessions;
  /**
   * Seconds an edge cache (nginx) may keep anonymous pages, sitemaps and redirects, sent as
   * X-Accel-Expires so browsers still revalidate every time. 0 = tell the edge nothing.
   */
  edgeCacheSeconds?: number;
  /** Rendered HTML of anonymous pages; undefined renders every time. */
  renderCache?: RenderCache;
  /** Identifies the build (Astro bundle + base CSS) in page ETags, so a deploy changes them all. */
  buildId?: string;
}

/** Everything under this prefix belongs to the platform, not to any tenant. */
export const PLATFORM_PREFIX = '/_platform/';
const CSS_PREFIX = '/_platform/css/';
const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;
const HAS_EXTENSION = /\.[A-Za-z0-9]{1,10}$/;

interface RequestContext {
  id: string;
  site: string | undefined;
  route: RouteKind;
}

export function createApp(deps: AppDeps) {
  const { logger } = deps;
  const warnedCss = new Set<string>();

  function baseStylesheets(): string[] {
    return deps.baseCssFile ? [`${CSS_PREFIX}_base/${deps.baseCssFile}`] : [];
  }

  function stylesheetsFor(site: Site): string[] {
    if (site.cssFile) return [`${CSS_PREFIX}${site.id}/${site.cssFile}`];
    if (!warnedCss.has(site.id)) {
      warnedCss.add(site.id);
      logger.warn({ site: site.id, css: site.cssProblem }, `site CSS is ${site.cssProblem}; rendering with the shared base CSS (run npm run css -- ${site.id})`);
    }
    return baseStylesheets();
  }

  function siteView(site: Site, origin: string): SiteView {
    const c = site.config;
    return { id: site.id, name: c.name, description: c.description, locale: c.locale, theme: c.theme, nav: c.nav, footer: c.footer, origin, noindex: !c.robots.index };
  }

  function sendText(res: ServerResponse, status: number, body: string, type = 'text/plain; charset=utf-8', headers: Record<string, string> = {}) {
    res.statusCode = status;
    res.setHeader('Content-Type', type);
    res.setHeader('Content-Length', Buffer.byteLength(body));
    for (const [k, v] of Object.entries(headers)) res.setHeader(k, v);
    res.end(res.req?.method === 'HEAD' ? undefined : body);
  }

  async function platformError(req: IncomingMessage, res: ServerResponse, status: 404 | 503 | 500, title: string, message: string) {
    res.setHeader('Cache-Control', 'no-store');
    await deps.renderer.render(req, res, { kind: 'platform-error', status, title, message, stylesheets: baseStylesheets() });
  }

  // Must come before Cache-Control: nginx before 1.23 reads the two in header order, and a
  // max-age=0 seen first makes the response uncacheable whatever X-Accel-Expires says.
  function edgeCacheable(res: ServerResponse) {
    if (deps.edgeCacheSeconds) res.setHeader('X-Accel-Expires', String(deps.edgeCacheSeconds));
  }

  function redirect(res: ServerResponse, location: string) {
    res.statusCode = 301;
    edgeCacheable(res);
    res.setHeader('Location', location);
    res.setHeader('Cache-Control', 'public, max-age=3600');
    res.end();
  }

  async function handle(req: IncomingMessage, res: ServerResponse, ctx: RequestContext): Promise<void> {
    const url = req.url ?? '/';

    const platformRoute = await deps.platformRoutes?.(req, res);
    if (platformRoute) {
      ctx.route = platformRoute;
      return;
    }

    const sessionPost = req.method === 'POST' && url.startsWith(SESSION_PREFIX);
    if (req.method !== 'GET' && req.method !== 'HEAD' && !sessionPost) {
      ctx.route = 'method_not_allowed';
      return sendText(res, 405, 'Method not allowed\n', undefined, { Allow: 'GET, HEAD' });
    }

    const origin = effectiveOrigin(req.headers, req.socket.remoteAddress, Boolean((req.socket as TLSSocket).encrypted), deps.trustedProxies);
    let hostname: string;
    let port: number | undefined;
    try {
      ({ hostname, port } = normalizeHost(origin.rawHost));
    } catch (error) {
      const reason = error instanceof PlatformError ? error.message : 'invalid Host header';
      logger.info({ reqId: ctx.id, host: origin.rawHost?.slice(0, 200), code: (error as PlatformError).code }, 'rejected host');
      ctx.route = 'bad_request';
      return sendText(res, 400, `Bad Request: ${reason}\n`, undefined, { 'Cache-Control': 'no-store' });
    }

    let target;
    try {
      target = parseRequestTarget(url);
    } catch (error) {
      const code = (error as PlatformError).code;
      ctx.route = 'bad_request';
      if (code === 'PATH_MALFORMED') return sendText(res, 400, `Bad Request: ${(error as Error).message}\n`);
      return platformError(req, res, 404, 'Not found', 'There is nothing at this address.');
    }

    let resolution = await deps.registry.resolve(hostname);
    const siteStarted = performance.now();
    let loaded = resolution.kind === 'unknown' ? null : await deps.loadSite(resolution.siteId);
    const siteMs = performance.now() - siteStarted;
    // The index is a hint; the site's current config is the truth. If they disagree (a domain
    // moved or was removed), rescan once and resolve again.
    if (isStale(resolution, loaded, hostname)) {
      await deps.registry.requestRescan();
      resolution = await deps.registry.resolve(hostname);
      loaded = resolution.kind === 'unknown' ? null : await deps.loadSite(resolution.siteId);
    }
    if (resolution.kind === 'unknown' || loaded === null) {
      ctx.route = 'unknown_host';
      return platformError(req, res, 404, 'Site not found', 'No site is configured for this address.');
    }
    ctx.site = resolution.siteId;
    if (resolution.kind === 'redirect') {
      ctx.route = 'redirect';
      return redirect(res, `${origin.proto}://${formatAuthority(resolution.toHost, port)}${target.pathname}${target.search}`);
    }
    if (!loaded.ok) {
      logger.error({ reqId: ctx.id, site: loaded.id, code: loaded.error.code, issues: loaded.error.issues }, 'site config invalid; answering 503');
      res.setHeader('Retry-After', '30');
      ctx.route = 'unavailable';
      return platformError(req, res, 503, 'Site unavailable', 'This site is temporarily unavailable. Please try again later.');
    }
    const site = loaded.site;
    const primary = site.config.domains[0] ?? hostname;
    const siteOrigin = `${origin.proto}://${formatAuthority(primary, port)}`;
    const { segments } = target;

    if (target.pathname.startsWith(SESSION_PREFIX) && deps.sessions) {
      const action = target.pathname.slice(SESSION_PREFIX.length);
      const authority = formatAuthority(hostname, port);
      const render = (status: number, form: SignInForm) =>
        deps.renderer.render(req, res, { kind: 'sign-in', status, site: siteView(site, siteOrigin), form, stylesheets: stylesheetsFor(site) });
      ctx.route = await deps.sessions.handle(req, res, site, { proto: origin.proto, authority }, action, new URLSearchParams(target.search), render);
      return;
    }
    if (sessionPost) {
      ctx.route = 'method_not_allowed';
      return sendText(res, 405, 'Method not allowed\n', undefined, { Allow: 'GET, HEAD' });
    }

    ctx.route = 'css';
    if (target.pathname.startsWith(CSS_PREFIX)) return serveCss(req, res, site, segments);
    ctx.route = 'platform';
    if (target.pathname.startsWith(PLATFORM_PREFIX)) return platformError(req, res, 404, 'Not found', 'There is nothing at this address.');

    if (segments.length === 1 && segments[0] === 'robots.txt') {
      ctx.route = 'robots';
      edgeCacheable(res);
      return sendText(res, 200, buildRobots(siteOrigin, site.config.robots), 'text/plain; charset=utf-8', { 'Cache-Control': 'public, max-age=300' });
    }
    if (segments.length === 1 && segments[0] === 'sitemap.xml') {
      ctx.route = 'sitemap';
      edgeCacheable(res);
      const routes = [];
      // `a.md` and `a/index.md` are both listed but only one is served at /a: list each URL once.
      const listed = new Set<string>();
      // A site that asks not to be indexed lists nothing; disallowed paths and members pages
      // (which a crawler cannot read) are left out too.
      const { robots } = site.config;
      const disallowed = (path: string) => robots.disallow.some((prefix) => path === prefix || path.startsWith(prefix.endsWith('/') ? prefix : `${prefix}/`));
      for (const route of robots.index ? await listPageRoutes(site) : []) {
        const path = routePath(route.segments);
        if (listed.has(path) || disallowed(path)) continue;
        listed.add(path);
        const state = await deps.loadPage(site, route.segments);
        if (state?.kind === 'page' && !state.page.frontmatter.draft && state.page.frontmatter.access === 'public') routes.push(route.segments);
      }
      return sendText(res, 200, buildSitemap(siteOrigin, routes), 'application/xml; charset=utf-8', { 'Cache-Control': 'public, max-age=300' });
    }
    ctx.route = 'redirect';
    if (target.trailingSlash) return redirect(res, `${routePath(segments)}${target.search}`);

    const publicDir = () => join(site.dir, 'public');
    const staticFirst = HAS_EXTENSION.test(segments.at(-1) ?? '');
    ctx.route = 'static';
    if (staticFirst && (await serveStaticFile(req, res, publicDir(), segments, { maxAgeSeconds: deps.staticMaxAge }))) return;

    const pageStarted = performance.now();
    const state = await deps.loadPage(site, segments);
    // Server-Timing: what loading this site and page cost (a cold load vs. a cache hit), visible in
    // browser dev tools and used by the benchmark for cold-load times.
    res.setHeader('Server-Timing', `site;dur=${siteMs.toFixed(3)}, page;dur=${(performance.now() - pageStarted).toFixed(3)}`);
    if (state?.kind === 'invalid') {
      logger.error({ reqId: ctx.id, site: site.id, code: state.error.code, issues: state.error.issues }, 'page invalid; answering 503');
      res.setHeader('Retry-After', '30');
      ctx.route = 'unavailable';
      return platformError(req, res, 503, 'Page unavailable', 'This page is temporarily unavailable. Please try again later.');
    }
    if (state?.kind === 'page' && !state.page.frontmatter.draft) {
      const { frontmatter, html, layout } = state.page;
      let viewer: SiteView['viewer'];
      if (frontmatter.access === 'members') {
        // Members pages are personal: never stored by nginx, a browser cache or a render cache.
        res.setHeader('Cache-Control', 'private, no-store');
        const who = deps.sessions ? await deps.sessions.viewer(req, site, { proto: origin.proto, authority: formatAuthority(hostname, port) }) : ({ kind: 'anonymous' } as const);
        if (who.kind === 'unavailable') {
          res.setHeader('Retry-After', '30');
          ctx.route = 'unavailable';
          return platformError(req, res, 503, 'Members area unavailable', 'Signing in is temporarily unavailable, so members-only pages cannot be shown. Please try again in a minute.');
        }
        if (who.kind === 'anonymous') {
          ctx.route = 'redirect';
          res.statusCode = 303;
          res.setHeader('Location', `${SESSION_PREFIX}sign-in?next=${encodeURIComponent(routePath(segments) + target.search)}`);
          res.end();
          return;
        }
        viewer = { name: who.session.name, csrf: deps.sessions!.csrfFor(req, res, origin.proto) };
      }
      const view: View = {
        kind: 'page',
        status: 200,
        site: { ...siteView(site, siteOrigin), viewer },
        page: { title: frontmatter.title, description: frontmatter.description, layout, html, date: frontmatter.date, hero: frontmatter.hero, cards: frontmatter.cards },
        canonical: siteOrigin + routePath(segments),
        stylesheets: stylesheetsFor(site),
      };
      ctx.route = 'page';
      if (viewer) return deps.renderer.render(req, res, view);

      // Anonymous page: the same inputs always render the same HTML, so the ETag is known before
      // rendering, a revalidation costs no render at all, and the render cache can answer.
      const etag = memoisedETag(state.page, [deps.buildId ?? '', site.version, state.page.version, siteOrigin, view.stylesheets.join(' ')]);
      edgeCacheable(res);
      res.setHeader('Cache-Control', 'public, max-age=0, must-revalidate');
      res.setHeader('ETag', etag);
      if (matchesIfNoneMatch(header(req.headers['if-none-match']), etag)) {
        res.statusCode = 304;
        res.end();
        return;
      }
      const cache = deps.renderCache && !hasSessionCookie(req.headers.cookie) ? deps.renderCache : undefined;
      const key = renderKey(site.id, siteOrigin, routePath(segments));
      const cached = cache?.get(key, etag);
      if (cached) {
        res.statusCode = 200;
        res.setHeader('Content-Type', 'text/html');
        res.setHeader('Content-Length', cached.length);
        res.setHeader('X-Render-Cache', 'hit');
        res.end(req.method === 'HEAD' ? undefined : cached);
        return;
      }
      if (!cache || !deps.renderer.renderCaptured || req.method === 'HEAD') return deps.renderer.render(req, res, view);
      res.setHeader('X-Render-Cache', 'miss');
      const body = await deps.renderer.renderCaptured(req, res, view);
      if (res.statusCode === 200 && body.length > 0) cache.set(key, etag, body);
      return;
    }
    ctx.route = 'static';
    if (!staticFirst && (await serveStaticFile(req, res, publicDir(), segments, { maxAgeSeconds: deps.staticMaxAge }))) return;

    res.setHeader('Cache-Control', 'no-store');
    ctx.route = 'site_not_found';
    return deps.renderer.render(req, res, { kind: 'site-not-found', status: 404, site: siteView(site, siteOrigin), stylesheets: stylesheetsFor(site) });
  }

  /** Built stylesheets: the shared base on every host, a site's own only on that site's hosts. */
  async function serveCss(req: IncomingMessage, res: ServerResponse, site: Site, segments: string[]) {
    const [, , owner, file] = segments;
    if (segments.length === 4 && file && isSafeSegment(file) && (owner === '_base' || owner === site.id)) {
      if (await serveStaticFile(req, res, join(deps.cssDir, owner!), [file], { maxAgeSeconds: 0, immutable: true })) return;
    }
    return platformError(req, res, 404, 'Not found', 'There is nothing at this address.');
  }

  return async function requestListener(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const started = process.hrtime.bigint();
    const incoming = req.headers['x-request-id'];
    const ctx: RequestContext = { id: typeof incoming === 'string' && REQUEST_ID.test(incoming) ? incoming : randomUUID(), site: undefined, route: 'error' };
    res.setHeader('X-Request-Id', ctx.id);
    try {
      await handle(req, res, ctx);
    } catch (error) {
      ctx.route = 'error';
      logger.error({ reqId: ctx.id, site: ctx.site, err: error }, 'request failed');
      if (!res.headersSent) {
        res.removeHeader('Cache-Control');
        sendText(res, 500, 'Internal Server Error\n', undefined, { 'Cache-Control': 'no-store' });
      } else {
        res.destroy();
      }
    } finally {
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      const status = res.statusCode;
      deps.metrics?.observeRequest({ method: req.method, status, route: ctx.route, site: ctx.site, seconds: ms / 1000 });
      if (ctx.site) deps.traffic?.record(ctx.site, status >= 500);
      // Probes and scrapes every few seconds would drown the access log; they log at debug.
      const level = ctx.route === 'health' || ctx.route === 'metrics' ? 'debug' : 'info';
      if (logger.isLevelEnabled(level)) logger[level]({ reqId: ctx.id, site: ctx.site, method: req.method, path: req.url?.slice(0, 300), status, route: ctx.route, ms: Math.round(ms * 100) / 100 }, 'request');
    }
  };
}

function header(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value.join(', ') : value;
}

/** Signed-in visitors never get (or fill) the shared render cache, whatever page they ask for. */
function hasSessionCookie(cookie: string | undefined): boolean {
  return cookie !== undefined && SESSION_COOKIE_NAMES.some((name) => cookie.includes(`${name}=`));
}

/** True when the index sent this host to a site whose current config no longer claims it. */
function isStale(resolution: HostResolution, loaded: SiteState | null, hostname: string): boolean {
  if (resolution.kind === 'unknown') return false;
  if (loaded === null) return true;
  if (!loaded.ok || (resolution.kind === 'site' && resolution.via === 'platform')) return false;
  const { domains, aliases } = loaded.site.config;
  return !domains.includes(hostname) && !aliases.includes(hostname);
}
