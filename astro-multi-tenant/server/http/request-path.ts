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

/**
 * The one dot-segment a visitor may ask for, and only as the first segment: RFC 8615's
 * `/.well-known/` (ACME HTTP-01 tokens, security.txt). Every other hidden name stays refused.
 */
export const WELL_KNOWN = '.well-known';
const MAX_SEGMENTS = 32;

/**
 * Parses a request target into safe path segments. Anything that could name a file outside the
 * site folder — `..`, `.` segments, encoded slashes or backslashes, NUL bytes, absolute or
 * scheme-relative forms, hidden files (but a leading `/.well-known/`) — is refused here, before
 * any file system call is made.
 * The loader still checks the real path, so a symlink cannot lead out either.
 */
export function parseRequestTarget(url: string | undefined): RequestTarget {
  const target = url ?? '/';
  if (target.length > MAX_PATH_LENGTH) throw new PlatformError('PATH_TOO_LONG', `Request target is longer than ${MAX_PATH_LENGTH} characters`, target.slice(0, 100));
  // Absolute form was rewritten to origin form before this (pipeline/stages/message-checks.ts);
  // `*`, authority form and other schemes are not targets a site can answer (RFC 9112 §3.2).
  if (!target.startsWith('/')) throw new PlatformError('PATH_MALFORMED', 'Request target must be a path starting with /', target.slice(0, 200));
  if (target.startsWith('//')) throw new PlatformError('PATH_FORBIDDEN', 'Request path must be origin-relative', target);
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
    const wellKnown = segments.length === 0 && decoded === WELL_KNOWN;
    if (!wellKnown && !isSafeSegment(decoded)) throw new PlatformError('PATH_FORBIDDEN', `Request path segment "${raw}" is not allowed`, target);
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

export interface AbsoluteForm {
  /** The authority (host[:port]) the target names, still raw: normalise it like a Host header. */
  authority: string;
  /** The target in origin form: path and query, '/' when the target has no path. */
  originForm: string;
}

const ABSOLUTE_FORM = /^https?:\/\/([^/?#]*)([^#]*)/i;

/**
 * Splits a request target in absolute form (`GET http://docs.example/a?b HTTP/1.1`, what clients
 * send to proxies) into its authority and origin form. RFC 9112 §3.2.2: the server then routes
 * by the target's authority and ignores the Host header, as nginx does. Returns undefined for a
 * target that is not in absolute form (origin form, `*`, or anything else, which
 * parseRequestTarget judges).
 *
 * @throws PlatformError HOST_MALFORMED when the authority is empty or carries userinfo
 *   (`user@host`, deprecated by RFC 9110 §4.2.4 and a classic way to disguise the real host).
 */
export function splitAbsoluteForm(url: string): AbsoluteForm | undefined {
  if (url.startsWith('/')) return undefined;
  const match = ABSOLUTE_FORM.exec(url);
  if (!match) return undefined;
  const authority = match[1]!;
  if (authority === '' || authority.includes('@')) {
    throw new PlatformError('HOST_MALFORMED', 'request target has an empty authority or user information', url.slice(0, 200));
  }
  const rest = match[2]!;
  return { authority, originForm: rest.startsWith('/') ? rest : `/${rest}` };
}
