import type { RenderedPagesFolder } from '../render/rendered-pages-folder.ts';
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Exchange, HostedRequest, SiteRequest } from './context.ts';
import { refine, sequence } from './compose.ts';
import { createExchange } from './exchange.ts';
import { answerError } from './error-response.ts';
import { asPlatformError } from '../errors.ts';
import { createPlatformPages } from '../http/respond.ts';
import { createPageResponse } from '../render/page-response.ts';
import { createSiteStylesheets, CSS_PREFIX } from '../render/site-view.ts';
import { listPageRoutes, type PageLoader } from '../sites/pages.ts';
import type { Site } from '../sites/loader.ts';
import type { Renderer } from '../render/astro-renderer.ts';
import type { RenderCache } from '../render/render-cache.ts';
import type { Logger } from '../log.ts';
import type { Metrics, RouteKind } from '../ops/metrics.ts';
import type { SiteTraffic } from '../ops/site-traffic.ts';
import type { Sessions } from '../session/sessions.ts';
import type { TenantResolution } from '../tenant/tenant-resolver.ts';
import type { TrustedProxies } from '../tenant/trusted-proxies.ts';
import { messageChecksStage } from './stages/message-checks.ts';
import { platformRoutesStage, type PlatformRoutes } from './stages/platform-routes.ts';
import { platformAssetsStage } from './stages/platform-assets.ts';
import { methodPolicyStage } from './stages/method-policy.ts';
import { hostStage } from './stages/host.ts';
import { acmeChallengeStage } from './stages/acme-challenge.ts';
import { platformHomeStage } from './stages/platform-home.ts';
import { tenantStage } from './stages/tenant.ts';
import { sessionEndpointsStage } from './stages/session-endpoints.ts';
import { cssStage } from './stages/css.ts';
import { platformPathsStage } from './stages/platform-paths.ts';
import { wellKnownStage } from './stages/well-known.ts';
import { robotsSitemapStage } from './stages/robots-sitemap.ts';
import { trailingSlashStage } from './stages/trailing-slash.ts';
import { staticFilesStage } from './stages/static-files.ts';
import { pageStage } from './stages/page.ts';
import { faviconStage } from './stages/favicon.ts';
import { notFoundStage } from './stages/not-found.ts';
import { requestLimitStage } from './stages/request-limit.ts';
import { createFairness, type Fairness } from '../plans/fairness.ts';
import type { ChallengeRecord } from '../tls/certificate-store.ts';
import type { RefusalPacer } from './refusal-pacer.ts';
import type { ComponentLoader } from '../components/component-loader.ts';
import type { ComponentStylesheets } from '../css/component-stylesheet.ts';
import { createPageComponents } from '../render/page-components.ts';

export interface PipelineDeps {
  /** Host → the tenant serving it now (tenant/tenant-resolver.ts). */
  resolveTenant: (hostname: string) => Promise<TenantResolution>;
  loadPage: PageLoader;
  renderer: Renderer;
  trustedProxies: TrustedProxies;
  platformDomain: string;
  /** Site ids for the platform home page in embedded mode; undefined lists none. */
  listSites?: () => readonly string[];
  /** Whether a request comes from an operator (ADMIN_ALLOW or the admin token); default: never. */
  isAdmin?: (req: IncomingMessage) => boolean;
  cssDir: string;
  /** File name of the shared base stylesheet under cssDir/_base, if built. */
  baseCssFile: string | undefined;
  /** Cache-Control max-age (seconds) of public/ files whose names carry no content hash. */
  staticMaxAge: number;
  logger: Logger;
  /** Health, readiness, metrics and status: answered before any tenant routing. */
  platformRoutes?: PlatformRoutes;
  metrics?: Metrics;
  traffic?: SiteTraffic;
  /** Sign-in and members pages; without it every page is public and session endpoints 404. */
  sessions?: Sessions;
  /** Seconds an edge cache (nginx) may keep anonymous pages, sitemaps and redirects. 0 = none. */
  edgeCacheSeconds?: number;
  /** Rendered HTML of anonymous pages; undefined renders every time. */
  renderCache?: RenderCache;
  /** Rendered pages on disk, under `renderCache` (render/rendered-pages-folder.ts); undefined: none. */
  renderedPages?: RenderedPagesFolder;
  /** Identifies the build (Astro bundle + base CSS) in page ETags, so a deploy changes them all. */
  buildId?: string;
  /** Plans and limits (plans/fairness.ts); undefined: every site on the built-in default, counted in this process. */
  fairness?: Fairness;
  /** Pending ACME HTTP-01 answers from the shared store (tls/); undefined when ACME is off. */
  getAcmeChallenge?: (token: string) => Promise<ChallengeRecord | undefined>;
  /** Whether a site lists the host (memory only): ACME tokens on other hosts share a small lookup budget. */
  isListedHost?: (hostname: string) => boolean;
  /** Delays refusals (unknown hosts, plan 429s) while the worker is busy; undefined: answered at once. */
  refusalPacer?: RefusalPacer;
  /** Sites' own components and layouts (issue 15); undefined: none are loaded, and pages using them answer 503. */
  siteComponents?: { loader: ComponentLoader; stylesheets: ComponentStylesheets; checkIntervalMs: number };
}

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/**
 * The request pipeline: one context per request and an ordered list of stages (one file each in
 * stages/). A stage answers, and so decides the route kind, or passes the request on. The host
 * and tenant stages refine the context, so the site stages after them always have a site.
 * Errors thrown by any stage are answered in one place (error-response.ts, via errors.ts).
 *
 * Returns a node:http request listener that never rejects.
 */
export function createRequestPipeline(deps: PipelineDeps) {
  const { logger } = deps;
  const edgeCacheSeconds = deps.edgeCacheSeconds ?? 0;
  const staticMaxAgeSeconds = deps.staticMaxAge;
  const baseStylesheets = deps.baseCssFile ? [`${CSS_PREFIX}_base/${deps.baseCssFile}`] : [];
  const pages = createPlatformPages({ renderer: deps.renderer, baseStylesheets });
  const stylesheets = createSiteStylesheets({ baseStylesheets, logger });
  const notFound = { renderer: deps.renderer, stylesheets };

  const fairness = deps.fairness ?? createFairness();
  const pace = deps.refusalPacer ? () => deps.refusalPacer!.pace() : undefined;
  const own = deps.siteComponents;
  const pageComponents = createPageComponents({ loader: own?.loader, stylesheets: own?.stylesheets, planFor: (id) => fairness.plans().planFor(id), checkIntervalMs: own?.checkIntervalMs ?? 500 });
  // Only a site whose plan allows components gets their stylesheet: making it compiles them all.
  const componentCss = own ? (site: Site, file: string) => (fairness.plans().planFor(site.id).limits.components ? own.stylesheets.read({ id: site.id, dir: site.dir }, file) : Promise.resolve(undefined)) : undefined;
  const siteStages = sequence<SiteRequest>([
    requestLimitStage({ plans: fairness.plans, limiter: fairness.limiter, onThrottle: (site, reason, plan) => fairness.onThrottle(site, reason, plan), pace }),
    sessionEndpointsStage({ sessions: deps.sessions, renderer: deps.renderer, stylesheets }),
    cssStage({ cssDir: deps.cssDir, pages, componentCss }),
    platformPathsStage({ pages }),
    wellKnownStage(notFound),
    trailingSlashStage({ edgeCacheSeconds }),
    robotsSitemapStage({ listRoutes: (site) => listPageRoutes(site), served: (site, route) => !fairness.content.beyondPageCount(site, route.file), edgeCacheSeconds }),
    staticFilesStage({ staticMaxAgeSeconds, withExtension: true, trustedProxies: deps.trustedProxies, publicRefusal: fairness.content.publicRefusal }),
    pageStage({
      loadPage: deps.loadPage,
      respondWithPage: createPageResponse({ renderer: deps.renderer, stylesheets, sessions: deps.sessions, renderCache: deps.renderCache, renderedPages: deps.renderedPages, buildId: deps.buildId ?? '', edgeCacheSeconds, renderGate: fairness.renderGate, checkPage: fairness.content.checkPage, pageComponents }),
    }),
    staticFilesStage({ staticMaxAgeSeconds, withExtension: false, trustedProxies: deps.trustedProxies, publicRefusal: fairness.content.publicRefusal }),
    faviconStage({ staticMaxAgeSeconds }),
    notFoundStage(notFound),
  ]);

  const handle = sequence<Exchange>([
    messageChecksStage(),
    methodPolicyStage(),
    platformRoutesStage(deps.platformRoutes),
    platformAssetsStage({ cssDir: deps.cssDir, staticMaxAgeSeconds }),
    refine(
      hostStage({ trustedProxies: deps.trustedProxies }),
      sequence<HostedRequest>([
        acmeChallengeStage({ getChallenge: deps.getAcmeChallenge, isListedHost: deps.isListedHost }),
        platformHomeStage({ platformDomain: deps.platformDomain, pages, listSites: deps.listSites, isAdmin: deps.isAdmin ?? (() => false), staticMaxAgeSeconds }),
        refine<HostedRequest, SiteRequest>(tenantStage({ resolveTenant: deps.resolveTenant, pages, sessions: deps.sessions, edgeCacheSeconds, pace }), siteStages),
      ]),
    ),
  ]);

  return async function requestListener(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const started = process.hrtime.bigint();
    const incoming = req.headers['x-request-id'];
    const id = typeof incoming === 'string' && REQUEST_ID.test(incoming) ? incoming : randomUUID();
    res.setHeader('X-Request-Id', id);
    const ctx = createExchange(req, res, id, logger);
    let route: RouteKind;
    try {
      route = (await handle(ctx)) ?? 'error';
    } catch (error) {
      route = await answerError(ctx, asPlatformError(error), pages, pace).catch(() => {
        res.destroy();
        return 'error' as const;
      });
    }
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    const status = res.statusCode;
    if (route !== 'unknown_host' && route !== 'throttled') deps.refusalPacer?.served();
    deps.metrics?.observeRequest({ method: req.method, status, route, site: ctx.siteId, seconds: ms / 1000 });
    if (ctx.siteId) deps.traffic?.record(ctx.siteId, status >= 500);
    // Probes and scrapes every few seconds would drown the access log, and so would a flood of
    // junk Host values or of refused requests over a site's plan (each is counted in the metrics by
    // route, throttles also by reason and plan): they log at debug.
    const level = route === 'health' || route === 'metrics' || route === 'unknown_host' || route === 'throttled' ? 'debug' : 'info';
    // The access line carries its bindings itself: no child logger is made for a request that
    // logs nothing else (most of them).
    if (logger.isLevelEnabled(level)) logger[level]({ reqId: id, site: ctx.siteId, method: req.method, path: req.url?.slice(0, 300), status, route, ms: Math.round(ms * 100) / 100 }, 'request');
  };
}
