import { closeSync, fstatSync, mkdirSync, openSync, readdirSync, readFileSync, readSync, realpathSync, renameSync, statSync, lstatSync, unlinkSync, writeFileSync, type Dirent, type Stats } from 'node:fs';
import * as promises from 'node:fs/promises';

/**
 * The file calls the request path makes on site content (site.json, pages, layouts, the CSS
 * manifest, Markdown cache entries), made one of two ways, chosen once at start (`CONTENT_IO`):
 *
 * - `sync` (the default): each call is made on the event loop, as Node's own module loader does
 *   (the platform's cache folders' small writes too: a rendered page, a Markdown render).
 *   On a local file system these files are small and in the page cache, so a call costs a few
 *   microseconds of CPU (~9 µs measured for open + fstat + read + close of a page on the 2-core
 *   test VM). The promise form of the same call is a thread-pool round trip (a promise, a hand-over
 *   to a libuv thread, a wake-up of the loop): ~30–55 µs of process CPU each on that VM, and a
 *   cold request makes about sixteen of them, which was most of what a cold site cost
 *   (bench/README.md, "Cold sites vs the compiled-in peer").
 * - `thread-pool`: the promise form (`node:fs/promises`), for content on a network file system
 *   (NFS, SMB, a cloud volume), where one call can wait a network round trip and must not hold
 *   the event loop meanwhile.
 *
 * What a site owner could make slow stays bounded either way: every read is of a file whose size
 * was checked on its descriptor first (site.json 256 KiB, pages 1 MiB), and a FIFO or a device
 * cannot block an open (contained-file.ts opens with O_NONBLOCK and refuses what is not a regular
 * file). Folder walks that can be long (the content gate's, the sitemap's) stay on the thread pool
 * in both modes.
 *
 * Errors are Node's own (`code` ENOENT, EACCES, …) in both modes, so callers test `code` as before.
 */
export type ContentIo = 'sync' | 'thread-pool';

/** An open file: the part of `FileHandle` the content readers use. */
export interface ContentHandle {
  readonly fd: number;
  stat(): Promise<Stats>;
  /** Reads up to `length` bytes at `position` (bytes) into `buffer` at `offset`. */
  read(buffer: Buffer, offset: number, length: number, position: number): Promise<{ bytesRead: number }>;
  close(): Promise<void>;
}

/**
 * Up to `bytes` bytes of an open file from its start, fewer if it ends first (a file shrinking
 * meanwhile): the buffer is never larger than the size the caller checked.
 */
export async function readFromStart(handle: ContentHandle, bytes: number): Promise<Buffer> {
  const buffer = Buffer.allocUnsafe(bytes);
  let filled = 0;
  while (filled < buffer.length) {
    const { bytesRead } = await handle.read(buffer, filled, buffer.length - filled, filled);
    if (bytesRead === 0) break;
    filled += bytesRead;
  }
  return buffer.subarray(0, filled);
}

export interface ContentFs {
  readonly mode: ContentIo;
  /** Opens `path` with numeric `flags` (`fs.constants`); the caller closes the handle. */
  open(path: string, flags: number): Promise<ContentHandle>;
  stat(path: string): Promise<Stats>;
  /** `stat`, with `undefined` where there is nothing at `path` (ENOENT, ENOTDIR): no error built for the usual miss. */
  statIfPresent(path: string): Promise<Stats | undefined>;
  lstat(path: string): Promise<Stats>;
  readdir(path: string): Promise<Dirent[]>;
  realpath(path: string): Promise<string>;
  /** The whole file as UTF-8 text. */
  readText(path: string): Promise<string>;
  /**
   * For the platform's own cache folders (cache-folder.ts), never a site's: writes `text` to a new
   * file (`mode`), renames one over another, removes one, makes a folder.
   */
  writeText(path: string, text: string, mode: number): Promise<void>;
  rename(from: string, to: string): Promise<void>;
  unlink(path: string): Promise<void>;
  mkdir(path: string, mode: number): Promise<void>;
}

/**
 * Runs a synchronous call with no stack trace captured for the error it may throw: a missing file
 * (a site without built CSS or a layout of its own, a page candidate) is an expected answer, on
 * every cold request, and capturing a stack for it cost more than the call (Node's UVException,
 * ~3.5 % of a cold pass's CPU). The error keeps its code, syscall and path; the callers test the
 * code and rethrow anything else with the path in its message.
 */
function quiet<T>(call: () => T): T {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    return call();
  } finally {
    Error.stackTraceLimit = limit;
  }
}

function syncHandle(fd: number): ContentHandle {
  let closed = false;
  return {
    fd,
    stat: async () => fstatSync(fd),
    read: async (buffer, offset, length, position) => ({ bytesRead: readSync(fd, buffer, offset, length, position) }),
    async close() {
      // Closing twice would close whatever descriptor took this number meanwhile.
      if (closed) return;
      closed = true;
      closeSync(fd);
    },
  };
}

const missingCodes = new Set(['ENOENT', 'ENOTDIR']);

const syncFs: ContentFs = {
  mode: 'sync',
  open: async (path, flags) => syncHandle(quiet(() => openSync(path, flags))),
  stat: async (path) => quiet(() => statSync(path)),
  async statIfPresent(path) {
    try {
      return quiet(() => statSync(path, { throwIfNoEntry: false }));
    } catch (error) {
      if (missingCodes.has((error as NodeJS.ErrnoException).code ?? '')) return undefined;
      throw error;
    }
  },
  lstat: async (path) => quiet(() => lstatSync(path)),
  readdir: async (path) => quiet(() => readdirSync(path, { withFileTypes: true })),
  realpath: async (path) => quiet(() => realpathSync.native(path)),
  readText: async (path) => quiet(() => readFileSync(path, 'utf8')),
  writeText: async (path, text, mode) => quiet(() => writeFileSync(path, text, { mode })),
  rename: async (from, to) => quiet(() => renameSync(from, to)),
  unlink: async (path) => quiet(() => unlinkSync(path)),
  mkdir: async (path, mode) => void quiet(() => mkdirSync(path, { recursive: true, mode })),
};

const threadPoolFs: ContentFs = {
  mode: 'thread-pool',
  open: (path, flags) => promises.open(path, flags),
  stat: (path) => promises.stat(path),
  async statIfPresent(path) {
    try {
      return await promises.stat(path);
    } catch (error) {
      if (missingCodes.has((error as NodeJS.ErrnoException).code ?? '')) return undefined;
      throw error;
    }
  },
  lstat: (path) => promises.lstat(path),
  readdir: (path) => promises.readdir(path, { withFileTypes: true }),
  realpath: (path) => promises.realpath(path),
  readText: (path) => promises.readFile(path, 'utf8'),
  writeText: (path, text, mode) => promises.writeFile(path, text, { mode }),
  rename: (from, to) => promises.rename(from, to),
  unlink: (path) => promises.unlink(path),
  mkdir: async (path, mode) => void (await promises.mkdir(path, { recursive: true, mode })),
};

/** A synchronous path call slower than this (ms) sends its site's calls to the thread pool. */
export const SLOW_CALL_MS = 1;
/** For this long (ms). */
export const SLOW_SITE_MS = 10 * 60_000;

export interface ContentIoOptions {
  /**
   * Folders whose direct children are sites (the sites folder, as named and as resolved): a path
   * below one belongs to the site named by its next segment. Paths elsewhere (the platform's own
   * cache folders) have no site and are always made as `mode` says.
   */
  siteRoots?: readonly string[];
  /** Threshold (ms) of a slow synchronous call; SLOW_CALL_MS unless set (tests set a negative one: every call is slow). */
  slowCallMs?: number;
  /** Told once each time a site is sent to the thread pool: which, how slow, what path. */
  onSlowSite?: (site: string, ms: number, path: string) => void;
  now?: () => number;
}

let options: ContentIoOptions = {};
/** Site → until when (ms, `now()`) its calls go through the thread pool. */
const slowSites = new Map<string, number>();

/**
 * Chooses how content file calls are made, for the whole process (the server calls it once at
 * start from `CONTENT_IO`; tests call it to run a suite both ways).
 *
 * In `sync` mode a site whose files are slow to look up is sent to the thread pool for
 * SLOW_SITE_MS, so no site can hold the event loop call after call. A site owner can make a
 * lookup slow without leaving the folder: a chain of 39 symlinks of ~4 KB of `x/../` each costs
 * ~1 ms per lookup here (against ~26 µs), and a request makes four or five (the attack review of
 * this mode). The first slow call is paid on the event loop; the site's next ones are not. A link
 * to a hung network mount (autofs, a dead NFS server) would still block that first call: on
 * machines with such mounts, run `thread-pool`.
 */
export function useContentIo(mode: ContentIo, ioOptions: ContentIoOptions = {}): void {
  current = mode === 'sync' ? guardedSyncFs : threadPoolFs;
  options = ioOptions;
  slowSites.clear();
}

/** The site a path belongs to, under one of the site roots; undefined elsewhere. */
function siteOf(path: string): string | undefined {
  for (const root of options.siteRoots ?? []) {
    if (path.length > root.length + 1 && path.startsWith(root) && path[root.length] === '/') {
      const end = path.indexOf('/', root.length + 1);
      return path.slice(root.length + 1, end === -1 ? undefined : end);
    }
  }
  return undefined;
}

/**
 * A path call made synchronously unless its site was slow lately; timed, and a slow one marks
 * its site. `thread` is the same call through the thread pool.
 */
function guarded<A extends unknown[], T>(sync: (path: string, ...rest: A) => Promise<T>, thread: (path: string, ...rest: A) => Promise<T>) {
  return (path: string, ...rest: A): Promise<T> => {
    const site = options.siteRoots ? siteOf(path) : undefined;
    if (site === undefined) return sync(path, ...rest);
    const now = options.now ?? Date.now;
    const until = slowSites.get(site);
    if (until !== undefined) {
      if (now() < until) return thread(path, ...rest);
      slowSites.delete(site);
    }
    const started = performance.now();
    const done = () => {
      const ms = performance.now() - started;
      if (ms > (options.slowCallMs ?? SLOW_CALL_MS)) {
        slowSites.set(site, now() + SLOW_SITE_MS);
        options.onSlowSite?.(site, ms, path);
      }
    };
    // The sync call has run by the time its promise is made: time it, whether it threw or not.
    const result = sync(path, ...rest);
    done();
    return result;
  };
}

const guardedSyncFs: ContentFs = {
  mode: 'sync',
  open: guarded(syncFs.open, threadPoolFs.open),
  stat: guarded(syncFs.stat, threadPoolFs.stat),
  statIfPresent: guarded(syncFs.statIfPresent, threadPoolFs.statIfPresent),
  lstat: guarded(syncFs.lstat, threadPoolFs.lstat),
  readdir: guarded(syncFs.readdir, threadPoolFs.readdir),
  realpath: guarded(syncFs.realpath, threadPoolFs.realpath),
  readText: guarded(syncFs.readText, threadPoolFs.readText),
  writeText: syncFs.writeText,
  rename: syncFs.rename,
  unlink: syncFs.unlink,
  mkdir: syncFs.mkdir,
};

let current: ContentFs = guardedSyncFs;

/** The content file calls in the mode chosen by `useContentIo` (`sync` until then). */
export const contentFs: ContentFs = {
  get mode() {
    return current.mode;
  },
  open: (path, flags) => current.open(path, flags),
  stat: (path) => current.stat(path),
  statIfPresent: (path) => current.statIfPresent(path),
  lstat: (path) => current.lstat(path),
  readdir: (path) => current.readdir(path),
  realpath: (path) => current.realpath(path),
  readText: (path) => current.readText(path),
  writeText: (path, text, mode) => current.writeText(path, text, mode),
  rename: (from, to) => current.rename(from, to),
  unlink: (path) => current.unlink(path),
  mkdir: (path, mode) => current.mkdir(path, mode),
};
