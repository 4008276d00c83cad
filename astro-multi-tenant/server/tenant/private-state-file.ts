import { randomBytes } from 'node:crypto';
import * as nodeFs from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { PlatformError } from '../errors.ts';

/** The file system calls a state file makes; injectable so tests can fake an unsafe folder. */
export interface StateFs {
  mkdir(path: string, options: { recursive: true; mode: number }): Promise<unknown>;
  lstat(path: string): Promise<{ isDirectory(): boolean; isFile(): boolean; isSymbolicLink(): boolean; uid: number; mode: number; ino: number; size: number; mtimeMs: number }>;
  readFile(path: string, encoding: 'utf8'): Promise<string>;
  writeFile(path: string, data: string, options: { mode: number; flag: string }): Promise<void>;
  /** For flushing: the temp file before its rename, the folder after it. */
  open(path: string, flags: string, mode?: number): Promise<{ writeFile(data: string): Promise<void>; sync(): Promise<void>; close(): Promise<void> }>;
  rename(from: string, to: string): Promise<void>;
  unlink(path: string): Promise<void>;
}

export interface PrivateStateFileOptions<T> {
  /** STATE_DIR: a folder only this user may use (created 0700 when missing; refused when it is not private). */
  dir: string;
  /** The file's name inside `dir`. */
  name: string;
  /** What the records are, for messages ("host claims", "domain state"). */
  label: string;
  /** The records when the file does not exist yet. */
  empty: () => T;
  /** Checks a parsed file; returns undefined when this version cannot read it. */
  parse: (json: unknown) => T | undefined;
  fs?: StateFs;
  /** Give up waiting for another process's lock after this long (ms). Default 5,000. */
  lockTimeoutMs?: number;
  /** A lock older than this (ms) was left by a process that died while holding it. Default 10,000. */
  staleLockMs?: number;
  uid?: number;
}

export interface PrivateStateFile<T> {
  /** The file's path, for messages. */
  readonly location: string;
  /** A cheap identity of the file's content (inode, size, mtime), `none` while it does not exist. */
  version(): Promise<string>;
  read(): Promise<T>;
  /** Reads, changes and writes the records under the lock; `change` returns changed=false to write nothing. */
  update<R>(change: (records: T) => { changed: boolean; result: R }): Promise<R>;
}

const isMissing = (error: unknown) => (error as NodeJS.ErrnoException).code === 'ENOENT';

/**
 * A JSON file of the platform's own records in STATE_DIR, shared by the processes of one machine
 * (the workers of a PM2 cluster and `npm run sites`).
 *
 * Why a private folder: these records decide which tenant answers a host, so a file another local
 * user could write would let them move hosts between sites. The folder must be a real folder (not a
 * symlink) owned by this user with no group or other permission bits, and its parent owned by this
 * user or root; the file a regular file owned by this user, mode 0600. Anything else is refused
 * with CONFIG_INVALID naming STATE_DIR, never repaired silently.
 *
 * Writers take a lock file (`O_CREAT|O_EXCL`), read, change and write a temp file renamed over the
 * records (readers never see half a file), then drop the lock. A lock older than `staleLockMs` is
 * taken over: a process killed while holding it cannot stop the others for long.
 */
export function openPrivateStateFile<T>(options: PrivateStateFileOptions<T>): PrivateStateFile<T> {
  const fs = options.fs ?? (nodeFs as unknown as StateFs);
  const uid = options.uid ?? process.getuid?.() ?? 0;
  const dir = resolve(options.dir);
  const file = join(dir, options.name);
  const lockFile = `${file}.lock`;
  const lockTimeoutMs = options.lockTimeoutMs ?? 5000;
  const staleLockMs = options.staleLockMs ?? 10_000;
  let ready: Promise<void> | undefined;

  const unsafe = (path: string, why: string) => new PlatformError('CONFIG_INVALID', `STATE_DIR: ${path} ${why}; it must be a folder only this user can use (mode 0700)`, path);

  async function checkDir(): Promise<void> {
    await fs.mkdir(dir, { recursive: true, mode: 0o700 });
    const s = await fs.lstat(dir);
    if (s.isSymbolicLink() || !s.isDirectory()) throw unsafe(dir, 'is not a folder (a symlink is not accepted)');
    if (s.uid !== uid) throw unsafe(dir, `belongs to uid ${s.uid}, not to this user (${uid})`);
    if ((s.mode & 0o077) !== 0) throw unsafe(dir, `has mode ${(s.mode & 0o777).toString(8)}`);
    const parent = await fs.lstat(dirname(dir));
    if (parent.uid !== uid && parent.uid !== 0) throw unsafe(dirname(dir), `(the parent of the state folder) belongs to uid ${parent.uid}, who could replace it`);
  }

  const prepared = () => (ready ??= checkDir().catch((error) => {
    ready = undefined;
    throw error;
  }));

  async function read(): Promise<T> {
    await prepared();
    let s;
    try {
      s = await fs.lstat(file);
    } catch (error) {
      if (isMissing(error)) return options.empty();
      throw error;
    }
    if (!s.isFile() || s.uid !== uid || (s.mode & 0o077) !== 0) throw unsafe(file, 'is not a private regular file of this user');
    let json: unknown;
    try {
      json = JSON.parse(await fs.readFile(file, 'utf8'));
    } catch (error) {
      if (!(error instanceof SyntaxError)) throw error;
      throw new PlatformError('CONFIG_INVALID', `STATE_DIR: ${file} is not valid JSON (${error.message}): the ${options.label} file was cut short or damaged; move it aside and the records start empty`, file);
    }
    const records = options.parse(json);
    if (records === undefined) throw new PlatformError('CONFIG_INVALID', `STATE_DIR: ${file} is not a ${options.label} file this version can read`, file);
    return records;
  }

  async function lock(): Promise<void> {
    const started = Date.now();
    for (let attempt = 0; ; attempt++) {
      try {
        await fs.writeFile(lockFile, String(process.pid), { mode: 0o600, flag: 'wx' });
        return;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      }
      const held = await fs.lstat(lockFile).catch(() => undefined);
      if (held && Date.now() - held.mtimeMs > staleLockMs) {
        await fs.unlink(lockFile).catch(() => {});
        continue;
      }
      if (Date.now() - started > lockTimeoutMs) throw new Error(`${options.label}: ${lockFile} is held by another process for more than ${lockTimeoutMs} ms`);
      await new Promise((r) => setTimeout(r, Math.min(50, 2 + attempt * 2)));
    }
  }

  /**
   * Writes a new private file and flushes it to disk before it is renamed over the records: without
   * the flush, a machine that crashes soon after the rename can come back with the new name on an
   * empty or partial file, and every record (host owners, domain states, certificates and keys) is
   * unreadable.
   */
  async function writeDurably(path: string, data: string): Promise<void> {
    const handle = await fs.open(path, 'wx', 0o600);
    try {
      await handle.writeFile(data);
      await handle.sync();
    } catch (error) {
      await handle.close().catch(() => {});
      await fs.unlink(path).catch(() => {});
      throw error;
    }
    await handle.close();
  }

  async function syncFolder(): Promise<void> {
    const handle = await fs.open(dir, 'r');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  }

  return {
    location: file,
    async version() {
      await prepared();
      try {
        const s = await fs.lstat(file);
        return `${s.ino}:${s.size}:${s.mtimeMs}`;
      } catch (error) {
        if (isMissing(error)) return 'none';
        throw error;
      }
    },
    read,
    async update(change) {
      await prepared();
      await lock();
      try {
        const records = await read();
        const { changed, result } = change(records);
        if (changed) {
          const temp = `${file}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
          await writeDurably(temp, `${JSON.stringify(records, null, 1)}\n`);
          await fs.rename(temp, file);
          // The rename itself reaches the disk with the folder's entry.
          await syncFolder();
        }
        return result;
      } finally {
        await fs.unlink(lockFile).catch(() => {});
      }
    },
  };
}
