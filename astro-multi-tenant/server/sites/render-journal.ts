import { randomBytes } from 'node:crypto';
import { closeSync, constants, fstatSync, ftruncateSync, lstatSync, mkdirSync, openSync, readdirSync, readSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Which Markdown renders are in flight in each process of the machine, so that a text whose render
 * took its process down is known afterwards (markdown-cache.ts refuses it from then on).
 *
 * One file per process, `<dir>/journals/<pid>-<random>`, holding the cache keys of the texts its
 * render threads are rendering (at most one per thread: a text waiting for a thread is not in it),
 * one per line, rewritten in place as renders start and end. The random part tells this process's
 * journal from one a dead process with the same pid left (a container's restarted server often
 * gets the same pid). It replaced a `<key>.rendering` file
 * made and removed around every render: creating a file allocates an inode, which cost 0.7–0.9 ms
 * of kernel CPU per file on the test VM's ext4 volume after the benchmark's file churn (its
 * allocator walks recently deleted inodes), while rewriting a few bytes of an open file costs
 * ~5 µs. The calls are synchronous: the folder is the platform's own cache folder, local and
 * already checked private (cache-folder.ts), and the descriptor stays open.
 */
export interface RenderJournal {
  /** Records that a render thread of this process starts rendering `key`; false when the journal cannot be written (the render runs anyway, unjournalled). */
  begin(key: string): boolean;
  /** Records that the render of `key` ended, however it ended. */
  end(key: string): void;
  /**
   * The keys that were in flight in processes that are gone (they stopped mid-render), read once:
   * each such journal is removed after it is read. Journals of live processes, this one's
   * included, are left alone.
   */
  takeCrashed(): string[];
}

export interface RenderJournalOptions {
  /** The Markdown cache folder; journals go in its `journals` subfolder. */
  dir: string;
  pid?: number;
  /** Whether a process is running (signal 0); injected by tests. */
  isAlive?: (pid: number) => boolean;
  /** Clock (ms) for retrying a journal that could not be written; injected by tests. */
  now?: () => number;
}

const KEY = /^[a-f0-9]{64}$/;
const JOURNAL_NAME = /^(\d+)-[a-f0-9]{16}$/;
/** After a failed write the journal is tried again this much later (ms), not on every render. */
const RETRY_MS = 60_000;
/** Every journal this process has opened (any folder): a journal under this pid not among them was left by a dead process. */
const openedHere = new Set<string>();
/** Largest journal read back: far more than the keys a process renders at once. */
const MAX_JOURNAL_BYTES = 64 * 1024;

/** `kill(pid, 0)`: running unless the kernel says there is no such process (EPERM is another user's live process). */
export function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}

/** Opens the journals of `options.dir`; nothing is written before the first render. */
export function createRenderJournal(options: RenderJournalOptions): RenderJournal {
  const folder = join(options.dir, 'journals');
  const pid = options.pid ?? process.pid;
  const isAlive = options.isAlive ?? isProcessAlive;
  const now = options.now ?? Date.now;
  const uid = process.getuid?.();
  // Counted: two sites with the same text can have it on both threads at once.
  const inFlight = new Map<string, number>();
  let name = '';
  let fd: number | undefined;
  let retryAt = 0;

  /**
   * The journals folder, checked as cache-folder.ts checks its own: a real folder (not a link) of
   * this user that group and others cannot write. A temp cleaner may remove it and someone else
   * make it again, with journals of their own in it.
   */
  function folderIsOurs(): boolean {
    try {
      const s = lstatSync(folder);
      return s.isDirectory() && (uid === undefined || s.uid === uid) && (s.mode & 0o022) === 0;
    } catch {
      return false;
    }
  }

  function close(): void {
    if (fd !== undefined) closeSync(fd);
    fd = undefined;
  }

  function rewrite(): boolean {
    if (now() < retryAt) return false;
    try {
      // A journal removed while open (a temp cleaner, a mistaken sweep) would take the writes
      // nowhere: start a new one.
      if (fd !== undefined && fstatSync(fd).nlink === 0) close();
      if (fd === undefined) {
        mkdirSync(folder, { recursive: true, mode: 0o700 });
        if (!folderIsOurs()) throw new Error('the journals folder is not this user\'s alone');
        name = `${pid}-${randomBytes(8).toString('hex')}`;
        fd = openSync(join(folder, name), constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
        openedHere.add(name);
      }
      const text = Buffer.from([...inFlight.keys()].map((key) => `${key}\n`).join(''));
      writeSync(fd, text, 0, text.length, 0);
      ftruncateSync(fd, text.length);
      return true;
    } catch {
      // A folder we cannot write: renders go on without a journal for a while, as with no cache folder.
      close();
      retryAt = now() + RETRY_MS;
      return false;
    }
  }

  function readKeys(path: string): string[] {
    let file: number | undefined;
    try {
      file = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
      const s = fstatSync(file);
      if (!s.isFile() || (uid !== undefined && s.uid !== uid) || (s.mode & 0o022) !== 0) return [];
      const buffer = Buffer.alloc(Math.min(s.size, MAX_JOURNAL_BYTES));
      const length = readSync(file, buffer, 0, buffer.length, 0);
      return buffer.toString('latin1', 0, length).split('\n').filter((line) => KEY.test(line));
    } catch {
      return [];
    } finally {
      if (file !== undefined) closeSync(file);
    }
  }

  return {
    begin(key) {
      const count = inFlight.get(key) ?? 0;
      inFlight.set(key, count + 1);
      return count > 0 ? fd !== undefined : rewrite();
    },
    end(key) {
      const count = inFlight.get(key);
      if (count === undefined) return;
      if (count > 1) inFlight.set(key, count - 1);
      else {
        inFlight.delete(key);
        rewrite();
      }
    },
    takeCrashed() {
      if (!folderIsOurs()) return [];
      let names: string[];
      try {
        names = readdirSync(folder);
      } catch {
        return [];
      }
      const crashed: string[] = [];
      for (const entry of names) {
        const owner = Number(JOURNAL_NAME.exec(entry)?.[1] ?? NaN);
        if (!(owner > 0) || openedHere.has(entry)) continue;
        // A journal under this process's own pid that it did not open was left by a process that is gone.
        if (owner !== pid && isAlive(owner)) continue;
        const path = join(folder, entry);
        crashed.push(...readKeys(path));
        try {
          unlinkSync(path);
        } catch {
          // another worker took it first
        }
      }
      return crashed;
    },
  };
}
