import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { createCacheFolder, isUnwritable, openIfPrivate, type CacheFolder } from '../sites/cache-folder.ts';

/**
 * Rendered anonymous pages on disk, under the in-memory render cache (render-cache.ts): a page a
 * worker rendered once is served from here by every worker of the machine, after a restart, a
 * `pm2 reload`, a crash, or once its site fell out of the in-memory LRU, with no Astro render.
 * That render was most of what a cold site cost (bench/README.md, "Cold sites vs the compiled-in
 * peer"); what is left of a cold request is reading the site's files and its page's.
 *
 * An entry's name is a hash of three things, so it is only ever found by a request that would
 * render the very same bytes:
 * - the page's ETag (render-cache.ts `inputsETag`: the build, the stat fingerprints of site.json,
 *   the CSS manifest, the page and its components, the origin and the stylesheets), which every
 *   request computes from files the content cache re-checks every CONTENT_CHECK_MS: an edit changes
 *   it, and the old entry is never looked up again;
 * - the render key (site, origin, path);
 * - the server's identity (`serverIdentity`): its code, its installed packages and its whole
 *   configuration. Unlike the in-memory cache, these files outlive the process, so a deploy, a
 *   package update or a changed setting must not meet pages rendered by the old one.
 *
 * Like the Markdown cache the folder must be this user's alone (cache-folder.ts): what it holds is
 * served as is. Writes are whole or nothing and do not delay the answer; the folder is bounded
 * (`RENDER_CACHE_DIR_MB`, oldest written removed first).
 */
export interface RenderedPagesFolder {
  /** The page's bytes when this key was stored under this ETag by a server of the same identity. */
  read(key: string, etag: string): Promise<Buffer | undefined>;
  /** Stores a rendered page (200, whole) in the background. */
  write(key: string, etag: string, body: Buffer): void;
  /** Waits for the writes in flight (tests, shutdown). */
  settle(): Promise<void>;
  readonly stats: Readonly<{ hits: number; misses: number; writes: number; writeErrors: number; pruned: number }>;
}

export interface RenderedPagesFolderOptions {
  dir: string;
  /** Bytes the folder may hold. */
  maxBytes: number;
  /** `serverIdentity(...)`: pages of another code, package set or configuration are never read. */
  identity: string;
  onWarning?: (message: string, details: Record<string, unknown>) => void;
}

/** The file name's key of one page: 64 hex digits, as cache-folder.ts names its files. */
export function renderedPageKey(identity: string, key: string, etag: string): string {
  return createHash('sha256').update(identity).update('\0').update(key).update('\0').update(etag).digest('hex');
}

export function createRenderedPagesFolder(options: RenderedPagesFolderOptions & { folder?: CacheFolder }): RenderedPagesFolder {
  const folder = options.folder ?? createCacheFolder({ dir: options.dir, maxBytes: options.maxBytes, extension: '.html' });
  const counts = { hits: 0, misses: 0, writeErrors: 0 };
  let writable = true;
  return {
    async read(key, etag) {
      if (!folder.usable) return undefined;
      // Not there (the usual miss), empty or unreadable: render, as without this folder.
      const body = await folder.read(renderedPageKey(options.identity, key, etag)).catch(() => undefined);
      if (body === undefined || body.length === 0) {
        counts.misses++;
        return undefined;
      }
      counts.hits++;
      return body;
    },
    write(key, etag, body) {
      if (!writable || !folder.usable || body.length === 0) return;
      folder.track(
        folder.write(renderedPageKey(options.identity, key, etag), body.toString('utf8')).catch((error: NodeJS.ErrnoException) => {
          counts.writeErrors++;
          if (isUnwritable(error)) {
            // A folder we cannot write to will not get better by retrying on every render.
            writable = false;
            options.onWarning?.('rendered-pages folder is not writable; cold pages render again after a restart (set RENDER_CACHE_DIR)', { dir: options.dir, code: error.code });
          }
        }),
      );
    },
    settle: () => folder.settle(),
    stats: folder.withCounts(counts),
  };
}

/**
 * Checks the folder (this user's alone, cache-folder.ts) and opens it; a refused folder gives
 * none, with a warning naming the reason, and pages render as without it.
 */
export function openRenderedPagesFolder(options: RenderedPagesFolderOptions): Promise<RenderedPagesFolder | undefined> {
  return openIfPrivate(
    options.dir,
    () => createRenderedPagesFolder(options),
    (reason) => options.onWarning?.('rendered-pages folder refused; cold pages render again after a restart (set RENDER_CACHE_DIR to a private folder)', { dir: options.dir, reason }),
  );
}

/**
 * Settings (ServerConfig fields) that only place, size or time the process, or serve what never
 * reaches an anonymous page's HTML: left out of `serverIdentity`, so a server restarted on another port, with another
 * log level or cache size still finds its pages. Any other setting, present or future, is in.
 */
export const SETTINGS_OUTSIDE_PAGES: readonly string[] = [
  'port', 'host', 'logLevel', 'peerDir', 'stateDir', 'drainTimeoutMs', 'shutdownDelayMs', 'readyRequiresRedis',
  'contentCheckMs', 'contentIo', 'sitesRescanMs', 'cacheMaxEntries', 'cacheMaxBytes', 'refusalDelayMs', 'metricsSiteLabels',
  'renderCacheBytes', 'renderCacheMaxEntries', 'renderCacheDir', 'renderCacheDirBytes',
  'markdownCacheDir', 'markdownCacheBytes', 'componentCacheDir', 'componentCacheBytes',
  // Sessions, admin access, Redis and certificates: secrets and settings of what is never in an
  // anonymous page (members pages and signed-in visitors never use the folder), so rotating a key
  // does not throw every page away.
  'sessionKeys', 'sessionMaxAgeSeconds', 'signInMaxFailures', 'signInWindowSeconds', 'adminAllow', 'adminToken', 'redis', 'redisUrl', 'acme',
];

/**
 * The identity of everything besides a page's own inputs that shapes its HTML: the server's code
 * and the Astro build (every file below each of `folders`: `server/` and `dist/server/`, by
 * content, so a rebuild with pinned timestamps still counts), the installed packages (`lockFiles`:
 * the project's package-lock.json and node_modules/.package-lock.json, which npm rewrites on every
 * install, so a worker started between a pull and `npm ci` does not name old packages' pages with
 * the new lock), the runtime (Node's version, its ICU data, the time zone and locale dates are
 * formatted in) and the configuration (`config` without SETTINGS_OUTSIDE_PAGES, serialised; Sets
 * and Maps as their entries, functions by their text). Read once at start: ~200 files, ~1 MB.
 */
export function serverIdentity(folders: string | readonly string[], lockFiles: string | readonly string[], config: object): string {
  const hash = createHash('sha256');
  for (const folder of typeof folders === 'string' ? [folders] : folders) {
    let entries: import('node:fs').Dirent[] = [];
    try {
      entries = readdirSync(folder, { recursive: true, withFileTypes: true }) as import('node:fs').Dirent[];
    } catch {
      hash.update(`\0no folder ${folder}`);
    }
    const files = entries.filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name)).sort();
    hash.update(`\0folder\0${files.length}`);
    for (const file of files) hash.update(`\0${relative(folder, file)}\0`).update(readFileSync(file));
  }
  for (const lockFile of typeof lockFiles === 'string' ? [lockFiles] : lockFiles) {
    try {
      hash.update('\0lock\0').update(readFileSync(lockFile));
    } catch {
      hash.update('\0no lock file');
    }
  }
  // The runtime too: dates in pages are formatted with the process's ICU data, time zone and locale.
  const { timeZone, locale } = Intl.DateTimeFormat().resolvedOptions();
  hash.update(`\0runtime\0${process.version}\0${process.versions.icu ?? ''}\0${timeZone}\0${locale}`);
  const settings = Object.fromEntries(Object.entries(config).filter(([name]) => !SETTINGS_OUTSIDE_PAGES.includes(name)));
  hash.update('\0config\0').update(
    JSON.stringify(settings, (_key, value: unknown) => {
      if (value instanceof Set) return [...value];
      if (value instanceof Map) return [...value.entries()];
      if (typeof value === 'function') return String(value);
      if (typeof value === 'bigint') return value.toString();
      return value;
    }) ?? '',
  );
  return hash.digest('hex').slice(0, 32);
}
