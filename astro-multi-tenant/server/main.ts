import { createServer } from 'node:http';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { loadConfig } from './config.ts';
import { createLogger } from './log.ts';
import { createApp } from './app.ts';
import { createContentCache } from './sites/content-cache.ts';
import { createSiteLoader } from './sites/loader.ts';
import { createPageLoader } from './sites/pages.ts';
import { createSiteRegistry } from './tenant/registry.ts';
import { loadAstroRenderer } from './render/astro-renderer.ts';

/**
 * Process entry: one HTTP server in front of the Astro app. Run directly (`npm run serve`) or as a
 * PM2 cluster worker (`npm start`); PM2 gets `ready` only once the port is bound and the host index
 * is built, so a reload never routes traffic to a worker that would answer 404 for every tenant.
 */
async function main() {
  let config;
  try {
    config = loadConfig();
  } catch (error) {
    console.error(`astro-multi-tenant: configuration error: ${(error as Error).message}`);
    process.exit(78);
  }
  const logger = createLogger(config.logLevel);
  const cache = createContentCache({ maxEntries: config.cacheMaxEntries, maxBytes: config.cacheMaxBytes, checkIntervalMs: config.contentCheckMs });
  const registry = createSiteRegistry({
    sitesDir: config.sitesDir,
    platformDomain: config.platformDomain,
    rescanIntervalMs: config.sitesRescanMs,
    onWarning: (message, details) => logger.warn(details, message),
  });
  try {
    await registry.scan();
  } catch (error) {
    logger.fatal({ err: error, sitesDir: config.sitesDir }, 'cannot read SITES_DIR');
    process.exit(78);
  }
  if (!config.redisUrl) logger.info('REDIS_URL is not set: using embedded in-memory defaults');

  const renderer = await loadAstroRenderer(config.astroEntry);
  const baseCssFile = await readFile(join(config.cssDir, '_base', 'manifest.json'), 'utf8')
    .then((text) => (JSON.parse(text) as { file?: string }).file)
    .catch(() => undefined);
  if (!baseCssFile) logger.warn({ cssDir: config.cssDir }, 'shared base CSS is not built; pages render unstyled (run npm run build)');

  const app = createApp({
    registry,
    loadSite: createSiteLoader({ sitesDir: config.sitesDir, cssDir: config.cssDir, cache }),
    loadPage: createPageLoader(cache),
    renderer,
    trustedProxies: config.trustedProxies,
    cssDir: config.cssDir,
    baseCssFile,
    staticMaxAge: config.staticMaxAge,
    logger,
  });

  const server = createServer({ keepAliveTimeout: 65_000, headersTimeout: 20_000, requestTimeout: 30_000 }, (req, res) => void app(req, res));
  server.on('clientError', (_error, socket) => {
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
    else socket.destroy();
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.port, config.host, () => resolve());
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  logger.info({ port, host: config.host ?? '(all interfaces)', sitesDir: config.sitesDir, sites: registry.siteIds.length, platformDomain: config.platformDomain }, 'listening');
  process.send?.('ready');

  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down: finishing in-flight requests');
    server.close(() => {
      logger.info('stopped');
      process.exit(0);
    });
    server.closeIdleConnections();
    setTimeout(() => {
      server.closeAllConnections();
      process.exit(0);
    }, 8000).unref();
  };
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('message', (message) => {
    if (message === 'shutdown') shutdown('shutdown message');
  });
}

await main();
