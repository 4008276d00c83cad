import { createHash, randomBytes } from 'node:crypto';
import * as nodeFs from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { PlatformError } from '../errors.ts';

/**
 * Who owns a custom host: the site that served it first, recorded so that a newcomer listing the
 * same host is refused until the owner drops it, on every worker, after any restart, whatever the
 * site ids. One record per host: `host → site id`.
 *
 * The store is the one place every process serving a sites folder agrees on. This file has two:
 * a private JSON file (one machine: the workers of a PM2 cluster and `npm run sites`), and an
 * in-process map (tests, one-shot commands that must not write state). A shared store (Redis, for
 * several machines) implements the same interface; the custom-domain ownership checks keep their
 * state next to these records.
 *
 * Every operation is atomic per host across the processes sharing the store: of two processes
 * claiming one free host at once, exactly one is recorded and both are told which.
 */
export interface ClaimStore {
  /** Where the records live, for messages. */
  readonly location: string;
  /** A cheap identity of the records: it changes whenever a record is added or removed. */
  version(): Promise<string>;
  /** Every record: host → owning site id. */
  load(): Promise<Map<string, string>>;
  /**
   * For each `host → site`: records `site` as the owner unless an owner is already recorded.
   * Returns the owner of each of those hosts afterwards (the candidate, or whoever held it).
   */
  claim(candidates: ReadonlyMap<string, string>): Promise<Map<string, string>>;
  /** For each `host → site`: deletes the record if it still names that site (compare and delete). */
  release(records: ReadonlyMap<string, string>): Promise<void>;
}

/** A store kept in this process only: for tests and for commands that only read. */
export function createMemoryClaimStore(initial: Iterable<[string, string]> = []): ClaimStore {
  const records = new Map(initial);
  let changes = 0;
  return {
    location: '(memory)',
    version: async () => String(changes),
    load: async () => new Map(records),
    async claim(candidates) {
      const out = new Map<string, string>();
      for (const [host, site] of candidates) {
        if (!records.has(host)) {
          records.set(host, site);
          changes++;
        }
        out.set(host, records.get(host)!);
      }
      return out;
    },
    async release(owned) {
      for (const [host, site] of owned) {
        if (records.get(host) === site) {
          records.delete(host);
          changes++;
        }
      }
    },
  };
}

/** The file system calls the file store makes; injectable so tests can fake an unsafe folder. */
export interface ClaimFs {
  mkdir(path: string, options: { recursive: true; mode: number }): Promise<unknown>;
  lstat(path: string): Promise<{ isDirectory(): boolean; isFile(): boolean; isSymbolicLink(): boolean; uid: number; mode: number; ino: number; size: number; mtimeMs: number }>;
  readFile(path: string, encoding: 'utf8'): Promise<string>;
  writeFile(path: string, data: string, options: { mode: number; flag: string }): Promise<void>;
  rename(from: string, to: string): Promise<void>;
  unlink(path: string): Promise<void>;
}

export interface FileClaimStoreOptions {
  /** STATE_DIR: a folder only this user may use (created 0700 when missing; refused when it is not private). */
  dir: string;
  /** The sites folder the records are about: each sites folder gets its own file. */
  sitesDir: string;
  fs?: ClaimFs;
  /** Give up waiting for another process's lock after this long (ms). Default 5,000. */
  lockTimeoutMs?: number;
  /** A lock older than this (ms) was left by a process that died while holding it. Default 10,000. */
  staleLockMs?: number;
  uid?: number;
}

interface ClaimFile {
  format: 1;
  sitesDir: string;
  /** host → owner and when it was recorded (ISO 8601). */
  claims: Record<string, { site: string; since: string }>;
}

const isMissing = (error: unknown) => (error as NodeJS.ErrnoException).code === 'ENOENT';

/**
 * The records of one sites folder in a private JSON file, `<dir>/host-claims-<hash>.json`, where
 * the hash is of the sites folder's absolute path (so two hosts on one machine serving different
 * folders never share records).
 *
 * Why a file in a private folder: the records decide which tenant answers a host, so a file another
 * local user could write would let them move hosts between sites. The folder must be a real folder
 * (not a symlink) owned by this user with no group or other permission bits, and its parent owned by
 * this user or root; the file a regular file owned by this user, mode 0600. Anything else is refused
 * with CONFIG_INVALID naming STATE_DIR, never repaired silently.
 *
 * Writers take a lock file (`O_CREAT|O_EXCL`), read, change and write a temp file renamed over the
 * records (readers never see half a file), then drop the lock. A lock older than `staleLockMs` is
 * taken over: a process killed while holding it cannot stop the others for long.
 */
export function createFileClaimStore(options: FileClaimStoreOptions): ClaimStore {
  const fs = options.fs ?? (nodeFs as unknown as ClaimFs);
  const uid = options.uid ?? process.getuid?.() ?? 0;
  const dir = resolve(options.dir);
  const sitesDir = resolve(options.sitesDir);
  const file = join(dir, `host-claims-${createHash('sha256').update(sitesDir).digest('hex').slice(0, 16)}.json`);
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

  async function readRecords(): Promise<ClaimFile> {
    await prepared();
    let s;
    try {
      s = await fs.lstat(file);
    } catch (error) {
      if (isMissing(error)) return { format: 1, sitesDir, claims: {} };
      throw error;
    }
    if (!s.isFile() || s.uid !== uid || (s.mode & 0o077) !== 0) throw unsafe(file, 'is not a private regular file of this user');
    const parsed = JSON.parse(await fs.readFile(file, 'utf8')) as Partial<ClaimFile>;
    if (parsed.format !== 1 || typeof parsed.claims !== 'object' || parsed.claims === null) {
      throw new PlatformError('CONFIG_INVALID', `STATE_DIR: ${file} is not a host claims file this version can read`, file);
    }
    const claims: ClaimFile['claims'] = {};
    for (const [host, record] of Object.entries(parsed.claims)) {
      if (record && typeof record.site === 'string') claims[host] = { site: record.site, since: String(record.since ?? '') };
    }
    return { format: 1, sitesDir, claims };
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
      if (Date.now() - started > lockTimeoutMs) throw new Error(`host claims: ${lockFile} is held by another process for more than ${lockTimeoutMs} ms`);
      await new Promise((r) => setTimeout(r, Math.min(50, 2 + attempt * 2)));
    }
  }

  /** Read, change and write the records under the lock; `change` returns false when nothing changed. */
  async function update<T>(change: (records: ClaimFile) => { changed: boolean; result: T }): Promise<T> {
    await prepared();
    await lock();
    try {
      const records = await readRecords();
      const { changed, result } = change(records);
      if (changed) {
        const temp = `${file}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
        await fs.writeFile(temp, `${JSON.stringify(records, null, 1)}\n`, { mode: 0o600, flag: 'wx' });
        await fs.rename(temp, file);
      }
      return result;
    } finally {
      await fs.unlink(lockFile).catch(() => {});
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
    async load() {
      const records = await readRecords();
      return new Map(Object.entries(records.claims).map(([host, r]) => [host, r.site]));
    },
    claim(candidates) {
      return update((records) => {
        let changed = false;
        const out = new Map<string, string>();
        const since = new Date().toISOString();
        for (const [host, site] of candidates) {
          if (!Object.hasOwn(records.claims, host)) {
            records.claims[host] = { site, since };
            changed = true;
          }
          out.set(host, records.claims[host]!.site);
        }
        return { changed, result: out };
      });
    },
    release(owned) {
      return update((records) => {
        let changed = false;
        for (const [host, site] of owned) {
          if (records.claims[host]?.site === site) {
            delete records.claims[host];
            changed = true;
          }
        }
        return { changed, result: undefined };
      });
    },
  };
}
