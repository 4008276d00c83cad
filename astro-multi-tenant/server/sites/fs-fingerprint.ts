import type { Stats } from 'node:fs';
import { contentFs } from './content-fs.ts';

/** The identity of one version of a file from its stat: inode, size (bytes) and mtime (ms). */
export function statsFingerprint(s: Stats): string {
  return `${s.ino}:${s.size}:${s.mtimeMs}`;
}

/** inode, size and mtime: changes whenever a file is rewritten, replaced or renamed over. */
export async function fileFingerprint(path: string): Promise<string | null> {
  return (await fileIdentity(path))?.fingerprint ?? null;
}

/**
 * The fingerprint with the size (bytes) and modification time (ms since the epoch) it was taken
 * at; null when there is no regular file there.
 */
export async function fileIdentity(path: string): Promise<{ fingerprint: string; size: number; mtimeMs: number } | null> {
  try {
    const s = await contentFs.statIfPresent(path);
    if (s === undefined || !s.isFile()) return null;
    return { fingerprint: statsFingerprint(s), size: s.size, mtimeMs: s.mtimeMs };
  } catch (error) {
    if (isMissing(error)) return null;
    throw error;
  }
}

export function isMissing(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  return code === 'ENOENT' || code === 'ENOTDIR' || code === 'ELOOP' || code === 'ENAMETOOLONG';
}
