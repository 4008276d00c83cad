import { createReadStream } from 'node:fs';
import { realpath, stat } from 'node:fs/promises';
import { join, sep } from 'node:path';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { contentTypeFor } from './mime.ts';

export interface StaticOptions {
  /** Cache-Control max-age for files whose names do not carry a content hash. */
  maxAgeSeconds: number;
  /** Hashed names never change content, so they may be cached for a year. */
  immutable?: boolean;
}

export function etagFor(size: number, mtimeMs: number): string {
  return `W/"${size.toString(16)}-${Math.floor(mtimeMs).toString(16)}"`;
}

/** True when the client's cached copy (If-None-Match) is current. */
export function isNotModified(req: IncomingMessage, etag: string): boolean {
  const header = req.headers['if-none-match'];
  if (!header) return false;
  return header.split(',').some((tag) => {
    const t = tag.trim();
    return t === '*' || t === etag || t.replace(/^W\//, '') === etag.replace(/^W\//, '');
  });
}

/**
 * Serves `segments` from below `root` if it is a regular file whose real path stays inside `root`
 * (symlinks out of a site's public folder are refused). Returns false when there is nothing to serve.
 */
export async function serveStaticFile(
  req: IncomingMessage,
  res: ServerResponse,
  root: string,
  segments: readonly string[],
  options: StaticOptions,
): Promise<boolean> {
  if (segments.length === 0) return false;
  let real: string;
  let size: number;
  let mtimeMs: number;
  try {
    // Both resolved at once: the file's real path does not depend on resolving the root first.
    const [realRoot, realFile] = await Promise.all([realpath(root), realpath(join(root, ...segments))]);
    real = realFile;
    if (!real.startsWith(realRoot + sep)) return false;
    const s = await stat(real);
    if (!s.isFile()) return false;
    size = s.size;
    mtimeMs = s.mtimeMs;
  } catch {
    return false;
  }
  const etag = etagFor(size, mtimeMs);
  res.setHeader('ETag', etag);
  res.setHeader('Last-Modified', new Date(mtimeMs).toUTCString());
  res.setHeader('Cache-Control', options.immutable ? 'public, max-age=31536000, immutable' : `public, max-age=${options.maxAgeSeconds}`);
  res.setHeader('X-Content-Type-Options', 'nosniff');
  if (isNotModified(req, etag)) {
    res.statusCode = 304;
    res.end();
    return true;
  }
  res.setHeader('Content-Type', contentTypeFor(real));
  res.setHeader('Content-Length', size);
  res.statusCode = 200;
  if (req.method === 'HEAD') {
    res.end();
    return true;
  }
  await new Promise<void>((resolve) => {
    const stream = createReadStream(real);
    stream.on('error', () => {
      res.destroy();
      resolve();
    });
    res.on('close', () => {
      stream.destroy();
      resolve();
    });
    stream.pipe(res);
  });
  return true;
}
