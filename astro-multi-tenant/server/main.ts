import { createServer } from 'node:http';
import { once } from 'node:events';
import { access, constants } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { openComponentLoader } from './components/open-component-loader.ts';
import { createComponentStylesheets } from './css/component-stylesheet.ts';
import { APP_DIR, loadConfig } from './config.ts';
import { createLogger } from './log.ts';
import { createRequestPipeline } from './pipeline/request-pipeline.ts';
import { createTenantResolver } from './tenant/tenant-resolver.ts';
import { createContentCache } from './sites/content-cache.ts';
import { createSiteLoader } from './sites/loader.ts';
import { createFolderSiteSource } from './sites/site-source.ts';
import { createPageLoader } from './sites/pages.ts';
import { openMarkdownCache } from './sites/markdown-cache.ts';
import { closeMarkdownRenderer, renderMarkdown, renderPipelineId } from './sites/markdown.ts';
import { createSiteRegistry } from './tenant/registry.ts';
import { createFileClaimStore } from './tenant/host-claims.ts';
import { createDomainVerifier } from './tenant/domain-verifier.ts';
import { createFileDomainStateStore } from './tenant/domain-state-file.ts';
import { createRedisDomainStateStore } from './tenant/domain-state-redis.ts';
import { createTxtLookup } from './tenant/domain-dns.ts';
import { withDomainStatus } from './tenant/domain-status.ts';
import { isServed } from './tenant/domain-state.ts';
import { createCertificateManager, type CertificateManager } from './tls/certificate-manager.ts';
import { createAcmeIssuer } from './tls/acme-issuer.ts';
import { certificateNames } from './tls/certificate-names.ts';
import { createRedisCertificateStore } from './tls/certificate-store-redis.ts';
import { createFileCertificateStore } from './tls/certificate-store-file.ts';
import { createCertsDir } from './tls/certs-dir.ts';
import { createRenewalInfoClient } from './tls/renewal-info.ts';
import { withCertificateStatus } from './tls/certificate-status.ts';
import { CERTIFICATE_STATES } from './tls/renewal-schedule.ts';
import { loadAstroRenderer } from './render/astro-renderer.ts';
import { timedRenderer } from './render/timed-renderer.ts';
import { createMetrics } from './ops/metrics.ts';
import { createClusterMetrics } from './ops/cluster-metrics.ts';
import { createClusterStatus } from './ops/cluster-status.ts';
import { startPeerEndpoint, type PeerEndpoint } from './ops/peers.ts';
import { createSiteTraffic } from './ops/site-traffic.ts';
import { createHealth } from './ops/health.ts';
import { createAdminAccess } from './ops/admin-access.ts';
import { createDrain } from './ops/drain.ts';
import { workerStatus, type WorkerStatus } from './ops/status.ts';
import { createShutdown } from './ops/shutdown.ts';
import { createClientErrors } from './http/client-errors.ts';
import { buildIdentity } from './ops/build-identity.ts';
import { useContentIo } from './sites/content-fs.ts';
import { openRenderedPagesFolder, serverIdentity } from './render/rendered-pages-folder.ts';
import { readBaseCssFile } from './css/base-stylesheet.ts';
import { checkSiteConfigs } from './ops/site-checks.ts';
import { createComponentChecks } from './components/component-checks.ts';
import { createPlatformRoutes } from './ops/platform-routes.ts';
import { createTlsAsk } from './ops/tls-ask.ts';
import { createRedisClient, logRedisConnection } from './session/redis-client.ts';
import { createRedisSessionStore } from './session/redis-store.ts';
import { createMemorySessionStore } from './session/memory-store.ts';
import { parseSessionKeys } from './session/session-token.ts';
import { createSessions } from './session/sessions.ts';
import { createMembersLoader } from './session/members.ts';
import { createIdpVerifier } from './session/idp-token.ts';
import { clusterProblem } from './session/embedded-mode.ts';
import { randomBytes } from 'node:crypto';
import { createRenderCache } from './render/render-cache.ts';
import { loadPlansSource } from './plans/plans-file.ts';
import { createFairness } from './plans/fairness.ts';
import { createRefusalPacer } from './pipeline/refusal-pacer.ts';
import { withFairness } from './plans/usage.ts';
import { createContentLimitChecks } from './plans/content-limits.ts';

/** How many site.json files the status page validates from disk per view. */
const STATUS_CHECK_LIMIT = 2000;
const PEER_TIMEOUT_MS = 1500;

/**
 * Process entry: one HTTP server in front of the Astro app. Run directly (`npm run serve`) or as a
 * PM2 cluster worker (`npm start`); PM2 gets `ready` only once the port is bound and the host index
 * is built, so a reload never routes traffic to a worker that would answer 404 for every tenant.
 */
/** The sites folder's real path, or the name when it cannot be resolved (yet). */
function realSitesDir(dir: string): string {
  try {
    return realpathSync(dir);
  } catch {
    return dir;
  }
}

async function main() {
  let config;
  try {
    config = loadConfig();
  } catch (error) {
    console.error(`astro-multi-tenant: configuration error: ${(error as Error).message}`);
    process.exit(78);
  }
  const logger = createLogger(config.logLevel);
  // Before anything reads a site: every content file call from here on is made this way.
  useContentIo(config.contentIo, {
    // The sites folder as named and as resolved (a symlink swapped by git-sync points elsewhere).
    siteRoots: [...new Set([config.sitesDir, realSitesDir(config.sitesDir)])],
    onSlowSite: (site, ms, path) =>
      logger.warn({ site, ms: Math.round(ms * 100) / 100, path }, 'a file lookup of this site was slow; its files are read through the thread pool for 10 minutes (a long symlink chain, a slow or network mount)'),
  });
  // pm_id is PM2's stable slot number: it survives reloads, so dashboards keep one line per slot.
  const workerId = process.env.pm_id ?? process.env.NODE_APP_INSTANCE ?? '0';
  const cache = createContentCache({ maxEntries: config.cacheMaxEntries, maxBytes: config.cacheMaxBytes, checkIntervalMs: config.contentCheckMs });
  const metrics = createMetrics({ workerId, cache, siteLabelLimit: config.metricsSiteLabels });
  const traffic = createSiteTraffic();
  // One source of site folders for routing, loading and the status checks (sites/site-source.ts).
  const siteSource = createFolderSiteSource(config.sitesDir);
  // Who owns each custom host, shared by the workers of this machine (tenant/host-claims.ts).
  const claims = createFileClaimStore({ dir: config.stateDir, sitesDir: config.sitesDir });
  try {
    await claims.version();
  } catch (error) {
    logger.fatal({ err: error, stateDir: config.stateDir }, 'cannot use STATE_DIR');
    process.exit(78);
  }
  const registry = createSiteRegistry({
    claims,
    sitesDir: config.sitesDir,
    source: siteSource,
    platformDomain: config.platformDomain,
    rescanIntervalMs: config.sitesRescanMs,
    // The follower checks for new folders and host edits as often as content is re-checked.
    followIntervalMs: config.contentCheckMs,
    onWarning: (message, details) => logger.warn(details, message),
  });
  try {
    await registry.scan();
  } catch (error) {
    logger.fatal({ err: error, sitesDir: config.sitesDir }, 'cannot read SITES_DIR');
    process.exit(78);
  }

  // Sessions: Redis when configured; otherwise the embedded in-memory store, which only makes
  // sense for a single process (a second worker would not know the first one's sessions).
  const problem = clusterProblem(process.env, config.redis !== undefined, config.sessionKeys !== undefined);
  if (problem) {
    logger.fatal({ code: 'CONFIG_INVALID' }, problem);
    process.exit(78);
  }
  const redisClient = config.redis ? createRedisClient(config.redis) : undefined;
  if (redisClient) logRedisConnection(redisClient, logger);
  const store = redisClient
    ? createRedisSessionStore({ client: redisClient, observe: (op, seconds, failed) => metrics.observeSessionStore(op, seconds, failed) })
    : createMemorySessionStore();
  if (!redisClient) logger.warn('REDIS_URL is not set: sessions are kept in this process only (embedded mode, one worker)');
  const sessionKeys = config.sessionKeys ?? parseSessionKeys(`embedded:${randomBytes(32).toString('base64url')}`);
  if (!config.sessionKeys) logger.warn('SESSION_KEYS is not set: session cookies are signed with a random key and end when this process restarts');

  // DOMAIN_VERIFICATION=dns: custom hosts are served once their TXT record proves ownership; the
  // records are shared through Redis when configured, else by this machine's workers through a
  // private file in STATE_DIR (tenant/domain-verifier.ts).
  const dv = config.domainVerification;
  // A domain just verified gets its certificate ordered at once (set once the manager exists).
  let wakeCertificates = () => {};
  const verifier = dv
    ? createDomainVerifier({
        store: redisClient ? createRedisDomainStateStore(redisClient) : createFileDomainStateStore({ dir: config.stateDir, sitesDir: config.sitesDir }),
        secret: dv.secret,
        lookupTxt: createTxtLookup({ servers: dv.dnsServers }),
        // Every site listing each custom host (not only the one serving it now: the site holding the
        // DNS must be able to prove it over a squatter); platform subdomains need no check.
        hosts: () => registry.sites.flatMap((site) => [...site.domains, ...site.aliases].filter((host) => host !== `${site.id}.${config.platformDomain}`).map((host) => [host, site.id] as const)),
        onOwnersChanged: (domains) => registry.resettleHosts(domains),
        recheckMs: dv.recheckMs,
        retryMs: dv.retryMs,
        graceMs: dv.graceMs,
        onChange: (domain, site, from, to, detail) => {
          logger[to === 'verified' ? 'info' : 'warn']({ domain, site, from, to, detail }, `custom domain ${domain} of site ${site}: ${to}`);
          if (to === 'verified') wakeCertificates();
        },
        onError: (error) => logger.error({ err: error }, 'domain verification: cannot read or write the domain state'),
      })
    : undefined;
  if (verifier) {
    // Serve verified domains from the first request: read the shared records before listening
    // (waiting up to 5 s for Redis to connect: its client has no offline queue); checks follow in
    // the background.
    if (redisClient && redisClient.status !== 'ready') await Promise.race([once(redisClient, 'ready').catch(() => {}), new Promise((r) => setTimeout(r, 5000).unref())]);
    await verifier.refresh().catch((error) => logger.error({ err: error }, 'domain verification: cannot read the domain state; custom domains answer 404 until it can'));
    // A verified domain belongs to its site, whatever the host claim records say.
    registry.useVerifiedOwners((host) => verifier.ownerOf(host));
    verifier.start(Math.min(dv!.retryMs, 30_000));
  }
  const sessions = createSessions({
    store,
    keys: sessionKeys,
    maxAgeSeconds: config.sessionMaxAgeSeconds,
    loadMembers: createMembersLoader(config.sitesDir, cache),
    verifyIdpToken: createIdpVerifier({ allow: config.jwksAllowHosts }),
    proxies: config.trustedProxies,
    rateLimit: { maxFailures: config.signInMaxFailures, windowSeconds: config.signInWindowSeconds },
    logger,
  });

  // Plans and limits: PLANS_FILE checked like site content, limits shared through Redis.
  let plans;
  try {
    plans = await loadPlansSource({
      file: config.plansFile,
      checkIntervalMs: config.contentCheckMs,
      onReload: (r) => (r.ok ? logger.info({ plansFile: r.file }, 'PLANS_FILE reloaded') : logger.error({ plansFile: r.file, code: 'CONFIG_INVALID' }, `PLANS_FILE not applied, the previous plans stay in force: ${r.message}`)),
    });
  } catch (error) {
    logger.fatal({ code: 'CONFIG_INVALID', plansFile: config.plansFile }, (error as Error).message);
    process.exit(78);
  }
  const fairness = createFairness({
    plans,
    redis: redisClient,
    onThrottle: (site, reason, plan) => metrics.observeThrottle(site, reason, plan),
    onRender: (site, ms) => metrics.observeSiteRender(site, ms / 1000),
    onStoreChange: (shared, error) =>
      shared ? logger.info('site limits are shared through Redis again') : logger.warn({ err: error }, 'Redis unreachable: site limits are counted per process until it is back'),
  });
  // Only with Redis: the gauge says whether limits are shared now (alerts.yml AmtRedisUnreachable).
  if (redisClient) metrics.watchFairness(fairness);
  // Size and count limits on the status page, like validation errors (plans/content-limits.ts).
  const contentLimitChecks = createContentLimitChecks({ siteDir: (id) => siteSource.siteDir(id), planFor: (id) => fairness.plans().planFor(id) });

  const renderer = timedRenderer(await loadAstroRenderer(config.astroEntry), (kind, seconds) => metrics.observeRender(kind, seconds));
  const renderCache = config.renderCacheBytes > 0 ? createRenderCache({ maxBytes: config.renderCacheBytes, maxEntries: config.renderCacheMaxEntries }) : undefined;
  if (renderCache) metrics.watchRenderCache(renderCache);
  // Rendered pages on disk under it (render/rendered-pages-folder.ts), named for this server's
  // code, packages and settings as well as for each page's ETag.
  const renderedPages =
    renderCache && config.renderCacheDir
      ? await openRenderedPagesFolder({
          dir: config.renderCacheDir,
          maxBytes: config.renderCacheDirBytes,
          identity: serverIdentity([import.meta.dirname, dirname(config.astroEntry)], [join(APP_DIR, '..', 'package-lock.json'), join(APP_DIR, '..', 'node_modules', '.package-lock.json')], config),
          onWarning: (message, details) => logger.warn(details, message),
        })
      : undefined;
  if (renderedPages) metrics.watchRenderedPages(renderedPages);
  // Refusals (unknown hosts, plan 429s) wait while the worker is busy, so sites go first.
  const refusalPacer = createRefusalPacer({ delayMs: config.refusalDelayMs });
  metrics.watchRefusalPacer(refusalPacer);
  const baseCssFile = await readBaseCssFile(config.cssDir);
  if (!baseCssFile) logger.warn({ cssDir: config.cssDir }, 'shared base CSS is not built; pages render unstyled (run npm run build)');

  const server = createServer({ keepAliveTimeout: 65_000, headersTimeout: 20_000, requestTimeout: 30_000 });
  const drain = createDrain(server, { deadlineMs: config.drainTimeoutMs });
  let peerDir = config.peerDir ?? '';
  let peers: PeerEndpoint | undefined;
  const ownStatus = (): WorkerStatus => ({ ...workerStatus({ workerId, cache, traffic, draining: drain.draining }), fairness: fairness.snapshot() });

  const health = createHealth({
    isDraining: () => drain.draining,
    checks: [
      { name: 'sites_dir', run: () => access(config.sitesDir, constants.R_OK | constants.X_OK) },
      ...(redisClient ? [{ name: 'redis', run: () => store.ping(), critical: config.readyRequiresRedis }] : []),
    ],
  });
  const admin = createAdminAccess({ allow: config.adminAllow, token: config.adminToken, proxies: config.trustedProxies });
  // One resolver for requests and for the TLS ask, so Caddy is told yes exactly where pages are served.
  const resolveTenant = createTenantResolver({
    registry,
    loadSite: createSiteLoader({ sitesDir: config.sitesDir, source: siteSource, cssDir: config.cssDir, cache, observeLoad: (s) => metrics.observeSiteLoad(s) }),
    verifier,
  });
  // ACME_DIRECTORY_URL: certificates for the custom domains and aliases served (verified ones with
  // DOMAIN_VERIFICATION=dns), kept in the shared store and written to CERTS_DIR (tls/certificate-manager.ts).
  let certificates: CertificateManager | undefined;
  const acmeStore = config.acme ? (redisClient ? createRedisCertificateStore(redisClient) : createFileCertificateStore({ dir: config.stateDir, sitesDir: config.sitesDir })) : undefined;
  if (config.acme && acmeStore) {
    const acmeConfig = config.acme;
    certificates = createCertificateManager({
      store: acmeStore,
      issuer: createAcmeIssuer({ directoryUrl: acmeConfig.directoryUrl, email: acmeConfig.email, store: acmeStore }),
      wanted: () =>
        certificateNames({
          hosts: [...registry.index.entries].map(([host, e]) => [host, e.siteId] as const),
          platformDomain: config.platformDomain,
          isServed: verifier ? (site, host) => verifier.describe(site, [host]).some((d) => isServed(d.state)) : undefined,
        }),
      // Ordered only where a request would be served now: the same answer /_platform/tls/ask gives.
      serves: async (host) => {
        const r = await resolveTenant(host);
        return r.kind === 'redirect' || (r.kind === 'site' && r.state.ok);
      },
      renewBeforeMs: acmeConfig.renewBeforeMs,
      // ARI (RFC 9773): the CA may advance a renewal (a revocation, an incident); nothing is asked of a CA without it.
      renewalInfo: createRenewalInfoClient({ directoryUrl: acmeConfig.directoryUrl }),
      onRenewalAdvised: (host, renewAfter) => logger.warn({ host, renewAfter: new Date(renewAfter).toISOString() }, `certificate for ${host}: the CA advises renewing early`),
      certsDir: acmeConfig.certsDir ? createCertsDir({ dir: acmeConfig.certsDir, getBundle: (host) => acmeStore.getBundle(host) }) : undefined,
      onIssued: (host, site, cert, renewal) => logger.info({ host, site, serial: cert.serial, notAfter: new Date(cert.notAfter).toISOString() }, `certificate for ${host} ${renewal ? 'renewed' : 'issued'}`),
      onFailure: (host, site, failure, record) => {
        metrics.observeAcmeError(failure.kind);
        logger.warn({ host, site, kind: failure.kind, failures: record.failures, nextAttemptAt: new Date(record.nextAttemptAt ?? 0).toISOString(), detail: failure.message }, `certificate for ${host} not issued: ${failure.kind}`);
      },
      onRemoved: (host) => logger.info({ host }, `certificate for ${host} removed: no site serves it any more`),
      onSynced: (result) => logger.info({ certsDir: acmeConfig.certsDir, written: result.written, removed: result.removed }, 'CERTS_DIR updated'),
      onSyncError: (error) => logger.error({ err: error, certsDir: acmeConfig.certsDir }, 'certificates: cannot write CERTS_DIR; nginx keeps the files it has'),
      onError: (error) => {
        metrics.observeAcmeError('store');
        logger.error({ err: error }, 'certificates: cannot read or write the certificate store');
      },
    });
    metrics.watchCertificates(certificates, CERTIFICATE_STATES);
    wakeCertificates = () => certificates?.wake();
    if (!acmeConfig.certsDir) logger.warn('ACME_DIRECTORY_URL is set but CERTS_DIR is not: certificates are kept in the shared store only, no files are written for nginx');
    else logger.info({ directoryUrl: acmeConfig.directoryUrl, certsDir: acmeConfig.certsDir, store: acmeStore.location }, 'certificates: ordered from ACME_DIRECTORY_URL, written to CERTS_DIR');
  }
  const platformRoutes = createPlatformRoutes({
    tlsAsk: createTlsAsk({ resolveTenant }),
    health,
    admin,
    isDraining: () => drain.draining,
    metrics: createClusterMetrics({ peerDir: () => peerDir, ownMetrics: () => metrics.toJson(), timeoutMs: PEER_TIMEOUT_MS }),
    status: withCertificateStatus(withDomainStatus(withFairness(createClusterStatus({
      peerDir: () => peerDir,
      ownStatus,
      platformDomain: config.platformDomain,
      known: () => registry.sites,
      check: async (ids) => componentChecks(await contentLimitChecks(await checkSiteConfigs(siteSource, ids, STATUS_CHECK_LIMIT))),
      timeoutMs: PEER_TIMEOUT_MS,
    }), (id) => fairness.plans().planFor(id)), verifier), certificates),
  });

  const markdownCache = config.markdownCacheDir
    ? await openMarkdownCache({
        dir: config.markdownCacheDir,
        maxBytes: config.markdownCacheBytes,
        render: renderMarkdown,
        pipelineId: renderPipelineId(),
        onWarning: (message, details) => logger.warn(details, message),
      })
    : undefined;
  if (markdownCache) metrics.watchMarkdownCache(markdownCache);

  // Sites' own components and layouts (issue 15): compiled on first use (through the disk cache of
  // compiled output, COMPONENT_CACHE_DIR), held in the content cache like the rest of a site.
  const { loader: componentLoader } = await openComponentLoader({
    cache,
    sharedDir: fileURLToPath(new URL('../../shared-components', import.meta.url)),
    cacheDir: config.componentCacheDir,
    cacheBytes: config.componentCacheBytes,
    onWarning: (message, details) => logger.warn(details, message),
  });
  // The status page lists their problems (file:line:column) for sites whose plan allows them.
  const componentChecks = createComponentChecks({ loader: componentLoader, siteDir: (id) => siteSource.realSiteDir(id), allowed: (id) => fairness.plans().planFor(id).limits.components });
  const app = createRequestPipeline({
    resolveTenant,
    getAcmeChallenge: acmeStore ? (token) => acmeStore.getChallenge(token) : undefined,
    isListedHost: (hostname) => registry.index.entries.has(hostname),
    platformDomain: config.platformDomain,
    // Embedded mode serves one operator's own sites: its platform home page may list them.
    listSites: redisClient ? undefined : () => registry.siteIds,
    isAdmin: (req) => admin(req.headers, req.socket.remoteAddress).ok,
    loadPage: createPageLoader(cache, { renderMarkdown: markdownCache?.render, pageSizeLimit: fairness.content.pageSizeLimit }),
    renderer,
    trustedProxies: config.trustedProxies,
    cssDir: config.cssDir,
    baseCssFile,
    staticMaxAge: config.staticMaxAge,
    logger,
    platformRoutes,
    metrics,
    traffic,
    sessions,
    edgeCacheSeconds: config.edgeCacheSeconds,
    renderCache,
    renderedPages,
    buildId: await buildIdentity(config.astroEntry, baseCssFile),
    fairness,
    refusalPacer,
    siteComponents: {
      loader: componentLoader,
      stylesheets: createComponentStylesheets({ loader: componentLoader, checkIntervalMs: config.contentCheckMs }),
      checkIntervalMs: config.contentCheckMs,
    },
  });
  const clientErrors = createClientErrors();
  server.on('request', (req, res) => {
    drain.track(req, res);
    clientErrors.track(req, res);
    void app(req, res);
  });
  server.on('clientError', clientErrors.onClientError);

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.port, config.host, () => resolve());
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  // Workers of one cluster share the port, so the port names the group; two clusters on one
  // machine never see each other's metrics.
  peerDir ||= join(tmpdir(), `astro-multi-tenant-${port}`);
  try {
    peers = await startPeerEndpoint(peerDir, { metrics: () => metrics.toJson(), status: async () => ownStatus() });
  } catch (error) {
    logger.error({ err: error, peerDir }, 'cannot open the peer socket: metrics and status will show this worker only');
  }
  logger.info({ port, host: config.host ?? '(all interfaces)', sitesDir: config.sitesDir, sites: registry.siteIds.length, platformDomain: config.platformDomain, worker: workerId, peerDir }, 'listening');
  process.send?.('ready');
  // Orders start once this worker answers HTTP-01 itself (any worker may be asked).
  certificates?.start(30_000);

  const shutdown = createShutdown({
    drain,
    delayMs: config.shutdownDelayMs,
    deadlineMs: config.drainTimeoutMs,
    close: [async () => registry.stop(), async () => verifier?.stop(), async () => certificates?.stop(), async () => peers?.close(), () => store.close(), () => closeMarkdownRenderer()],
    logger,
    exit: (code) => process.exit(code),
  });
  process.on('SIGINT', () => void shutdown('SIGINT'));
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('message', (message) => {
    if (message === 'shutdown') void shutdown('shutdown message');
  });
}

await main();
