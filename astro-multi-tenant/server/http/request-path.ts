import { PlatformError } from '../errors.ts';

export interface RequestTarget {
  /** Decoded path segments, each checked to be a plain file or folder name. */
  segments: string[];
  /** The pathname as the visitor sent it (still encoded). */
  pathname: string;
  /** The query string including '?', or ''. */
  search: string;
  trailingSlash: boolean;
}

const MAX_PATH_LENGTH = 2048;
const MAX_SEGMENTS = 32;

/**
 * Parses a request target into safe path segments. Anything that could name a file outside the
 * site folder — `..`, `.` segments, encoded slashes or backslashes, NUL bytes, absolute or
 * scheme-relative forms, hidden files — is refused here, before any file system call is made.
 * The loader still checks the real path, so a symlink cannot lead out either.
 */
export function parseRequestTarget(url: string | undefined): RequestTarget {
  const target = url ?? '/';
  if (target.length > MAX_PATH_LENGTH) throw new PlatformError('PATH_MALFORMED', 'Request path is too long', target.slice(0, 100));
  if (!target.startsWith('/') || target.startsWith('//')) {
    throw new PlatformError('PATH_FORBIDDEN', 'Request path must be origin-relative', target);
  }
  const queryAt = target.indexOf('?');
  const pathname = queryAt === -1 ? target : target.slice(0, queryAt);
  const search = queryAt === -1 ? '' : target.slice(queryAt);
  const hashAt = pathname.indexOf('#');
  const path = hashAt === -1 ? pathname : pathname.slice(0, hashAt);

  const rawSegments = path.split('/').slice(1);
  const trailingSlash = path.length > 1 && path.endsWith('/');
  if (trailingSlash) rawSegments.pop();
  if (rawSegments.length > MAX_SEGMENTS) throw new PlatformError('PATH_FORBIDDEN', 'Request path is too deep', target);

  const segments: string[] = [];
  for (const raw of rawSegments) {
    if (raw === '') {
      if (rawSegments.length === 1 && path === '/') continue;
      throw new PlatformError('PATH_FORBIDDEN', 'Request path has an empty segment', target);
    }
    let decoded: string;
    try {
      decoded = decodeURIComponent(raw);
    } catch {
      throw new PlatformError('PATH_MALFORMED', 'Request path has invalid percent-encoding', target);
    }
    if (!isSafeSegment(decoded)) throw new PlatformError('PATH_FORBIDDEN', `Request path segment "${raw}" is not allowed`, target);
    segments.push(decoded);
  }
  return { segments, pathname: path, search, trailingSlash };
}

/** A single file or folder name a visitor may ask for. */
export function isSafeSegment(segment: string): boolean {
  if (segment === '' || segment.startsWith('.')) return false;
  // Control characters (NUL included), both slash kinds and ':' (Windows drive / ADS syntax).
  return !/[\u0000-\u001f\u007f/\\:]/.test(segment);
}
