import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TrustedProxies } from '../tenant/trusted-proxies.ts';

/**
 * Behind the nginx edge, the app decides whether a site's public file may be served and nginx
 * sends the bytes: the app answers with `X-Accel-Redirect: <prefix><site id>/public/<path>` and
 * nginx serves that from its internal location (nginx/render.ts). Withdrawing a file, a site or a
 * host therefore takes effect at the edge the moment the app knows, and static files still cost
 * nginx's sendfile, not a Node stream.
 *
 * nginx offers this per request, in the EDGE_FILES_HEADER request header (the prefix of its
 * internal location). Only a peer in TRUSTED_PROXIES may: anyone else talking to the app directly
 * gets the file itself, never a redirect header naming where it lies on disk.
 */
export const EDGE_FILES_HEADER = 'x-amt-edge-files';

/** An absolute path of plain segments, ending in "/" (what nginx/render.ts EDGE_FILES_PREFIX is). */
const PREFIX = /^\/(?:[A-Za-z0-9_-]+\/)+$/;

/**
 * The internal prefix nginx offers for this request, or undefined: header absent, malformed, or
 * not sent by a trusted proxy (the socket's peer address, never a forwarded one).
 */
export function edgeFilesPrefix(req: IncomingMessage, trustedProxies: TrustedProxies): string | undefined {
  const value = req.headers[EDGE_FILES_HEADER];
  if (typeof value !== 'string' || !PREFIX.test(value)) return undefined;
  return trustedProxies.trusts(req.socket.remoteAddress) ? value : undefined;
}

/**
 * The X-Accel-Redirect URI for `segments` (real names, relative to the site folder, e.g.
 * `['public', 'media', 'a b.mp4']`) of site `siteId`: each name percent-encoded, which nginx
 * decodes once (`100%.txt` → `100%25.txt`, `a?b` → `a%3Fb`). Undefined for a name nginx would
 * refuse or misread (empty, `.`/`..`, or a NUL): the caller then serves the file itself.
 */
export function accelRedirectUri(prefix: string, siteId: string, segments: readonly string[]): string | undefined {
  for (const name of [siteId, ...segments]) {
    if (name === '' || name === '.' || name === '..' || name.includes('\0') || name.includes('/')) return undefined;
  }
  return prefix + [siteId, ...segments].map(encodeURIComponent).join('/');
}

/**
 * Answers with an empty 200 that nginx turns into the file at `uri`. nginx keeps Content-Type and
 * Cache-Control from this answer (they are the app's policy: mime.ts, STATIC_MAX_AGE) and adds the
 * validators, ranges and HEAD handling of its static module. X-Accel-* headers never reach the
 * visitor (nginx hides them).
 */
export function sendAccelRedirect(res: ServerResponse, uri: string, headers: { contentType: string; cacheControl: string }): void {
  res.statusCode = 200;
  res.setHeader('X-Accel-Redirect', uri);
  res.setHeader('Content-Type', headers.contentType);
  res.setHeader('Cache-Control', headers.cacheControl);
  res.setHeader('Content-Length', 0);
  res.end();
}
