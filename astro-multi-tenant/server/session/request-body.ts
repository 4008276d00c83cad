import type { IncomingMessage } from 'node:http';

export class BodyError extends Error {
  readonly status: 413 | 415 | 400;
  constructor(status: 413 | 415 | 400, message: string) {
    super(message);
    this.status = status;
  }
}

/** Reads a small form or JSON body; anything bigger or of another type is refused, not buffered. */
export async function readFormBody(req: IncomingMessage, limitBytes = 16 * 1024): Promise<Record<string, string>> {
  const type = String(req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  if (type !== 'application/x-www-form-urlencoded' && type !== 'application/json') {
    throw new BodyError(415, 'Content-Type must be application/x-www-form-urlencoded or application/json');
  }
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > limitBytes) throw new BodyError(413, `body larger than ${limitBytes} bytes`);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limitBytes) throw new BodyError(413, `body larger than ${limitBytes} bytes`);
    chunks.push(chunk);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  if (type === 'application/json') {
    let json: unknown;
    try {
      json = JSON.parse(text || '{}');
    } catch {
      throw new BodyError(400, 'body is not valid JSON');
    }
    if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new BodyError(400, 'body must be a JSON object');
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
