import { X509Certificate } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { leafPem } from './pem.ts';
import { parseRetryAfter } from './acme-problem.ts';

/**
 * ACME Renewal Information (ARI, RFC 9773): the CA tells, per certificate, the window in which to
 * renew it. A certificate the CA revoked (or is about to) gets a window that has already started,
 * which is how a CA's own revocation reaches us: Let's Encrypt serves ARI. Debian's pebble 2.4 has
 * no `renewalInfo` in its directory; then nothing is asked and renewal goes by dates alone.
 */

/** The window the CA suggests (ms since the epoch) and when to ask again. */
export interface RenewalWindow {
  start: number;
  end: number;
  /** The CA's Retry-After (ms), when it sent one. */
  retryAfterMs?: number;
}

/** Reads a DER length at `at` (the byte after the tag): the value's length and where the value starts. */
function derLength(der: Buffer, at: number): { length: number; start: number } {
  const first = der[at];
  if (first === undefined) throw new Error('truncated DER');
  if (first < 0x80) return { length: first, start: at + 1 };
  const bytes = first & 0x7f;
  if (bytes === 0 || bytes > 4) throw new Error('unsupported DER length');
  let length = 0;
  for (let i = 1; i <= bytes; i++) length = length * 256 + (der[at + i] ?? 0);
  return { length, start: at + 1 + bytes };
}

/** The element at `at`: its tag, where its value starts and where the next element begins. */
function derElement(der: Buffer, at: number): { tag: number; start: number; end: number } {
  const tag = der[at];
  if (tag === undefined) throw new Error('truncated DER');
  const { length, start } = derLength(der, at + 1);
  if (start + length > der.length) throw new Error('truncated DER');
  return { tag, start, end: start + length };
}

// 2.5.29.35 authorityKeyIdentifier, as its DER OBJECT IDENTIFIER.
const AKI_OID = Buffer.from([0x06, 0x03, 0x55, 0x1d, 0x23]);

/**
 * The ARI identifier of the leaf of `chainPem` (RFC 9773 §4.1): base64url of the authority key
 * identifier's keyIdentifier, a dot, base64url of the serial number's DER value bytes (with its
 * leading zero when there is one). Pure. @throws Error when the certificate has no AKI keyIdentifier.
 */
export function ariCertId(chainPem: string): string {
  const der = new X509Certificate(leafPem(chainPem)).raw;
  // Certificate ::= SEQUENCE { tbsCertificate SEQUENCE { [0] version OPTIONAL, serialNumber INTEGER, … } … }
  const tbs = derElement(der, derElement(der, 0).start);
  let at = tbs.start;
  if (der[at] === 0xa0) at = derElement(der, at).end;
  const serial = derElement(der, at);
  if (serial.tag !== 0x02) throw new Error('certificate: no serial number where expected');
  // Extension ::= SEQUENCE { extnID OID, critical BOOLEAN DEFAULT FALSE, extnValue OCTET STRING }
  const oid = der.indexOf(AKI_OID, serial.end);
  if (oid < 0) throw new Error('certificate: no authority key identifier');
  let next = oid + AKI_OID.length;
  if (der[next] === 0x01) next = derElement(der, next).end;
  const value = derElement(der, next);
  if (value.tag !== 0x04) throw new Error('certificate: malformed authority key identifier');
  // AuthorityKeyIdentifier ::= SEQUENCE { keyIdentifier [0] IMPLICIT OCTET STRING OPTIONAL, … }
  const aki = derElement(der, value.start);
  const keyId = derElement(der, aki.start);
  if (aki.tag !== 0x30 || keyId.tag !== 0x80 || keyId.start >= aki.end) throw new Error('certificate: the authority key identifier has no keyIdentifier');
  return `${der.subarray(keyId.start, keyId.end).toString('base64url')}.${der.subarray(serial.start, serial.end).toString('base64url')}`;
}

/** A RenewalInfo answer (`{ suggestedWindow: { start, end } }`, RFC 3339 times), or undefined when it is not one. Pure. */
export function parseRenewalWindow(json: unknown): { start: number; end: number } | undefined {
  const window = (json as { suggestedWindow?: { start?: unknown; end?: unknown } } | null)?.suggestedWindow;
  if (typeof window?.start !== 'string' || typeof window.end !== 'string') return undefined;
  const start = Date.parse(window.start);
  const end = Date.parse(window.end);
  return Number.isNaN(start) || Number.isNaN(end) || end < start ? undefined : { start, end };
}

/**
 * When to renew inside a suggested window (RFC 9773 §4.2: a random moment in it, so a CA's mass
 * revocation does not bring every client at once); at once when the window has already ended.
 * `random` in [0, 1). Pure.
 */
export function renewalMoment(window: { start: number; end: number }, now: number, random: number): number {
  if (window.end <= now) return now;
  const from = Math.max(window.start, now);
  return from + Math.floor((window.end - from) * random);
}

/** GET `url`, JSON body; plain http only for tests' local CAs (the config requires https). */
function getJson(url: string, timeoutMs: number): Promise<{ status: number; json: unknown; retryAfter: string | undefined }> {
  return new Promise((resolve, reject) => {
    const request = url.startsWith('http:') ? httpRequest : httpsRequest;
    const req = request(url, { method: 'GET', timeout: timeoutMs, headers: { accept: 'application/json' } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        body += chunk;
        // A renewal-information answer is a few hundred bytes; a directory a few kilobytes.
        if (body.length > 64 * 1024) req.destroy(new Error(`${url}: answer larger than 64 KiB`));
      });
      res.on('end', () => {
        let json: unknown;
        try {
          json = JSON.parse(body);
        } catch {
          json = undefined;
        }
        const retryAfter = res.headers['retry-after'];
        resolve({ status: res.statusCode ?? 0, json, retryAfter: typeof retryAfter === 'string' ? retryAfter : undefined });
      });
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`${url}: no answer within ${timeoutMs / 1000} s`)));
    req.on('error', reject);
    req.end();
  });
}

/**
 * Asks the CA of `directoryUrl` for a certificate's renewal window: undefined when its directory
 * has no `renewalInfo` (the directory is read at most once an hour). Unauthenticated GETs (RFC 9773
 * §4.2), so no account is needed. @throws Error when the CA does not answer or answers with no window.
 */
export function createRenewalInfoClient(options: { directoryUrl: string; timeoutMs?: number; now?: () => number }): (chainPem: string) => Promise<RenewalWindow | undefined> {
  const timeoutMs = options.timeoutMs ?? 10_000;
  const now = options.now ?? Date.now;
  let directory: { at: number; renewalInfo: string | undefined } | undefined;
  return async (chainPem) => {
    if (!directory || now() - directory.at > 3600_000) {
      const res = await getJson(options.directoryUrl, timeoutMs);
      if (res.status !== 200) throw new Error(`the CA's directory answered ${res.status}`);
      const url = (res.json as { renewalInfo?: unknown } | undefined)?.renewalInfo;
      directory = { at: now(), renewalInfo: typeof url === 'string' ? url : undefined };
    }
    if (!directory.renewalInfo) return undefined;
    const res = await getJson(`${directory.renewalInfo.replace(/\/+$/, '')}/${ariCertId(chainPem)}`, timeoutMs);
    if (res.status !== 200) throw new Error(`renewal information answered ${res.status}`);
    const window = parseRenewalWindow(res.json);
    if (!window) throw new Error('renewal information without a suggested window');
    return { ...window, retryAfterMs: parseRetryAfter(res.retryAfter, now()) };
  };
}
