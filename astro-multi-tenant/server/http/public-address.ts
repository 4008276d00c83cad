import ipaddr from 'ipaddr.js';

/**
 * Why `address` is not a public internet address, or undefined when it is one.
 *
 * Public means ipaddr.js classifies it as `unicast`: everything in the IANA special-purpose
 * registries (RFC 6890) is refused: loopback, private (RFC 1918), link-local (169.254.0.0/16,
 * where cloud metadata lives, and fe80::/10), carrier-grade NAT (100.64.0.0/10), unique local
 * (fc00::/7), multicast, broadcast, unspecified (0.0.0.0, ::), documentation and benchmarking
 * ranges, reserved 240.0.0.0/4, and the IPv6 forms that embed an IPv4 address and can reach one
 * (NAT64 64:ff9b::/96, 6to4 2002::/16, Teredo). An IPv4-mapped IPv6 address (::ffff:a.b.c.d) is
 * judged as the IPv4 address it is.
 *
 * @see https://www.iana.org/assignments/iana-ipv4-special-registry/
 * @see https://www.iana.org/assignments/iana-ipv6-special-registry/
 */
export function addressProblem(address: string): string | undefined {
  const plain = address.startsWith('[') && address.endsWith(']') ? address.slice(1, -1) : address;
  if (!ipaddr.isValid(plain)) return `${address} is not an IP address`;
  const parsed = ipaddr.process(plain);
  const range = parsed.range();
  return range === 'unicast' ? undefined : `${address} is not a public address (${range})`;
}
