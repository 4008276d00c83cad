import type { Dirent, Stats } from 'node:fs';
import { join } from 'node:path';
import { isValidSiteId } from '../tenant/resolve-host.ts';
import { isMissing, statsFingerprint } from './fs-fingerprint.ts';
import { contentFs } from './content-fs.ts';
import { readContainedText, readFolderEntry, refusalReason, type ContainedText } from './contained-file.ts';

export const SITE_CONFIG_FILE = 'site.json';
/** Largest site.json read (bytes); checked on the open descriptor before reading. */
export const MAX_SITE_CONFIG_BYTES = 256 * 1024;

/**
 * Where site folders come from: the one place that lists sites and reads their config. The server's
 * registry and loader, `sites check`, `npm run css`, `nginx:config` and the status page all go
 * through it, so they agree on what a site is (today: a folder or a symlink to one, named by a
 * valid site id, holding a site.json).
 *
 * It is the seam for a second content source (Git, object storage, a database): such a source
 * answers the same questions with its own cheap identities (a commit id, an ETag, an updated_at),
 * and materialises a folder for `siteDir`. Versions are opaque strings compared for equality only.
 */
export interface SiteSource {
  /** Human-readable location, for messages ("/srv/content/sites"). */
  readonly location: string;
  /**
   * A cheap identity of the list of sites (one stat of the sites folder: it changes when a folder
   * or symlink is added, removed or renamed). Throws when the list cannot be read at all.
   */
  listingVersion(): Promise<string>;
  /** Entry names that may be site folders (folders and symlinks, not dot-files), valid ids or not, sorted. */
  listEntries(): Promise<string[]>;
  /** Ids of the sites: entries with a valid id that are folders or resolve to one, sorted. */
  listSiteIds(): Promise<string[]>;
  /**
   * A cheap identity of a site's site.json (inode, size, mtime), or null when the site has none.
   * Changes whenever the file is rewritten in place, replaced or renamed over.
   */
  configVersion(id: string): Promise<string | null>;
  /**
   * The text of a site's site.json with the version it was read at, or null when there is none.
   * The version is taken before the read, so it can only be older than the text, never newer: a
   * caller that compares versions re-reads at worst once too often, never misses an edit.
   *
   * A site.json that may not be read (a link leading out of the site folder, not a regular file,
   * over MAX_SITE_CONFIG_BYTES) comes back with `refused` saying why and an empty `text`, which no
   * schema accepts: a caller that only parses treats it as a broken config, never as another's.
   *
   * `dir`, when the source knows it, is the site folder's real path as the read found it (what
   * `realSiteDir` answers; for a folder source, where the descriptor of a plain site.json is, or
   * the realpath a linked one was checked against): a caller that needs both asks once.
   */
  readConfig(id: string): Promise<{ text: string; version: string; refused?: string; dir?: string } | null>;
  /** The folder a site's files are read from (pages, public, members.json). */
  siteDir(id: string): string;
  /** Its symlink-resolved path: every file served must live below it. */
  realSiteDir(id: string): Promise<string>;
  /** Why `id` names no site, or undefined if it names one. */
  siteProblem(id: string): Promise<string | undefined>;
}

/** The file system calls a folder source makes; injectable so tests can count them. */
export interface SourceFs {
  stat(path: string): Promise<Stats>;
  readdir(path: string, options: { withFileTypes: true }): Promise<Dirent[]>;
  realpath(path: string): Promise<string>;
}

const fingerprintOf = (s: Stats) => statsFingerprint(s);

/**
 * The first source: site folders under `sitesDir` on a local or shared file system. Symlinked site
 * folders count as sites (the server has always served them); a symlink to a file or to nothing
 * does not. Errors other than "not there" are thrown, so a permission problem is not mistaken for
 * a deleted site.
 */
export function createFolderSiteSource(sitesDir: string, fs: SourceFs = contentFs): SiteSource {
  const configPath = (id: string) => join(sitesDir, id, SITE_CONFIG_FILE);

  async function isFolder(entry: Dirent): Promise<boolean> {
    if (entry.isDirectory()) return true;
    if (!entry.isSymbolicLink()) return false;
    try {
      return (await fs.stat(join(sitesDir, entry.name))).isDirectory();
    } catch (error) {
      if (isMissing(error)) return false;
      throw error;
    }
  }

  async function folderEntries(): Promise<Dirent[]> {
    const entries = await fs.readdir(sitesDir, { withFileTypes: true });
    return entries.filter((e) => (e.isDirectory() || e.isSymbolicLink()) && !e.name.startsWith('.')).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  async function configVersion(id: string): Promise<string | null> {
    try {
      const s = await fs.stat(configPath(id));
      return s.isFile() ? fingerprintOf(s) : null;
    } catch (error) {
      if (isMissing(error)) return null;
      throw error;
    }
  }

  return {
    location: sitesDir,
    async listingVersion() {
      // stat follows a symlinked sites folder, so an atomic swap of it (git-sync) changes this too.
      const s = await fs.stat(sitesDir);
      return `${s.dev}:${s.ino}:${s.mtimeMs}`;
    },
    async listEntries() {
      return (await folderEntries()).map((e) => e.name);
    },
    async listSiteIds() {
      const candidates = (await folderEntries()).filter((e) => isValidSiteId(e.name));
      // Only symlinks need a stat; plain folders are known from the listing itself.
      const folders = await Promise.all(candidates.map((e) => isFolder(e)));
      return candidates.filter((_, i) => folders[i]).map((e) => e.name);
    },
    configVersion,
    async readConfig(id) {
      // Read through the descriptor check (contained-file.ts) against the site folder's real
      // path: site.json is the owner's file like any other. The version is the descriptor's own
      // stat, so it is exactly the file read (an in-place write during the read makes it older).
      // A plain site.json (the usual case) tells the folder's real path from its descriptor, with
      // no realpath first; a symlinked one is read the careful way (links inside are followed).
      let read: ContainedText;
      let realDir: string | undefined;
      const direct = await readFolderEntry(join(sitesDir, id), SITE_CONFIG_FILE, { maxBytes: MAX_SITE_CONFIG_BYTES });
      if (direct.kind === 'link') {
        try {
          realDir = await fs.realpath(join(sitesDir, id));
        } catch (error) {
          if (isMissing(error)) return null;
          throw error;
        }
        read = await readContainedText(configPath(id), realDir, { maxBytes: MAX_SITE_CONFIG_BYTES });
      } else {
        read = direct;
        realDir = direct.kind === 'text' ? direct.realDir : undefined;
      }
      const dir = realDir === undefined ? {} : { dir: realDir };
      if (read.kind === 'missing') return null;
      if (read.kind === 'refused') {
        // The name's stat (it follows links, as the open did) gives the refused file a version
        // like any other, so callers that compare versions do not re-read it on every look.
        const version = read.reason === 'not-a-file' ? null : await configVersion(id);
        return version === null ? null : { text: '', version, refused: refusalReason(read), ...dir };
      }
      return { text: read.text, version: fingerprintOf(read.stats), ...dir };
    },
    siteDir: (id) => join(sitesDir, id),
    realSiteDir: (id) => fs.realpath(join(sitesDir, id)),
    async siteProblem(id) {
      const dir = join(sitesDir, id);
      const isDir = await fs.stat(dir).then((s) => s.isDirectory(), () => false);
      if (!isDir) return `no site folder ${dir}`;
      if ((await configVersion(id).catch(() => null)) === null) return `${dir} has no ${SITE_CONFIG_FILE}, so it is not a site`;
      return undefined;
    },
  };
}

/** A folder source for a sites folder path, or the source itself (for functions that take either). */
export function siteSourceOf(sites: string | SiteSource): SiteSource {
  return typeof sites === 'string' ? createFolderSiteSource(sites) : sites;
}

/**
 * Runs `work` over `items`, at most `concurrency` at a time, keeping the input order in the result.
 * Ten thousand file operations at once would queue behind every request's file I/O.
 */
export async function mapBounded<T, R>(items: readonly T[], concurrency: number, work: (item: T) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let cursor = 0;
  const run = async () => {
    while (cursor < items.length) {
      const i = cursor++;
      results[i] = await work(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, run));
  return results;
}
