import { randomBytes } from 'node:crypto';
import { mkdir, realpath, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { constants } from 'node:fs';
import { contentFs, readFromStart } from './content-fs.ts';
import { isMissing } from './fs-fingerprint.ts';

/**
 * A private folder of content-addressed files, shared by the workers of a machine and kept across
 * restarts: the Markdown cache (markdown-cache.ts) and the component compile cache
 * (components/compile-cache.ts) are one each. It knows files, not what is in them.
 *
 * - `<dir>/<key[0..2]>/<key><extension>`, keys being 64 hex digits: 256 shard folders at most.
 * - Writes are whole or nothing: written to a temp name, then renamed over, so a reader in any
 *   worker sees a whole file or none, however many write the same key at once. A temp file left by
 *   a worker killed between write and rename is removed once it is 10 minutes old.
 * - Bounded: once the files (as this worker believes) pass `maxBytes`, the oldest-written are
 *   removed until under 80 % of it; other workers write too, so each prune re-reads the folder.
 * - The folder must be this user's alone (prepareCacheFolder): what it holds is served or run as
 *   is, and its keys are predictable. It is checked before every new shard folder is made (a
 *   cleaner may have removed it and someone else made it again); a folder that fails is given up
 *   until restart (`usable` false) with a warning.
 */
export interface CacheFolder {
  /** Where the file of `key` is (whether or not it exists). */
  pathOf(key: string): string;
  /**
   * The file of `key`, or undefined when there is none. Read only if it is a regular file of this
   * user that neither group nor others can write (checked on the descriptor it is read from): the
   * folder was checked when it was opened, and this keeps a file planted later (the folder removed
   * by a temp cleaner and made again by someone else) from being served or run. Other errors
   * than "not there" are thrown.
   */
  read(key: string): Promise<Buffer | undefined>;
  /** False once the folder has been refused: nothing is read or written from then on. */
  readonly usable: boolean;
  /** Makes the shard folder of `key`, checking the folder first; false when it is refused. */
  ensureShard(key: string): Promise<boolean>;
  /**
   * Writes `text` as the file of `key` (atomically) and prunes past the bound; false when the
   * folder is refused. File system errors (EACCES, ENOSPC …) are thrown for the owner to judge.
   */
  write(key: string, text: string): Promise<boolean>;
  /** Keeps a background task of the owner's (a write in flight) for `settle`. */
  track(task: Promise<unknown>): void;
  /** Waits for the tasks tracked and a running prune (tests, shutdown). */
  settle(): Promise<void>;
  readonly stats: Readonly<{ writes: number; pruned: number }>;
  /** `counts` with the folder's `writes` and `pruned` as read-only fields: an owner's stats. */
  withCounts<T extends object>(counts: T): T & { readonly writes: number; readonly pruned: number };
}

/**
 * True for a write error that retrying will not mend (no permission, a read-only or full file
 * system): the owner stops writing to the folder and warns once.
 */
export function isUnwritable(error: NodeJS.ErrnoException): boolean {
  return error.code === 'EACCES' || error.code === 'EROFS' || error.code === 'ENOSPC' || error.code === 'EPERM';
}

export interface CacheFolderOptions {
  dir: string;
  /** Upper bound of the files' total size (bytes). */
  maxBytes: number;
  /** `.html`, `.json`: the files' name ending, after the key. */
  extension: string;
  /** Called once when the folder is given up, with the reason. */
  onRefused?: (reason: string) => void;
}

const STALE_TEMP_MS = 10 * 60_000;
/** Files stat'ed or removed between two turns of the event loop in a scan or a prune. */
const STEP = 256;

const yieldToRequests = () => new Promise<void>((resolve) => setImmediate(resolve));

export function createCacheFolder(options: CacheFolderOptions): CacheFolder {
  const { dir, maxBytes, extension } = options;
  const escaped = extension.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const keyFile = new RegExp(`^[a-f0-9]{64}${escaped}$`);
  const tempFile = new RegExp(`^[a-f0-9]{64}${escaped}\\.\\d+\\.[a-f0-9]{8}\\.tmp$`);
  const stats = { writes: 0, pruned: 0 };
  const madeDirs = new Set<string>();
  let usable = true;
  // Bytes this worker believes are on disk: seeded by a scan, then counted as it writes.
  let knownBytes: number | undefined;
  let pruning: Promise<void> | undefined;
  const pending = new Set<Promise<unknown>>();

  const pathOf = (key: string) => join(dir, key.slice(0, 2), `${key}${extension}`);

  /**
   * Every file of the folder with its size and time: one stat per file, made the way CONTENT_IO
   * says (content-fs.ts: on a local disk ~10 µs each where a thread-pool stat cost ~50 µs of
   * process CPU), with the event loop let through after every shard folder and every STEP files,
   * so a folder of 100,000 pages never holds it for long.
   */
  async function listFiles(): Promise<Array<{ path: string; size: number; mtimeMs: number }>> {
    const files: Array<{ path: string; size: number; mtimeMs: number }> = [];
    const shards = await contentFs.readdir(dir).catch(() => []);
    for (const shard of shards.map((e) => e.name).sort()) {
      if (!/^[a-f0-9]{2}$/.test(shard)) continue;
      const names = (await contentFs.readdir(join(dir, shard)).catch(() => [])).map((e) => e.name);
      for (let i = 0; i < names.length; i++) {
        if (i % STEP === STEP - 1) await yieldToRequests();
        const name = names[i]!;
        const path = join(dir, shard, name);
        if (tempFile.test(name)) {
          const s = await contentFs.statIfPresent(path).catch(() => undefined);
          if (s && Date.now() - s.mtimeMs > STALE_TEMP_MS) await contentFs.unlink(path).catch(() => {});
          continue;
        }
        if (!keyFile.test(name)) continue;
        const s = await contentFs.statIfPresent(path).catch(() => undefined);
        if (s?.isFile()) files.push({ path, size: s.size, mtimeMs: s.mtimeMs });
      }
      await yieldToRequests();
    }
    return files;
  }

  /** Drops the oldest-written files until the folder is under 80 % of its bound. */
  function prune(): Promise<void> {
    pruning ??= (async () => {
      const files = await listFiles();
      let total = files.reduce((sum, f) => sum + f.size, 0);
      if (total > maxBytes) {
        files.sort((a, b) => a.mtimeMs - b.mtimeMs);
        let removed = 0;
        for (const file of files) {
          if (total <= maxBytes * 0.8) break;
          await contentFs.unlink(file.path).then(() => stats.pruned++, () => {});
          total -= file.size;
          if (++removed % STEP === 0) await yieldToRequests();
        }
      }
      knownBytes = total;
    })().finally(() => {
      pruning = undefined;
    });
    return pruning;
  }

  async function ensureFolder(folder: string): Promise<boolean> {
    if (!usable) return false;
    if (madeDirs.has(folder)) return true;
    const checked = await prepareCacheFolder(dir);
    if (!checked.ok) {
      usable = false;
      options.onRefused?.(checked.reason);
      return false;
    }
    await contentFs.mkdir(folder, 0o700);
    madeDirs.add(folder);
    return true;
  }

  const uid = process.getuid?.();
  const READ_FLAGS = constants.O_RDONLY | (constants.O_NOFOLLOW ?? 0) | (constants.O_NONBLOCK ?? 0);

  async function read(key: string): Promise<Buffer | undefined> {
    let handle;
    try {
      handle = await contentFs.open(pathOf(key), READ_FLAGS);
    } catch (error) {
      if (isMissing(error)) return undefined;
      throw error;
    }
    try {
      const s = await handle.stat();
      if (!s.isFile() || (uid !== undefined && s.uid !== uid) || (s.mode & 0o022) !== 0) return undefined;
      return await readFromStart(handle, s.size);
    } finally {
      await handle.close();
    }
  }

  return {
    pathOf,
    read,
    get usable() {
      return usable;
    },
    ensureShard: (key) => ensureFolder(dirname(pathOf(key))),
    async write(key, text) {
      // The write itself goes the way CONTENT_IO says (content-fs.ts): on a local disk a 3 KB page
      // written and renamed synchronously cost ~40 µs, where four thread-pool round trips (open,
      // write, close, rename) cost ~550 µs of process CPU per page in a cold pass.
      const path = pathOf(key);
      const folder = dirname(path);
      if (!(await ensureFolder(folder))) return false;
      const temp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
      try {
        await contentFs.writeText(temp, text, 0o600);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
        // The folder went away under us (a temp-folder cleaner, an operator): check and make it again, once.
        madeDirs.clear();
        if (!(await ensureFolder(folder))) return false;
        await contentFs.writeText(temp, text, 0o600);
      }
      try {
        await contentFs.rename(temp, path);
      } catch (error) {
        await contentFs.unlink(temp).catch(() => {});
        throw error;
      }
      stats.writes++;
      if (knownBytes !== undefined) knownBytes += Buffer.byteLength(text);
      if (knownBytes === undefined || knownBytes > maxBytes) void prune().catch(() => {});
      return true;
    },
    track(task) {
      pending.add(task);
      void task.finally(() => pending.delete(task)).catch(() => {});
    },
    async settle() {
      while (pending.size > 0 || pruning) {
        await Promise.allSettled([...pending]);
        if (pruning) await pruning.catch(() => {});
      }
    },
    stats,
    withCounts(counts) {
      return Object.defineProperties(counts, {
        writes: { get: () => stats.writes, enumerable: true },
        pruned: { get: () => stats.pruned, enumerable: true },
      }) as typeof counts & { readonly writes: number; readonly pruned: number };
    },
  };
}

/**
 * Makes the cache folder (mode 0700) and checks it is this user's alone. What a cache folder holds
 * is served or run as is, and keys are predictable from public text, so a folder that someone else
 * owns or can write to would let them plant content: such a folder is refused, with the reason.
 * So is one below a folder that someone else owns or can write to (unless it is sticky, as the
 * system temp folder is): they could rename the checked folder away and put their own in its
 * place, and reads are not checked again. The default parent, `<tmp>/astro-multi-tenant-<uid>`,
 * is a name any local user can make first.
 */
export async function prepareCacheFolder(dir: string): Promise<{ ok: true } | { ok: false; reason: string }> {
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const s = await stat(dir);
    const uid = process.getuid?.();
    if (!s.isDirectory()) return { ok: false, reason: 'not a folder' };
    if (uid !== undefined && s.uid !== uid) return { ok: false, reason: `owned by uid ${s.uid}, not this process (uid ${uid})` };
    if ((s.mode & 0o022) !== 0) return { ok: false, reason: `writable by group or others (mode ${(s.mode & 0o777).toString(8)})` };
    // Above it, as named and as it really is (a link on the way leads elsewhere).
    for (const start of [dir, await realpath(dir)]) {
      for (let above = dirname(start); ; above = dirname(above)) {
        const problem = ancestorProblem(await stat(above), uid);
        if (problem) return { ok: false, reason: `${above} (above it) ${problem}` };
        if (dirname(above) === above) break;
      }
    }
    return { ok: true };
  } catch (error) {
    return { ok: false, reason: (error as NodeJS.ErrnoException).code ?? (error as Error).message };
  }
}

/**
 * `open()` (a cache on `dir`) when the folder passes prepareCacheFolder; otherwise undefined, after
 * telling `refused` why: the caller then works without a cache.
 */
export async function openIfPrivate<T>(dir: string, open: () => T, refused: (reason: string) => void): Promise<T | undefined> {
  const checked = await prepareCacheFolder(dir);
  if (checked.ok) return open();
  refused(checked.reason);
  return undefined;
}

/** Why a folder above a cache folder lets someone else replace what is below it; undefined when it does not. */
function ancestorProblem(s: import('node:fs').Stats, uid: number | undefined): string | undefined {
  if (uid !== undefined && s.uid !== uid && s.uid !== 0) return `is owned by uid ${s.uid}, neither this process (uid ${uid}) nor root`;
  const sticky = (s.mode & 0o1000) !== 0;
  if ((s.mode & 0o022) !== 0 && !sticky) return `is writable by group or others and not sticky (mode ${(s.mode & 0o777).toString(8)})`;
  return undefined;
}
