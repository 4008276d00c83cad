import { constants } from 'node:fs';
import { join } from 'node:path';
import { ContentError } from '../errors.ts';
import { siteConfigSchema, type SiteConfig } from './schema.ts';
import { parseJsonFile } from './json-file.ts';
import { fileFingerprint, isMissing, statsFingerprint } from './fs-fingerprint.ts';
import type { ContentCache, Loaded } from './content-cache.ts';
import { contentFs, type ContentHandle } from './content-fs.ts';
import { createFolderSiteSource, SITE_CONFIG_FILE, type SiteSource } from './site-source.ts';

export interface Site {
  id: string;
  /** Real (symlink-resolved) path of the site folder: every file served must live below it. */
  dir: string;
  config: SiteConfig;
  /** File name of the site's built, content-hashed stylesheet, if one has been built. */
  cssFile: string | undefined;
  /** Why the site renders with the shared base CSS only, if it does. */
  cssProblem: 'missing' | 'stale' | undefined;
  /** Identity of site.json and the CSS manifest (stat fingerprints): part of every page's ETag. */
  version: string;
}

export type SiteState = { ok: true; site: Site } | { ok: false; id: string; error: ContentError };

export interface SiteLoaderOptions {
  sitesDir: string;
  /** Where site configs are read; default: the folders under `sitesDir`. */
  source?: SiteSource;
  cssDir: string;
  cache: ContentCache;
  /** Called with the seconds each load from disk took (cache misses and reloads after edits). */
  observeLoad?: (seconds: number) => void;
}

export { SITE_CONFIG_FILE };
/** Content-cache key prefix of site configs (pages use their own). */
export const SITE_CACHE_PREFIX = 'site\0';

/** Parses and validates one site.json text; pure, so `sites check` and the server agree exactly. */
export function parseSiteConfig(text: string, file: string): { ok: true; config: SiteConfig } | { ok: false; error: ContentError } {
  const parsed = parseJsonFile(siteConfigSchema, text, file);
  return parsed.ok ? { ok: true, config: parsed.value } : parsed;
}

/** The stylesheet a manifest's text names, if it names a valid one. */
function manifestFile(text: string): string | undefined {
  try {
    const manifest = JSON.parse(text) as { file?: unknown };
    return typeof manifest.file === 'string' && /^site\.[a-f0-9]{8,64}\.css$/.test(manifest.file) ? manifest.file : undefined;
  } catch {
    return undefined;
  }
}

/** Reads the pointer `css-build` writes once a site's stylesheet is complete. */
async function readCssManifest(path: string): Promise<string | undefined> {
  return manifestFile(await contentFs.readText(path).catch(() => ''));
}

/** Largest manifest read (bytes): `css-build` writes a few dozen. */
const MAX_MANIFEST_BYTES = 64 * 1024;

/**
 * The manifest's fingerprint (`fileFingerprint`'s, from the descriptor's fstat, taken before the
 * read) and the stylesheet it names, through one descriptor: a cold site with built CSS pays
 * open + fstat + read + close, where a stat and then a readFile (open, fstat, read, close) cost a
 * round trip more; one without pays the failed open, as it paid the failed stat. The manifest is
 * the platform's build output (cssDir), not a site owner's file.
 */
async function openCssManifest(path: string): Promise<{ fingerprint: string | null; file?: string }> {
  let handle: ContentHandle;
  try {
    handle = await contentFs.open(path, constants.O_RDONLY);
  } catch (error) {
    if (isMissing(error)) return { fingerprint: null };
    throw error;
  }
  try {
    const stats = await handle.stat();
    if (!stats.isFile()) return { fingerprint: null };
    const buffer = Buffer.allocUnsafe(Math.min(stats.size, MAX_MANIFEST_BYTES));
    const { bytesRead } = await handle.read(buffer, 0, buffer.length, 0);
    return { fingerprint: statsFingerprint(stats), file: manifestFile(buffer.toString('utf8', 0, bytesRead)) };
  } finally {
    await handle.close();
  }
}

/** Fingerprint suffix of a site whose CSS manifest does not exist. */
const MISSING = '|-';

export function cssManifestPath(cssDir: string, siteId: string): string {
  return join(cssDir, siteId, 'manifest.json');
}

/**
 * Loads a site's config through the content cache. Returns null when the folder has no site.json
 * (the site does not exist, or was removed).
 */
export function createSiteLoader(options: SiteLoaderOptions) {
  const { cssDir, cache } = options;
  const source = options.source ?? createFolderSiteSource(options.sitesDir);

  type Read = Awaited<ReturnType<SiteSource['readConfig']>>;

  /**
   * The site from its config as read and its fingerprint (`<site.json>|<manifest or ->`).
   * `manifest`: the CSS manifest as read beside the config (cold loads); otherwise it is read here
   * when the fingerprint says there is one.
   */
  async function siteFrom(id: string, read: NonNullable<Read>, manifestPath: string, fingerprint: string, manifest?: { file?: string }): Promise<Loaded<SiteState | null>> {
    const file = `sites/${id}/${SITE_CONFIG_FILE}`;
    const { text } = read;
    // Refused unread (a link out of the folder, too large): the site is unavailable (503), with the
    // reason in the log, and never answers with another file's config.
    if (read.refused !== undefined) return { value: { ok: false, id, error: new ContentError('SITE_CONFIG_INVALID', [{ file, field: '', reason: read.refused }]) }, bytes: 512 };
    const parsed = parseSiteConfig(text, file);
    if (!parsed.ok) return { value: { ok: false, id, error: parsed.error }, bytes: 512 + text.length };
    // The fingerprint already stat'ed the manifest: no need to try reading one that is not there.
    let cssFile = fingerprint.endsWith(MISSING) ? undefined : manifest ? manifest.file : await readCssManifest(manifestPath);
    let cssProblem: Site['cssProblem'] = cssFile === undefined ? 'missing' : undefined;
    if (cssFile !== undefined && !(await contentFs.stat(join(cssDir, id, cssFile)).then((s) => s.isFile(), () => false))) {
      cssFile = undefined;
      cssProblem = 'stale';
    }
    // The folder the config was read from, as the read found it (no realpath for a plain
    // site.json); a source that does not say resolves it here.
    const dir = read.dir ?? (await source.realSiteDir(id));
    const site: Site = { id, dir, config: parsed.config, cssFile, cssProblem, version: fingerprint };
    return { value: { ok: true, site }, bytes: 1024 + text.length * 2 };
  }

  /** A reload after the fingerprint changed. */
  async function loadFromDisk(id: string, manifestPath: string, fingerprint: string): Promise<Loaded<SiteState | null>> {
    const read = await source.readConfig(id);
    // Removed between the stat and the read: the same answer as if the stat had not found it (the
    // next look re-stats and drops the entry).
    if (read === null) return { value: null, bytes: 1 };
    return siteFrom(id, read, manifestPath, fingerprint);
  }

  /**
   * A site this process does not hold: no stat of site.json first, the read's own descriptor
   * stat is its version (the same `ino:size:mtime` a stat of the name gives while the file is
   * unchanged; taken before the read, so never newer than the text). The CSS manifest is read
   * beside it, its fingerprint from the same descriptor. A round trip fewer than
   * fingerprint-then-load for every cold site, two for one with built CSS.
   */
  async function loadCold(id: string, manifestPath: string): Promise<(Loaded<SiteState | null> & { fingerprint: string }) | null> {
    const [read, manifest] = await Promise.all([source.readConfig(id), openCssManifest(manifestPath)]);
    if (read === null) return null;
    const fingerprint = `${read.version}|${manifest.fingerprint ?? '-'}`;
    return { ...(await siteFrom(id, read, manifestPath, fingerprint, manifest)), fingerprint };
  }

  /** Runs a load from disk, reporting its seconds to `observeLoad`. */
  async function timed<T>(load: () => Promise<T>): Promise<T> {
    const started = performance.now();
    try {
      return await load();
    } finally {
      options.observeLoad?.((performance.now() - started) / 1000);
    }
  }

  return async function loadSite(id: string): Promise<SiteState | null> {
    // Paths are built only when the cache needs the disk: a hit should cost a map lookup.
    return cache.get<SiteState | null>(`${SITE_CACHE_PREFIX}${id}`, {
      async fingerprint() {
        const [config, manifest] = await Promise.all([source.configVersion(id), fileFingerprint(cssManifestPath(cssDir, id))]);
        if (config === null) return null;
        return `${config}|${manifest ?? '-'}`;
      },
      load: (fingerprint) => timed(() => loadFromDisk(id, cssManifestPath(cssDir, id), fingerprint)),
      loadCold: () => timed(() => loadCold(id, cssManifestPath(cssDir, id))),
    });
  };
}

export type SiteLoader = ReturnType<typeof createSiteLoader>;
