import { realpath, stat } from 'node:fs/promises';
import { STATUS_CODES, type IncomingMessage, type ServerResponse } from 'node:http';
import { join, relative, sep } from 'node:path';
import send from 'send';
import { PlatformError } from '../errors.ts';
import { contentTypeFor } from './mime.ts';
import { isSafeSegment } from './request-path.ts';

export interface StaticOptions {
  /** Cache-Control max-age (seconds) for files whose names do not carry a content hash. */
  maxAgeSeconds: number;
  /** Hashed names never change content, so they may be cached for a year. */
  immutable?: boolean;
}

/** Our caching policy for a static file (the same whatever serves it, so send's own is off). */
export function cacheControlFor(options: StaticOptions): string {
  return options.immutable ? 'public, max-age=31536000, immutable' : `public, max-age=${options.maxAgeSeconds}`;
}

/**
 * The file `segments` names below `root`, as real paths, if it is a regular file whose real path
 * stays inside the real path of `root` (a symlink that leads out of a site's public folder is
 * refused; one that stays inside is fine). Undefined for anything else: missing, a folder, a
 * device or FIFO, a dot-segment, or a path outside. Never throws.
 */
export async function locateStaticFile(root: string, segments: readonly string[]): Promise<{ realRoot: string; realFile: string; size: number } | undefined> {
  // The request-path parser already refuses dot-segments; this keeps the rule for every caller
  // (`.well-known` callers pass its folder as `root`, so its name is never a segment here).
  if (segments.length === 0 || !segments.every(isSafeSegment)) return undefined;
  try {
    // One round trip: neither real path depends on the other, and stat follows links to the same
    // target realpath resolves (a file outside is only stat'ed, never opened).
    const file = join(root, ...segments);
    const [realRoot, realFile, stats] = await Promise.all([realpath(root), realpath(file), stat(file)]);
    if (!realFile.startsWith(realRoot + sep) || !stats.isFile()) return undefined;
    return { realRoot, realFile, size: stats.size };
  } catch {
    return undefined;
  }
}

/** Headers that describe the file; taken back when send finds nothing after all, or refuses. */
const FILE_HEADERS = ['Accept-Ranges', 'Cache-Control', 'Content-Length', 'Content-Range', 'Content-Type', 'ETag', 'Last-Modified', 'X-Content-Type-Options'];

/**
 * Serves `segments` from below `root` if `locateStaticFile` finds a regular file inside it, and
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
 * Ours: Cache-Control (`cacheControlFor`), `X-Content-Type-Options: nosniff`, the content type
 * (`mime.ts`), containment (above), and no dot-file refusal, index files or folder redirects from
 * send: a folder never reaches it. A read error before the headers are out rejects with a
 * PlatformError INTERNAL (the caller answers 500 without details); after, the connection is cut so
 * the visitor cannot mistake a short body for the file.
 */
export async function serveStaticFile(
  req: IncomingMessage,
  res: ServerResponse,
  root: string,
  segments: readonly string[],
  options: StaticOptions,
): Promise<boolean> {
  const found = await locateStaticFile(root, segments);
  if (!found) return false;
  // send wants a URL path below `root`; it decodes it, so each name is encoded (a file may be
  // called "100%.txt"). The real path, so send opens what was checked, not a link to it.
  const urlPath = `/${relative(found.realRoot, found.realFile).split(sep).map(encodeURIComponent).join('/')}`;
  const stream = send(req, urlPath, {
    root: found.realRoot,
    dotfiles: 'allow',
    index: false,
    extensions: false,
    cacheControl: false,
    acceptRanges: true,
    etag: true,
    lastModified: true,
  });

  return new Promise<boolean>((resolve, reject) => {
    let settled = false;
    const settle = (outcome: boolean | PlatformError) => {
      if (settled) return;
      settled = true;
      if (outcome instanceof PlatformError) reject(outcome);
      else resolve(outcome);
    };
    const takeBack = () => {
      for (const name of FILE_HEADERS) res.removeHeader(name);
      res.statusCode = 200;
    };

    stream.on('headers', (response: ServerResponse, path: string) => {
      response.setHeader('Cache-Control', cacheControlFor(options));
      response.setHeader('X-Content-Type-Options', 'nosniff');
      response.setHeader('Content-Type', contentTypeFor(path));
    });
    // Only if the file became a folder since it was located.
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
        // Removed between locating and opening: as if it had never been there.
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
        settle(new PlatformError('INTERNAL', `static file could not be read (${error.code ?? error.message})`, found.realFile, { cause: error }));
      }
    });
    res.once('close', () => settle(true));
    stream.pipe(res);
  });
}
