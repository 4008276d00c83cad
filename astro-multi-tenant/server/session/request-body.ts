import type { IncomingMessage } from 'node:http';
import { PlatformError } from '../errors.ts';

/** A request body we refuse; its code maps to 400, 413 or 415 in the error registry (errors.ts). */
export class BodyError extends PlatformError {
  declare readonly code: 'BODY_MALFORMED' | 'BODY_TOO_LARGE' | 'BODY_UNSUPPORTED_TYPE';
  constructor(code: 'BODY_MALFORMED' | 'BODY_TOO_LARGE' | 'BODY_UNSUPPORTED_TYPE', message: string, input?: string) {
    super(code, message, input);
    this.name = 'BodyError';
  }
}

/** Reads a small form or JSON body; anything bigger or of another type is refused, not buffered. */
export async function readFormBody(req: IncomingMessage, limitBytes = 16 * 1024): Promise<Record<string, string>> {
  const type = String(req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  if (type !== 'application/x-www-form-urlencoded' && type !== 'application/json') {
    throw new BodyError('BODY_UNSUPPORTED_TYPE', 'Content-Type must be application/x-www-form-urlencoded or application/json', type);
  }
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > limitBytes) throw new BodyError('BODY_TOO_LARGE', `body larger than ${limitBytes} bytes`);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limitBytes) throw new BodyError('BODY_TOO_LARGE', `body larger than ${limitBytes} bytes`);
    chunks.push(chunk);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  if (type === 'application/json') {
    let json: unknown;
    try {
      json = JSON.parse(text || '{}');
    } catch {
      throw new BodyError('BODY_MALFORMED', 'body is not valid JSON');
    }
    if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new BodyError('BODY_MALFORMED', 'body must be a JSON object');
    return Object.fromEntries(Object.entries(json).filter(([, v]) => typeof v === 'string')) as Record<string, string>;
  }
  return Object.fromEntries(new URLSearchParams(text));
}

/** A `next` target must stay on this site: a path, never `//host` or a scheme. */
export function safeNext(value: string | undefined | null): string {
  // Printable ASCII only: it ends up in a Location header, where anything else would throw.
  if (!value || !value.startsWith('/') || value.startsWith('//') || value.includes('\\') || /[^\x20-\x7e]/.test(value) || value.length > 1000) return '/';
  return value;
}
