import { constants, existsSync, readlinkSync, type Stats } from 'node:fs';
import { join, sep } from 'node:path';
import { isMissing } from './fs-fingerprint.ts';
import { contentFs, readFromStart, type ContentHandle } from './content-fs.ts';

/**
 * Opening a file of a site folder so that nothing outside the folder is ever read, whatever the
 * site's owner does with symlinks and renames meanwhile (docs/security.md, rule 2).
 *
 * Checking a path and then opening it is a race: between the two, any folder on the way or the
 * file itself can become a link to somewhere else. So the order is reversed: open first (any
 * links are followed, once, by the kernel), then ask the kernel where the open descriptor really
 * is (`/proc/self/fd/<fd>`, the path of the file the descriptor holds) and what it is (fstat), and
 * read only from that same descriptor. Whatever is swapped after the open changes nothing about
 * what the descriptor holds. Links that stay inside the folder keep working.
 *
 * Opening itself is harmless: O_NONBLOCK so a FIFO planted as a page cannot hang a thread-pool
 * thread, O_NOCTTY so a terminal device is never made the controlling terminal; a descriptor that
 * is refused is closed unread. Hard links are outside this rule's reach (a hard link is a file of
 * the folder as far as any path can tell); Linux refuses hard links to other users' files by
 * default (fs.protected_hardlinks).
 *
 * On a system without /proc (macOS, for development) the descriptor's path is established the
 * other way round: the real path of the name opened, accepted only if it is the very file the
 * descriptor holds (same device and inode), which is just as safe and one stat slower.
 *
 * The readlink of `/proc/self/fd/<fd>` is always synchronous: procfs answers it from the kernel's
 * own record of the open file (the path of the dentry the descriptor holds), without asking the
 * file system the file lives on, so it cannot wait on a disk or a network volume: ~9 µs of CPU
 * measured on the 2-core test VM, where the promise version cost ~55 µs (a thread-pool round
 * trip: promise, hand-over, wake-up). It runs before the fstat, so a file refused as outside is
 * closed without one. The calls that do reach the file's own file system (open, fstat, read,
 * close) are made the way `CONTENT_IO` says (content-fs.ts).
 */

/** Why a file was not opened: a link leading outside the folder, not a regular file, or over a size limit. */
export type Refusal = { reason: 'outside' } | { reason: 'not-a-file' } | { reason: 'too-large'; size: number; limit: number };

export interface ContainedFile {
  /** Open for reading; the caller closes it (`close`). */
  handle: ContentHandle;
  /** Where the descriptor really is: a real path inside the folder. */
  realPath: string;
  /** fstat of the descriptor: the size and times of exactly the file that is read. */
  stats: Stats;
  /**
   * A path naming this open file and nothing else while it stays open (`/proc/self/fd/<fd>`), for
   * libraries that take only paths: opening it opens the same file, never what the name now says.
   */
  descriptorPath: string;
  close(): Promise<void>;
}

export type ContainedOpen = { kind: 'open'; file: ContainedFile } | { kind: 'missing' } | ({ kind: 'refused' } & Refusal);
export type ContainedText = { kind: 'text'; text: string; stats: Stats } | { kind: 'missing' } | ({ kind: 'refused' } & Refusal);

const OPEN_FLAGS = constants.O_RDONLY | (constants.O_NONBLOCK ?? 0) | (constants.O_NOCTTY ?? 0);
const PROC_FD = '/proc/self/fd';
const DEV_FD = '/dev/fd';
const hasProcFd = existsSync(PROC_FD);

/** True when `realPath` lies below the folder `realRoot` (both real, symlink-free paths). */
export function isWithin(realRoot: string, realPath: string): boolean {
  const prefix = realRoot.endsWith(sep) ? realRoot : realRoot + sep;
  return realPath.startsWith(prefix) && realPath.length > prefix.length;
}

/**
 * Opens `path` for reading if, once open, it is a regular file whose real path lies below
 * `realRoot` (a real path: the caller resolves it once, e.g. a site's `dir`) and, with
 * `maxBytes`, it is at most that many bytes. The size is checked on the descriptor, before a byte
 * is read (rule 3). `missing` when there is nothing at the name (or a folder on the way is gone);
 * `refused` with the reason otherwise; any other error (EACCES, EMFILE, EIO) is thrown.
 */
export async function openContained(path: string, realRoot: string, options: { maxBytes?: number } = {}): Promise<ContainedOpen> {
  let handle: ContentHandle;
  try {
    handle = await contentFs.open(path, OPEN_FLAGS);
  } catch (error) {
    if (isMissing(error)) return { kind: 'missing' };
    // ENXIO: a socket file, or a device with nothing behind it.
    if ((error as NodeJS.ErrnoException).code === 'ENXIO') return { kind: 'refused', reason: 'not-a-file' };
    throw error;
  }
  // Where the descriptor is, first: a file outside the folder is refused without even an fstat.
  const linked = hasProcFd ? heldPath(handle) : undefined;
  if (linked !== undefined && !isWithin(realRoot, linked)) {
    await handle.close();
    return { kind: 'refused', reason: 'outside' };
  }
  return checkOpened(handle, linked, realRoot, options, path);
}

/** Where an open descriptor is (`/proc/self/fd/<fd>`); closes it when that cannot be read. */
function heldPath(handle: ContentHandle): string {
  try {
    return readlinkSync(`${PROC_FD}/${handle.fd}`);
  } catch (error) {
    void handle.close().catch(() => {});
    throw error;
  }
}

/** The rest of `openContained` on an open descriptor: what it is, where (without /proc) and how large. */
async function checkOpened(handle: ContentHandle, linked: string | undefined, realRoot: string, options: { maxBytes?: number }, path: string): Promise<ContainedOpen> {
  try {
    const stats = await handle.stat();
    const where = linked ?? (await pathOfSameFile(path, stats));
    const refusal: Refusal | undefined =
      where === undefined || !isWithin(realRoot, where)
        ? { reason: 'outside' }
        : !stats.isFile()
          ? { reason: 'not-a-file' }
          : options.maxBytes !== undefined && stats.size > options.maxBytes
            ? { reason: 'too-large', size: stats.size, limit: options.maxBytes }
            : undefined;
    if (refusal) {
      await handle.close();
      return { kind: 'refused', ...refusal };
    }
    const opened = handle;
    return {
      kind: 'open',
      file: { handle: opened, realPath: where!, stats, descriptorPath: `${hasProcFd ? PROC_FD : DEV_FD}/${opened.fd}`, close: () => opened.close() },
    };
  } catch (error) {
    await handle.close().catch(() => {});
    throw error;
  }
}

/** Without /proc: the real path of `path`, if it is still the file the descriptor holds. */
async function pathOfSameFile(path: string, held: Stats): Promise<string | undefined> {
  try {
    const real = await contentFs.realpath(path);
    const now = await contentFs.stat(real);
    return now.dev === held.dev && now.ino === held.ino ? real : undefined;
  } catch {
    return undefined;
  }
}

/**
 * `openContained`, then the whole file as UTF-8 text, read from the checked descriptor and never
 * more than the size fstat gave (a file growing meanwhile is read as it was; the next stat sees
 * the change). Memory used is bounded by `maxBytes`.
 */
export async function readContainedText(path: string, realRoot: string, options: { maxBytes: number }): Promise<ContainedText> {
  return readContainedPrefix(path, realRoot, { maxBytes: options.maxBytes, prefixBytes: Infinity });
}

/**
 * `openContained`, then at most the first `prefixBytes` of the file as UTF-8 text (a character cut
 * at the end is replaced): for reading a page's frontmatter without reading its body. The size
 * limit (`maxBytes`) is still checked on the whole file first.
 */
export async function readContainedPrefix(path: string, realRoot: string, options: { maxBytes: number; prefixBytes: number }): Promise<ContainedText> {
  return readOpened(await openContained(path, realRoot, options), options.prefixBytes);
}

/**
 * Reads `name`, a plain entry of `folder` (opened with O_NOFOLLOW, so not a symlink), as text with
 * the same checks and limits as `readContainedText`, and tells the folder's real path from where
 * the descriptor is (`/proc/self/fd`: `<real folder>/<name>`): one open where resolving the
 * folder first costs a realpath (a thread-pool round trip, a readlink per path component) and
 * then the open. The folder itself may be reached through links, as with realpath; the entry is
 * in it by construction, so it cannot lead outside.
 *
 * `{ kind: 'link' }` when the entry is a symlink, when it was removed while being opened, or on a
 * system without /proc: the caller resolves the folder and uses `readContainedText`, which
 * follows links that stay inside. Errors as `openContained`.
 */
export async function readFolderEntry(folder: string, name: string, options: { maxBytes: number }): Promise<(ContainedText & { realDir?: string }) | { kind: 'link' }> {
  if (!hasProcFd || constants.O_NOFOLLOW === undefined) return { kind: 'link' };
  const path = join(folder, name);
  let handle: ContentHandle;
  try {
    handle = await contentFs.open(path, OPEN_FLAGS | constants.O_NOFOLLOW);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ELOOP') return { kind: 'link' };
    if (isMissing(error)) return { kind: 'missing' };
    if (code === 'ENXIO') return { kind: 'refused', reason: 'not-a-file' };
    throw error;
  }
  const linked = heldPath(handle);
  const entry = `${sep}${name}`;
  // A file unlinked since the open reads "<path> (deleted)": no folder to tell, so the careful way.
  if (!linked.endsWith(entry)) {
    await handle.close();
    return { kind: 'link' };
  }
  const realDir = linked.slice(0, -entry.length) || sep;
  const read = await readOpened(await checkOpened(handle, linked, realDir, options, path), Infinity);
  return read.kind === 'text' ? { ...read, realDir } : read;
}

/** Reads at most `prefixBytes` of an opened, checked file as UTF-8 text, then closes it. */
async function readOpened(opened: ContainedOpen, prefixBytes: number): Promise<ContainedText> {
  if (opened.kind !== 'open') return opened;
  const { handle, stats } = opened.file;
  try {
    const bytes = await readFromStart(handle, Math.min(stats.size, prefixBytes));
    return { kind: 'text', text: bytes.toString('utf8'), stats };
  } finally {
    await opened.file.close();
  }
}

/** Bytes in the units a site owner reads: "700 MiB", "1 MiB", "512 KiB", "12 bytes". */
export function formatSize(bytes: number): string {
  const units: Array<[number, string]> = [
    [1024 ** 3, 'GiB'],
    [1024 ** 2, 'MiB'],
    [1024, 'KiB'],
  ];
  for (const [size, unit] of units) {
    if (bytes >= size) {
      const value = bytes / size;
      return `${Number.isInteger(value) ? value : value.toFixed(1)} ${unit}`;
    }
  }
  return `${bytes} bytes`;
}

const exactBytes = (bytes: number) => `${bytes.toLocaleString('en-US')} bytes`;

/** The words for a refusal, after the file's name: "is a link that leads outside the site folder". */
export function refusalReason(refusal: Refusal): string {
  switch (refusal.reason) {
    case 'outside':
      return 'is a link that leads outside the site folder (links may only point inside it)';
    case 'not-a-file':
      return 'is not a regular file';
    case 'too-large':
      return `is ${exactBytes(refusal.size)}, over the limit of ${formatSize(refusal.limit)} (${exactBytes(refusal.limit)})`;
  }
}
