import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * Whether a build output is older than what it is built from, by file modification times: the
 * integration tests drive the built server, and a bundle older than its sources tests old code
 * without a word.
 */

/** One `npm run <script>` with what it reads and what it writes, as paths under the root. */
export interface BuildPart {
  script: string;
  /** Files and folders it is built from; a folder counts with everything below it. */
  inputs: string[];
  /** Files it writes on every run; a missing one makes the part stale. */
  outputs: string[];
}

export interface Staleness {
  stale: boolean;
  /** Why, for the log line: the missing output, or the newest input and the output it beats. */
  reason: string;
}

/**
 * The newest modification time (ms) of `path` and, for a folder, of everything below it (folders
 * included, so a deleted file counts as a change). Undefined when nothing is there.
 */
export async function newestMtime(path: string): Promise<{ ms: number; path: string } | undefined> {
  const info = await stat(path).catch(() => undefined);
  if (!info) return undefined;
  let newest = { ms: info.mtimeMs, path };
  if (!info.isDirectory()) return newest;
  for (const entry of await readdir(path)) {
    const inner = await newestMtime(join(path, entry));
    if (inner && inner.ms > newest.ms) newest = inner;
  }
  return newest;
}

/** Compares one part's inputs and outputs under `root`; stale when an output is missing or older than an input. */
export async function buildStaleness(root: string, part: BuildPart): Promise<Staleness> {
  let oldest: { ms: number; path: string } | undefined;
  for (const output of part.outputs) {
    const info = await stat(join(root, output)).catch(() => undefined);
    if (!info) return { stale: true, reason: `${output} is missing` };
    if (!oldest || info.mtimeMs < oldest.ms) oldest = { ms: info.mtimeMs, path: output };
  }
  let newest: { ms: number; path: string } | undefined;
  for (const input of part.inputs) {
    const found = await newestMtime(join(root, input));
    if (found && (!newest || found.ms > newest.ms)) newest = { ms: found.ms, path: found.path.slice(root.length + 1) };
  }
  if (oldest && newest && newest.ms > oldest.ms) return { stale: true, reason: `${newest.path} is newer than ${oldest.path}` };
  return { stale: false, reason: 'up to date' };
}
