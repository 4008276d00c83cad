/**
 * The one line `npm start` prints for a person once the cluster answers: how many sites it serves
 * and which URLs to open. The JSON logs around it stay as they are, for machines.
 */

export interface ServingLineInput {
  /** Site ids as the server counts them (tenant/registry.ts over sites/site-source.ts), sorted. */
  siteIds: readonly string[];
  /** Normalised PLATFORM_DOMAIN (ASCII): every site answers on `<id>.<platformDomain>`. */
  platformDomain: string;
  /** The port the workers listen on (PORT); 1..65535. */
  port: number;
  /** HOST the workers bind; undefined, `0.0.0.0` or `::` mean every interface. */
  host: string | undefined;
  /** The sites folder, named when it holds no site yet. */
  sitesDir: string;
  /** How many site URLs to list before "and N more" (default 4: every sample site). */
  limit?: number;
}

const EVERY_INTERFACE = new Set(['0.0.0.0', '::', '[::]']);

/**
 * `http://host[:port]`, the port left out when it is HTTP's default (80); IPv6 literals get the
 * brackets a URL needs (RFC 3986 §3.2.2).
 */
export function httpOrigin(hostname: string, port: number): string {
  const host = hostname.includes(':') && !hostname.startsWith('[') ? `[${hostname}]` : hostname;
  return port === 80 ? `http://${host}` : `http://${host}:${port}`;
}

/**
 * e.g. `astro-multi-tenant: serving 4 sites on http://localhost:4321 — open
 * http://acme.localhost:4321/, … · status page http://localhost:4321/_platform/status` (one line).
 * Sites are listed by their platform subdomain, which every site has (custom domains need DNS);
 * a server bound to every interface is named as `localhost`, where the status page admits the
 * reader by default (ADMIN_ALLOW). Pure.
 */
export function servingLine(input: ServingLineInput): string {
  const limit = input.limit ?? 4;
  const base = httpOrigin(input.host === undefined || EVERY_INTERFACE.has(input.host) ? 'localhost' : input.host, input.port);
  const count = input.siteIds.length;
  const shown = input.siteIds.slice(0, limit).map((id) => `${httpOrigin(`${id}.${input.platformDomain}`, input.port)}/`);
  const rest = count - shown.length;
  const open =
    count === 0
      ? `no site yet: add one with npm run sites -- new <id> (folder ${input.sitesDir})`
      : `open ${shown.join(', ')}${rest > 0 ? ` and ${rest} more (npm run sites -- list)` : ''}`;
  return `astro-multi-tenant: serving ${count} site${count === 1 ? '' : 's'} on ${base} — ${open} · status page ${base}/_platform/status`;
}
