import { BlockList, isIP } from 'node:net';
import { PlatformError } from '../errors.ts';

/**
 * Which peers may tell us the original Host and scheme. Anyone else sending X-Forwarded-Host is
 * ignored: trusting it from the open internet would let a visitor pick the tenant (and poison
 * caches keyed by host).
 */
export interface TrustedProxies {
  trusts(address: string | undefined): boolean;
  readonly description: string;
}

/** Parses a comma-separated list of IPs and CIDRs (e.g. `127.0.0.1,10.0.0.0/8,::1`). */
export function parseTrustedProxies(spec: string | undefined, field = 'TRUSTED_PROXIES'): TrustedProxies {
  const list = new BlockList();
  const entries = (spec ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  for (const entry of entries) {
    const parts = entry.split('/');
    // Destructuring only the first two parts would read "10.0.0.0/8/9" as 10.0.0.0/8 and silently
    // trust a subnet nobody wrote down.
    if (parts.length > 2) throw new PlatformError('CONFIG_INVALID', `${field}: "${entry}" has more than one "/"`, entry);
    const [address, prefixText] = parts;
    const family = isIP(address ?? '');
    if (family === 0) throw new PlatformError('CONFIG_INVALID', `${field}: "${entry}" is not an IP address or CIDR`, entry);
    const type = family === 4 ? 'ipv4' : 'ipv6';
    if (prefixText === undefined) {
      list.addAddress(address!, type);
      continue;
    }
    const prefix = Number(prefixText);
    const max = family === 4 ? 32 : 128;
    if (!/^\d+$/.test(prefixText) || prefix > max) {
      throw new PlatformError('CONFIG_INVALID', `${field}: "${entry}" has an invalid prefix length`, entry);
    }
    list.addSubnet(address!, prefix, type);
  }
  return {
    description: entries.join(',') || '(none)',
    trusts(address) {
      if (!address || entries.length === 0) return false;
      const plain = address.startsWith('::ffff:') ? address.slice(7) : address;
      const family = isIP(plain);
      if (family === 0) return false;
      return list.check(plain, family === 4 ? 'ipv4' : 'ipv6');
    },
  };
}

export interface EffectiveOrigin {
  rawHost: string | undefined;
  proto: 'http' | 'https';
  /** True when the host came from X-Forwarded-Host of a trusted proxy. */
  forwarded: boolean;
}

function firstValue(header: string | string[] | undefined): string | undefined {
  const value = Array.isArray(header) ? header[0] : header;
  if (value === undefined) return undefined;
  const first = value.split(',')[0]?.trim();
  return first === '' ? undefined : first;
}

/** Picks the Host and scheme the visitor actually used, honouring forwarding headers only from trusted peers. */
export function effectiveOrigin(
  headers: Record<string, string | string[] | undefined>,
  remoteAddress: string | undefined,
  encrypted: boolean,
  proxies: TrustedProxies,
): EffectiveOrigin {
  const direct = typeof headers.host === 'string' ? headers.host : undefined;
  const ownProto = encrypted ? 'https' : 'http';
  if (!proxies.trusts(remoteAddress)) return { rawHost: direct, proto: ownProto, forwarded: false };
  const fHost = firstValue(headers['x-forwarded-host']);
  const fProto = firstValue(headers['x-forwarded-proto'])?.toLowerCase();
  return {
    rawHost: fHost ?? direct,
    proto: fProto === 'https' || fProto === 'http' ? fProto : ownProto,
    forwarded: fHost !== undefined,
  };
}

export interface Client {
  /** The client's address (or a non-IP hop a trusted proxy passed on), undefined when unknown. */
  address: string | undefined;
  /** True when `address` came from X-Forwarded-For rather than from the socket itself. */
  forwarded: boolean;
}

/**
 * The visitor, with `proxy-addr` semantics: the peer itself, or, when the peer is a trusted proxy,
 * the nearest X-Forwarded-For hop that is not a trusted proxy (the right-most hop we did not add
 * ourselves; anything left of it is client-supplied and can be forged). When every hop is trusted,
 * the left-most one. A hop that is not an IP address stops the walk and is returned as it is.
 *
 * @see https://github.com/jshttp/proxy-addr#proxyaddrreq-trust
 */
export function resolveClient(
  headers: Record<string, string | string[] | undefined>,
  remoteAddress: string | undefined,
  proxies: TrustedProxies,
): Client {
  if (!proxies.trusts(remoteAddress)) return { address: remoteAddress, forwarded: false };
  const raw = headers['x-forwarded-for'];
  const chain = (Array.isArray(raw) ? raw.join(',') : (raw ?? '')).split(',').map((s) => s.trim()).filter(Boolean);
  for (let i = chain.length - 1; i >= 0; i--) {
    const hop = chain[i]!;
    if (isIP(hop) === 0 || !proxies.trusts(hop)) return { address: hop, forwarded: true };
  }
  return chain.length > 0 ? { address: chain[0], forwarded: true } : { address: remoteAddress, forwarded: false };
}

/** The visitor's address (resolveClient without saying where it came from). */
export function clientAddress(
  headers: Record<string, string | string[] | undefined>,
  remoteAddress: string | undefined,
  proxies: TrustedProxies,
): string | undefined {
  return resolveClient(headers, remoteAddress, proxies).address;
}

/** True for 127.0.0.0/8, ::1 and their IPv4-mapped forms (::ffff:127.x.y.z). */
export function isLoopback(address: string | undefined): boolean {
  if (!address) return false;
  const plain = address.toLowerCase().startsWith('::ffff:') && isIP(address.slice(7)) === 4 ? address.slice(7) : address;
  const family = isIP(plain);
  if (family === 4) return plain.startsWith('127.');
  if (family === 6) return LOOPBACK_V6.check(plain, 'ipv6');
  return false;
}

const LOOPBACK_V6 = new BlockList();
LOOPBACK_V6.addAddress('::1', 'ipv6');
