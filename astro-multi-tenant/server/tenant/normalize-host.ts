import { isIPv6 } from 'node:net';
import { domainToASCII } from 'node:url';
import { PlatformError } from '../errors.ts';

export interface NormalizedHost {
  /** Lowercase ASCII hostname (punycode for IDNs), no port, no trailing dot. IPv6 stays bracketed. */
  hostname: string;
  /** The port the client asked for, if it named one. */
  port: number | undefined;
}

const LABEL = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/;
const IPV4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;
const MAX_HOST_LENGTH = 253;

/**
 * Turns a raw Host (or X-Forwarded-Host) value into the one form the host index is keyed by.
 * Anything that is not a plausible DNS name or IP literal is rejected, because a lenient parser here
 * is how one tenant's cache entries or cookies end up keyed under another tenant's name.
 */
export function normalizeHost(raw: string | undefined): NormalizedHost {
  // Every request pays for this, and the same few Host values come back all the time: remember
  // the good ones (bounded; junk is never stored, so it cannot flush the real hosts out for long).
  const known = raw === undefined ? undefined : normalized.get(raw);
  if (known) return known;
  const result = parseHost(raw);
  if (normalized.size >= MEMO_LIMIT) normalized.clear();
  normalized.set(raw!, Object.freeze(result));
  return result;
}

const MEMO_LIMIT = 10_000;
const normalized = new Map<string, NormalizedHost>();

function parseHost(raw: string | undefined): NormalizedHost {
  if (raw === undefined || raw.trim() === '') {
    throw new PlatformError('HOST_MISSING', 'The request has no Host header', raw);
  }
  let value = raw.trim();
  // Node hands header bytes over as latin1; a client that sent a UTF-8 IDN (curl does) is decoded
  // back so it can be punycoded like the same name typed in a browser.
  if (/[\x80-\xff]/.test(value) && !/[^\x00-\xff]/.test(value)) {
    const utf8 = Buffer.from(value, 'latin1').toString('utf8');
    if (!utf8.includes('\ufffd')) value = utf8;
  }
  if (value.length > 1024 || /[\s@/\\?#%,;"'<>]/.test(value)) {
    throw new PlatformError('HOST_MALFORMED', 'host name contains characters a host name cannot have', raw);
  }

  let hostPart = value;
  let portPart: string | undefined;
  if (value.startsWith('[')) {
    const close = value.indexOf(']');
    if (close === -1) throw new PlatformError('HOST_MALFORMED', 'Host header has an unclosed IPv6 literal', raw);
    hostPart = value.slice(0, close + 1);
    const rest = value.slice(close + 1);
    if (rest !== '') {
      if (!rest.startsWith(':')) throw new PlatformError('HOST_MALFORMED', 'Host header has junk after the IPv6 literal', raw);
      portPart = rest.slice(1);
    }
  } else {
    const colon = value.lastIndexOf(':');
    if (colon !== -1) {
      hostPart = value.slice(0, colon);
      portPart = value.slice(colon + 1);
    }
  }

  // RFC 3986 §3.2.3: the port may be empty (`host:`), which means the scheme's default.
  const port = portPart === undefined || portPart === '' ? undefined : parsePort(portPart, raw);

  if (hostPart.startsWith('[')) {
    const literal = hostPart.slice(1, -1).toLowerCase();
    // A character-class check alone let through shapes such as `:::` or `1:2:3:4:5:6:7:8:9`; the
    // platform's own parser knows the real grammar (zone ids never get here: `%` is refused above).
    if (!isIPv6(literal)) {
      throw new PlatformError('HOST_MALFORMED', 'Host header has an invalid IPv6 literal', raw);
    }
    return { hostname: `[${literal}]`, port };
  }

  let hostname = hostPart.endsWith('.') ? hostPart.slice(0, -1) : hostPart;
  if (hostname === '') throw new PlatformError('HOST_MALFORMED', 'Host header has an empty host name', raw);
  if (hostname.includes(':')) throw new PlatformError('HOST_MALFORMED', 'Host header has more than one port separator', raw);

  // domainToASCII lowercases, applies IDNA mapping and punycode; it returns '' for invalid input.
  const ascii = /^[\x21-\x7e]+$/.test(hostname) ? hostname.toLowerCase() : domainToASCII(hostname);
  if (ascii === '') throw new PlatformError('HOST_MALFORMED', 'Host header is not a valid internationalised domain name', raw);
  hostname = ascii;

  if (hostname.length > MAX_HOST_LENGTH) {
    throw new PlatformError('HOST_MALFORMED', `Host name is longer than ${MAX_HOST_LENGTH} characters`, raw);
  }
  const ipv4 = IPV4.exec(hostname);
  if (ipv4) {
    if (ipv4.slice(1).some((octet) => Number(octet) > 255)) {
      throw new PlatformError('HOST_MALFORMED', 'Host header has an invalid IPv4 address', raw);
    }
    return { hostname, port };
  }
  for (const label of hostname.split('.')) {
    if (!LABEL.test(label)) {
      throw new PlatformError('HOST_MALFORMED', `Host name label "${label}" is not a valid DNS label`, raw);
    }
  }
  return { hostname, port };
}

function parsePort(text: string, raw: string): number {
  if (!/^\d{1,5}$/.test(text)) throw new PlatformError('HOST_MALFORMED', 'Host header has a non-numeric port', raw);
  const port = Number(text);
  if (port < 1 || port > 65535) throw new PlatformError('HOST_MALFORMED', 'Host header port is out of range', raw);
  return port;
}

/** host[:port] as it should appear in a URL we generate for the visitor. */
export function formatAuthority(hostname: string, port: number | undefined): string {
  return port === undefined ? hostname : `${hostname}:${port}`;
}
