import { PlatformError } from '../errors.ts';
import { normalizeHost } from '../tenant/normalize-host.ts';
import type { TenantResolution } from '../tenant/tenant-resolver.ts';

/** The answer to one ask: 200 issue a certificate, 404 don't, 400 the question is malformed. */
export interface TlsAskAnswer {
  status: 200 | 400 | 404;
  /** One line for the body: what was decided, naming the domain or the bad parameter. */
  message: string;
}

export interface TlsAskDeps {
  /** The request path's own tenant resolver (tenant/tenant-resolver.ts): what a request for the name would get now. */
  resolveTenant: (hostname: string) => Promise<TenantResolution>;
}

/**
 * `GET /_platform/tls/ask?domain=<name>`: Caddy's `on_demand_tls { ask … }` question, "may I get
 * a certificate for this name?". Yes (200) exactly for names a request would be served on now:
 * - a site's platform subdomain, when the site exists and its site.json is valid;
 * - a custom domain or alias of a valid site, listed in its site.json, owned by it (host-claims),
 *   and with DOMAIN_VERIFICATION=dns verified for it (or failing within the grace period).
 * Everything else is 404: unknown names, pending or failed domains, a host another site owns,
 * a site whose site.json does not validate. It is the tenant resolver's own answer, so the two
 * can never disagree: from the in-memory host index and domain states, with the site's config
 * from the content cache (one stat per CONTENT_CHECK_MS at most); an unknown name costs at most a
 * share of the rate-limited listing check (tenant/registry.ts), never a file scan per call.
 *
 * `query` is the raw query string; `domain` must appear once, a host name without a port.
 */
export function createTlsAsk(deps: TlsAskDeps) {
  return async function ask(query: string): Promise<TlsAskAnswer> {
    const values = new URLSearchParams(query).getAll('domain');
    if (values.length !== 1 || values[0] === '') return { status: 400, message: 'the query must name one domain: ?domain=<host name>' };
    let hostname: string;
    try {
      const host = normalizeHost(values[0]);
      if (host.port !== undefined) return { status: 400, message: 'domain: a host name without a port' };
      hostname = host.hostname;
    } catch (error) {
      if (error instanceof PlatformError) return { status: 400, message: `domain: ${error.message}` };
      throw error;
    }
    const resolution = await deps.resolveTenant(hostname);
    const served = resolution.kind === 'redirect' || (resolution.kind === 'site' && resolution.state.ok);
    return served ? { status: 200, message: `${hostname} is served here` } : { status: 404, message: `${hostname} is not served here` };
  };
}

export type TlsAsk = ReturnType<typeof createTlsAsk>;
