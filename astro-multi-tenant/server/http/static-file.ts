import type { ReadStream } from 'node:fs';
import { contentFs } from '../sites/content-fs.ts';
import { STATUS_CODES, type IncomingMessage, type ServerResponse } from 'node:http';
import { basename, dirname, join } from 'node:path';
import send from 'send';
import { PlatformError } from '../errors.ts';
import { isWithin, openContained, type ContainedFile } from '../sites/contained-file.ts';
import { contentTypeFor } from './mime.ts';
import { isSafeSegment } from './request-path.ts';

export interface StaticOptions {
  /** Cache-Control max-age (seconds) for files whose names do not carry a content hash. */
  maxAgeSeconds: number;
  /** Hashed names never change content, so they may be cached for a year. */
  immutable?: boolean;
  /**
   * A real (symlink-free) folder that the root must lie in: a site's `dir`, so that a `public/`
   * that is itself a link out of the site serves nothing. Omitted for platform folders.
   */
  within?: string;
}

/** Our caching policy for a static file (the same whatever serves it, so send's own is off). */
export function cacheControlFor(options: StaticOptions): string {
  return options.immutable ? 'public, max-age=31536000, immutable' : `public, max-age=${options.maxAgeSeconds}`;
}

/**
 * Opens the file `segments` names below `root` if, once open, it is a regular file whose real path
 * lies inside the real path of `root` (and that inside `within`, when given). The check is made on
 * the open descriptor (sites/contained-file.ts), so a link swapped in after it, at the file or at
 * any folder on the way, changes nothing: what is served is what was checked. A symlink that leads
 * out of the root is refused; one that stays inside is fine. Undefined (nothing left open) for
 * anything else: missing, a folder, a device or FIFO, a dot-segment, or a file outside; the caller
 * closes what it gets, and gets the root's real path with it. Never throws.
 */
export async function openStaticFile(root: string, segments: readonly string[], within?: string): Promise<{ file: ContainedFile; realRoot: string } | undefined> {
  // The request-path parser already refuses dot-segments; this keeps the rule for every caller
  // (`.well-known` callers pass its folder as `root`, so its name is never a segment here).
  if (segments.length === 0 || !segments.every(isSafeSegment)) return undefined;
  try {
    const realRoot = await contentFs.realpath(root);
    if (within !== undefined && !isWithin(within, realRoot)) return undefined;
    const opened = await openContained(join(root, ...segments), realRoot);
    return opened.kind === 'open' ? { file: opened.file, realRoot } : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Where `openStaticFile` finds the file, as real paths, without keeping it open: for handing the
 * file to a server that opens it again by that name following no symlink at all (nginx with
 * `disable_symlinks on`), which then opens the file checked here or nothing.
 */
export async function locateStaticFile(root: string, segments: readonly string[], within?: string): Promise<{ realRoot: string; realFile: string; size: number } | undefined> {
  const found = await openStaticFile(root, segments, within);
  if (!found) return undefined;
  await found.file.close().catch(() => {});
  return { realRoot: found.realRoot, realFile: found.file.realPath, size: found.file.stats.size };
}

/** Headers that describe the file; taken back when send finds nothing after all, or refuses. */
const FILE_HEADERS = ['Accept-Ranges', 'Cache-Control', 'Content-Length', 'Content-Range', 'Content-Type', 'ETag', 'Last-Modified', 'X-Content-Type-Options'];

/**
 * Serves `segments` from below `root` if `openStaticFile` opens a regular file inside it, and
 * resolves once the response has ended (true) or when there is nothing to serve (false, nothing
 * written, so the caller can fall through to a page or its 404).
 *
 * The HTTP part is `send` (pillarjs/send 1.x, the library @astrojs/node serves its static files
 * with): RFC 9110 §14 single byte ranges (206 with Content-Range; 416 with `Content-Range:
 * bytes *\/<size>` when no range is satisfiable; several ranges get the whole file with 200, which
 * §14.2 allows), If-Range by ETag or date, §13 conditional requests (If-None-Match and
 * If-Modified-Since → 304, If-Match and If-Unmodified-Since → 412) and HEAD with the same headers
 * and no body. Weak ETag `W/"<size hex>-<mtime ms hex>"` and Last-Modified from the file's stat.
 *
 * send is given the checked descriptor's own path (`/proc/self/fd/<n>`, see ContainedFile), so its
 * stat and its read stream are of exactly the file checked, never of whatever the name says by
 * then; the file is streamed in 64 KiB chunks, never buffered whole, whatever its size.
 *
 * Ours: Cache-Control (`cacheControlFor`), `X-Content-Type-Options: nosniff`, the content type
 * (`mime.ts`, from the requested name), containment (above), and no dot-file refusal, index files
 * or folder redirects from send: a folder never reaches it. A read error before the headers are
 * out rejects with a PlatformError INTERNAL (the caller answers 500 without details); after, the
 * connection is cut so the visitor cannot mistake a short body for the file.
 */
export async function serveStaticFile(
  req: IncomingMessage,
  res: ServerResponse,
  root: string,
  segments: readonly string[],
  options: StaticOptions,
): Promise<boolean> {
  const found = await openStaticFile(root, segments, options.within);
  if (!found) return false;
  const { file } = found;
  const stream = send(req, `/${basename(file.descriptorPath)}`, {
    root: dirname(file.descriptorPath),
    dotfiles: 'allow',
    index: false,
    extensions: false,
    cacheControl: false,
    acceptRanges: true,
    etag: true,
    lastModified: true,
  });
  const type = contentTypeFor(segments.at(-1)!);

  // The descriptor stays open until send's own read stream (which re-opens it through its
  // descriptor path) is done and the response is over; then it is closed, once.
  let reading: ReadStream | undefined;
  let released = false;
  const release = () => {
    if (released) return;
    released = true;
    const close = () => void file.close().catch(() => {});
    if (reading && !reading.closed) reading.once('close', close);
    else close();
  };
  stream.on('stream', (readStream: ReadStream) => {
    reading = readStream;
  });

  return new Promise<boolean>((resolve, reject) => {
    let settled = false;
    const settle = (outcome: boolean | PlatformError) => {
      if (settled) return;
      settled = true;
      if (outcome !== true) release();
      if (outcome instanceof PlatformError) reject(outcome);
      else resolve(outcome);
    };
    const takeBack = () => {
      for (const name of FILE_HEADERS) res.removeHeader(name);
      res.statusCode = 200;
    };

    stream.on('headers', (response: ServerResponse) => {
      response.setHeader('Cache-Control', cacheControlFor(options));
      response.setHeader('X-Content-Type-Options', 'nosniff');
      response.setHeader('Content-Type', type);
    });
    // Not expected (the descriptor is a regular file), but never left hanging if it happens.
    stream.on('directory', () => {
      takeBack();
      settle(false);
    });
    stream.on('error', (error: Error & { status?: number; headers?: Record<string, string>; code?: string }) => {
      const status = error.status ?? 500;
      if (res.headersSent) {
        res.destroy();
        settle(true);
      } else if (status === 404) {
        // Not expected while the descriptor is open; as if the file had never been there.
        takeBack();
        settle(false);
      } else if (status < 500) {
        // 412 and 416 (send's other 4xx, 400 and 403, need a path we never give it).
        takeBack();
        for (const [name, value] of Object.entries(error.headers ?? {})) res.setHeader(name, value);
        const body = `${STATUS_CODES[status] ?? 'Error'}\n`;
        res.statusCode = status;
        res.setHeader('Content-Type', 'text/plain; charset=utf-8');
        res.setHeader('Content-Length', Buffer.byteLength(body));
        res.setHeader('X-Content-Type-Options', 'nosniff');
        res.end(req.method === 'HEAD' ? undefined : body);
        settle(true);
      } else {
        takeBack();
        // send hands over the fs error itself (EACCES, EMFILE, EIO …) with a 500 status on it.
        settle(new PlatformError('INTERNAL', `static file could not be read (${error.code ?? error.message})`, file.realPath, { cause: error }));
      }
    });
    res.once('close', () => {
      settle(true);
      release();
    });
    stream.pipe(res);
  });
}
