import { Resolver } from 'node:dns/promises';
import { PlatformError } from '../errors.ts';

/** TXT lookups: the strings of each record at `name` (a record's chunks joined), [] when there is none. */
export type TxtLookup = (name: string) => Promise<string[]>;

/**
 * Parses DNS_SERVERS: a comma-separated list of `host`, `host:port` or `[ipv6]:port` resolver
 * addresses (IP addresses: node's Resolver.setServers takes no names). Empty = the system resolvers.
 * Throws CONFIG_INVALID naming DNS_SERVERS.
 */
export function parseDnsServers(raw: string | undefined): string[] {
  const items = (raw ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  for (const item of items) {
    const m = /^(?:\[([0-9a-fA-F:.]+)\]|(\d{1,3}(?:\.\d{1,3}){3})|([0-9a-fA-F:]+))(?::(\d{1,5}))?$/.exec(item);
    const port = m?.[4] === undefined ? 53 : Number(m[4]);
    if (!m || (m[3] !== undefined && m[4] !== undefined) || port < 1 || port > 65535) {
      throw new PlatformError('CONFIG_INVALID', `DNS_SERVERS: "${item}" is not an IP address with an optional port (1.2.3.4:53, [::1]:53)`, item);
    }
  }
  return items;
}

/**
 * A TXT lookup through node:dns's c-ares resolver (not getaddrinfo, so it never blocks the libuv
 * thread pool), pointed at `servers` when given. NXDOMAIN and "no data" answer []; timeouts and
 * server failures throw (the verifier reports them and keeps the previous state's rules).
 */
export function createTxtLookup(options: { servers?: readonly string[]; timeoutMs?: number } = {}): TxtLookup {
  const resolver = new Resolver({ timeout: options.timeoutMs ?? 2000, tries: 2 });
  if (options.servers && options.servers.length > 0) resolver.setServers([...options.servers]);
  return async (name) => {
    try {
      const records = await resolver.resolveTxt(name);
      return records.map((chunks) => chunks.join(''));
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'ENOTFOUND' || code === 'ENODATA') return [];
      throw error;
    }
  };
}
