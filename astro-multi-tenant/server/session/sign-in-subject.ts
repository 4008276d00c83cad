import ipaddr from 'ipaddr.js';

/**
 * Who a sign-in attempt is counted against: the client address (trusted-proxies.ts clientAddress:
 * the socket, or the right-most untrusted X-Forwarded-For hop behind a trusted proxy).
 *
 * IPv4 addresses count one by one (IPv4-mapped IPv6 as the IPv4 address); IPv6 addresses count by
 * their /64, because one subscriber usually holds a whole /64 and could otherwise give every guess
 * a fresh address (RFC 6177 §2 recommends /48–/64 per site). Anything that is not an address (a
 * malformed forwarded hop) counts as itself, and a missing one as "unknown".
 */
export function signInSubject(address: string | undefined): string {
  if (!address) return 'unknown';
  if (!ipaddr.isValid(address)) return address.slice(0, 64);
  const parsed = ipaddr.process(address);
  if (parsed.kind() === 'ipv4') return parsed.toString();
  const words = (parsed as ipaddr.IPv6).parts.slice(0, 4).map((w) => w.toString(16));
  return `${words.join(':')}::/64`;
}
