import { closeSync, constants, ftruncateSync, mkdirSync, openSync, readdirSync, readSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Which Markdown renders are in flight in each process of the machine, so that a text whose render
 * took its process down is known afterwards (markdown-cache.ts refuses it from then on).
 *
 * One file per process, `<dir>/journals/<pid>`, holding the cache keys of its renders in flight,
 * one per line, rewritten in place as renders start and end. It replaced a `<key>.rendering` file
 * made and removed around every render: creating a file allocates an inode, which cost 0.7–0.9 ms
 * of kernel CPU per file on the test VM's ext4 volume after the benchmark's file churn (its
 * allocator walks recently deleted inodes), while rewriting a few bytes of an open file costs
 * ~5 µs. The calls are synchronous: the folder is the platform's own cache folder, local and
 * already checked private (cache-folder.ts), and the descriptor stays open.
 */
export interface RenderJournal {
  /** Records that this process starts rendering `key`; false when the journal cannot be written (the render runs anyway, unjournalled). */
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
}

const KEY = /^[a-f0-9]{64}$/;
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
  const inFlight = new Set<string>();
  let fd: number | undefined;
  let broken = false;

  function rewrite(): boolean {
    if (broken) return false;
    try {
      if (fd === undefined) {
        mkdirSync(folder, { recursive: true, mode: 0o700 });
        fd = openSync(join(folder, String(pid)), constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | constants.O_NOFOLLOW, 0o600);
      }
      const text = Buffer.from([...inFlight].map((key) => `${key}\n`).join(''));
      writeSync(fd, text, 0, text.length, 0);
      ftruncateSync(fd, text.length);
      return true;
    } catch {
      // A folder we cannot write: renders go on without a journal, as with no cache folder.
      broken = true;
      if (fd !== undefined) closeSync(fd);
      fd = undefined;
      return false;
    }
  }

  function readKeys(path: string): string[] {
    let file: number | undefined;
    try {
      file = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
      const buffer = Buffer.alloc(MAX_JOURNAL_BYTES);
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
      inFlight.add(key);
      return rewrite();
    },
    end(key) {
      if (inFlight.delete(key)) rewrite();
    },
    takeCrashed() {
      let names: string[];
      try {
        names = readdirSync(folder);
      } catch {
        return [];
      }
      const crashed: string[] = [];
      for (const name of names) {
        const owner = Number(name);
        if (!/^\d+$/.test(name) || owner === pid || owner <= 0 || isAlive(owner)) continue;
        const path = join(folder, name);
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
