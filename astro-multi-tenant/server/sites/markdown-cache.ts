import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdir, readFile, readdir, rename, stat, unlink, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MarkdownRefused } from './markdown-renderer.ts';

/**
 * Rendered Markdown on disk, shared by every worker on a machine and kept across restarts.
 *
 * Rendering Markdown (unified: micromark, GFM, rehype, the sanitiser) is most of a cold page load:
 * about 1.5 ms and 2 MB of short-lived objects per page, and that garbage is what grew a worker's
 * heap (and RSS) and put scavenge pauses into the cold-load p99. After a reload or a restart every
 * worker starts cold while almost no page has changed; with this cache a cold page is one
 * `readFile` of its HTML.
 *
 * Content-addressed: the key is a hash of the pipeline's identity and the Markdown text, so the
 * same text always maps to the same sanitised HTML (the pipeline is a pure function of the text),
 * an edit is a new key (nothing to invalidate), and a new build or dependency version is a new
 * key space. Two sites with the same text share an entry, which is safe for the same reason.
 */
export interface MarkdownCache {
  /**
   * Renders through the cache: a hit reads a file, a miss renders and writes it in the background.
   * Rejects with MarkdownRefused for a text whose render was refused, now or remembered on disk.
   */
  render(markdown: string, owner?: string): Promise<string>;
  /** Waits for background writes and pruning (tests, shutdown). */
  settle(): Promise<void>;
  /** `refusals`: hits that were a remembered refusal (counted in `hits` too). */
  readonly stats: Readonly<{ hits: number; misses: number; writes: number; writeErrors: number; pruned: number; refusals: number }>;
}

export interface MarkdownCacheOptions {
  dir: string;
  /** Upper bound of the files' total size; the oldest-written files go first past it. */
  maxBytes: number;
  /** `owner` (a site id) is passed through: the renderer takes owners in turn. */
  render: (markdown: string, owner?: string) => Promise<string>;
  /** Identity of the renderer (code + dependency versions): part of every key. */
  pipelineId: string;
  onWarning?: (message: string, details: Record<string, unknown>) => void;
}

export function markdownCacheKey(pipelineId: string, markdown: string): string {
  return createHash('sha256').update(pipelineId).update('\0').update(markdown).digest('hex');
}

/** Keys are hex: the first two characters fan files out over 256 folders. */
/**
 * True when `journal` names a render whose process is gone: it stopped mid-render. A journal of a
 * live process (another worker rendering the same text now) or of this one is no evidence.
 */
export async function crashedWhileRendering(journal: string): Promise<boolean> {
  let text: string;
  try {
    text = await readFile(journal, 'utf8');
  } catch {
    return false;
  }
  const pid = Number(text.trim());
  if (!Number.isInteger(pid) || pid <= 0) return false;
  if (pid === process.pid) return false;
  try {
    process.kill(pid, 0);
    return false;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'ESRCH';
  }
}

export function markdownCachePath(dir: string, key: string): string {
  return join(dir, key.slice(0, 2), `${key}.html`);
}

/**
 * A cache file starting with this holds the reason a text was refused instead of its HTML. Rendered
 * HTML never contains U+0000: CommonMark (§2.3) and the HTML parser (parse5) both replace it with
 * U+FFFD, so no page can look like a refusal.
 */
const REFUSED_MARK = '\u0000refused\n';

function refusalOf(cached: string): string | undefined {
  return cached.startsWith(REFUSED_MARK) ? cached.slice(REFUSED_MARK.length) : undefined;
}

const KEY_FILE = /^[a-f0-9]{64}\.html$/;
const TEMP_FILE = /^[a-f0-9]{64}\.html\.\d+\.[a-f0-9]{8}\.tmp$/;
const STALE_TEMP_MS = 10 * 60_000;

export function createMarkdownCache(options: MarkdownCacheOptions): MarkdownCache {
  const { dir, maxBytes } = options;
  const stats = { hits: 0, misses: 0, writes: 0, writeErrors: 0, pruned: 0, refusals: 0 };
  const pending = new Set<Promise<unknown>>();
  const madeDirs = new Set<string>();
  let writable = true;
  // Set when the folder can no longer be trusted: neither read nor written from then on.
  let disabled = false;
  // Bytes this worker believes are on disk: seeded by a scan, then counted as it writes. Other
  // workers write too, so it is an estimate; every prune re-reads the truth from the folder.
  let knownBytes: number | undefined;
  let pruning: Promise<void> | undefined;

  const track = <T>(promise: Promise<T>): Promise<T> => {
    pending.add(promise);
    void promise.finally(() => pending.delete(promise)).catch(() => {});
    return promise;
  };

  async function listFiles(): Promise<Array<{ path: string; size: number; mtimeMs: number }>> {
    const files: Array<{ path: string; size: number; mtimeMs: number }> = [];
    let shards: string[];
    try {
      shards = await readdir(dir);
    } catch {
      return files;
    }
    for (const shard of shards) {
      if (!/^[a-f0-9]{2}$/.test(shard)) continue;
      let names: string[];
      try {
        names = await readdir(join(dir, shard));
      } catch {
        continue;
      }
      for (const name of names) {
        if (TEMP_FILE.test(name)) {
          // Left by a worker killed between write and rename: drop it once it is clearly stale.
          const path = join(dir, shard, name);
          const s = await stat(path).catch(() => undefined);
          if (s && Date.now() - s.mtimeMs > STALE_TEMP_MS) await unlink(path).catch(() => {});
          continue;
        }
        if (!KEY_FILE.test(name)) continue;
        const path = join(dir, shard, name);
        const s = await stat(path).catch(() => undefined);
        if (s?.isFile()) files.push({ path, size: s.size, mtimeMs: s.mtimeMs });
      }
    }
    return files;
  }

  /** Drops the oldest-written files until the folder is under 80 % of its bound. */
  function prune(): Promise<void> {
    pruning ??= track(
      (async () => {
        const files = await listFiles();
        let total = files.reduce((sum, f) => sum + f.size, 0);
        if (total > maxBytes) {
          files.sort((a, b) => a.mtimeMs - b.mtimeMs);
          for (const file of files) {
            if (total <= maxBytes * 0.8) break;
            await unlink(file.path).then(() => stats.pruned++, () => {});
            total -= file.size;
          }
        }
        knownBytes = total;
      })().finally(() => {
        pruning = undefined;
      }),
    );
    return pruning;
  }

  /**
   * Makes a shard folder, first checking that the cache folder is still ours alone (a cleaner may
   * have removed it and someone else made it again): up to 256 checks per process, one stat each.
   */
  async function ensureFolder(folder: string): Promise<boolean> {
    if (madeDirs.has(folder)) return true;
    const checked = await prepareMarkdownCacheDir(dir);
    if (!checked.ok) {
      disabled = true;
      options.onWarning?.(`Markdown cache folder is not usable (${checked.reason}); cache off until restart`, { dir, reason: checked.reason });
      return false;
    }
    await mkdir(folder, { recursive: true, mode: 0o700 });
    madeDirs.add(folder);
    return true;
  }

  /** Writes this process's pid into a render's journal; false when it cannot (the render still runs). */
  async function journalRender(journal: string): Promise<boolean> {
    if (disabled || !(await ensureFolder(dirname(journal)))) return false;
    return writeFile(journal, String(process.pid), { mode: 0o600 }).then(
      () => true,
      () => false,
    );
  }

  async function write(key: string, html: string): Promise<void> {
    const path = markdownCachePath(dir, key);
    const folder = dirname(path);
    if (disabled || !(await ensureFolder(folder))) return;
    // Write-then-rename: a reader sees the whole file or none, even with several workers writing
    // the same key at once.
    const temp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
    try {
      await writeFile(temp, html, { mode: 0o600 });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
      // The folder went away under us (a temp-folder cleaner, an operator): check and make it again, once.
      madeDirs.clear();
      if (!(await ensureFolder(folder))) return;
      await writeFile(temp, html, { mode: 0o600 });
    }
    try {
      await rename(temp, path);
    } catch (error) {
      await unlink(temp).catch(() => {});
      throw error;
    }
    stats.writes++;
    if (knownBytes !== undefined) knownBytes += Buffer.byteLength(html);
    if (knownBytes === undefined || knownBytes > maxBytes) void prune().catch(() => {});
  }


  return {
    async render(markdown, owner) {
      if (disabled) return options.render(markdown, owner);
      const key = markdownCacheKey(options.pipelineId, markdown);
      let cached: string | undefined;
      try {
        cached = await readFile(markdownCachePath(dir, key), 'utf8');
      } catch {
        // Missing (the usual miss) or unreadable: render, as if there were no cache.
      }
      if (cached !== undefined) {
        stats.hits++;
        const refusal = refusalOf(cached);
        if (refusal !== undefined) {
          stats.refusals++;
          throw new MarkdownRefused(refusal, true);
        }
        return cached;
      }
      stats.misses++;
      // A render thread that reaches its heap limit is normally stopped, but V8 can abort the whole
      // process instead. So a render in flight is journalled (`<key>.rendering` holds the pid): a
      // journal whose process is gone means this text took a process down, and it is refused from
      // then on, like any text refused for what it is, instead of crashing every worker in turn.
      const journal = `${markdownCachePath(dir, key)}.rendering`;
      if (writable && (await crashedWhileRendering(journal))) {
        const reason = 'made a render thread run out of memory and stop its server process';
        track(write(key, REFUSED_MARK + reason).catch(() => stats.writeErrors++));
        await unlink(journal).catch(() => {});
        stats.refusals++;
        throw new MarkdownRefused(reason, true);
      }
      const journalled = writable ? await journalRender(journal) : false;
      let html: string;
      try {
        html = await options.render(markdown, owner);
      } catch (error) {
        // A text refused for what it is (markdown-renderer.ts) is refused again by every worker
        // and after a restart at the cost of one read, never rendered again.
        if (error instanceof MarkdownRefused && error.lasting && writable) track(write(key, REFUSED_MARK + error.reason).catch(() => stats.writeErrors++));
        throw error;
      } finally {
        if (journalled) await unlink(journal).catch(() => {});
      }
      if (writable) {
        track(
          write(key, html).catch((error: NodeJS.ErrnoException) => {
            stats.writeErrors++;
            if (error.code === 'EACCES' || error.code === 'EROFS' || error.code === 'ENOSPC' || error.code === 'EPERM') {
              // A folder we cannot write to will not get better by retrying on every page.
              writable = false;
              options.onWarning?.('Markdown cache folder is not writable; rendering every cold page (set MARKDOWN_CACHE_DIR)', { dir, code: error.code });
            }
          }),
        );
      }
      return html;
    },
    async settle() {
      while (pending.size > 0) await Promise.allSettled([...pending]);
    },
    stats,
  };
}

/**
 * Checks the folder (prepareMarkdownCacheDir) and opens the cache on it; a folder that is refused
 * gives no cache, with a warning naming the reason, and every cold page is rendered.
 */
export async function openMarkdownCache(options: MarkdownCacheOptions): Promise<MarkdownCache | undefined> {
  const checked = await prepareMarkdownCacheDir(options.dir);
  if (checked.ok) return createMarkdownCache(options);
  options.onWarning?.('Markdown cache folder refused; rendering every cold page (set MARKDOWN_CACHE_DIR to a private folder)', { dir: options.dir, reason: checked.reason });
  return undefined;
}

/**
 * Makes the cache folder (mode 0700) and checks it is this user's alone. Cached HTML is served
 * as-is, and keys are predictable from public page text, so a folder that someone else owns or
 * can write to would let them plant HTML: such a folder is refused, with the reason.
 */
export async function prepareMarkdownCacheDir(dir: string): Promise<{ ok: true } | { ok: false; reason: string }> {
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const s = await stat(dir);
    const uid = process.getuid?.();
    if (!s.isDirectory()) return { ok: false, reason: 'not a folder' };
    if (uid !== undefined && s.uid !== uid) return { ok: false, reason: `owned by uid ${s.uid}, not this process (uid ${uid})` };
    if ((s.mode & 0o022) !== 0) return { ok: false, reason: `writable by group or others (mode ${(s.mode & 0o777).toString(8)})` };
    return { ok: true };
  } catch (error) {
    return { ok: false, reason: (error as NodeJS.ErrnoException).code ?? (error as Error).message };
  }
}

/**
 * The renderer's identity: the pipeline's source modules and the installed version of every
 * package in it. A deploy that changes either renders afresh instead of serving old HTML.
 */
export function markdownPipelineId(moduleUrls: string | readonly string[], packages: readonly string[]): string {
  const hash = createHash('sha256');
  for (const url of typeof moduleUrls === 'string' ? [moduleUrls] : moduleUrls) hash.update(readFileSync(fileURLToPath(url)));
  for (const name of packages) hash.update(`\0${name}@${installedVersion(name)}`);
  return hash.digest('hex').slice(0, 32);
}

/** The version in a package's package.json, found by walking up from its resolved entry. */
function installedVersion(name: string): string {
  try {
    let folder = dirname(fileURLToPath(import.meta.resolve(name)));
    for (let i = 0; i < 8; i++) {
      try {
        const pkg = JSON.parse(readFileSync(join(folder, 'package.json'), 'utf8')) as { name?: string; version?: string };
        if (pkg.name === name) return pkg.version ?? 'unknown';
      } catch {
        // not here; keep walking up
      }
      folder = dirname(folder);
    }
  } catch {
    // unresolvable: still a stable identity for this install
  }
  return 'unknown';
}
