import type { HostedRequest, SiteRequest } from '../context.ts';
import type { Refinement } from '../compose.ts';
import type { Sessions, Viewer } from '../../session/sessions.ts';
import type { TenantResolution } from '../../tenant/tenant-resolver.ts';
import { formatAuthority } from '../../tenant/normalize-host.ts';
import { PLATFORM_PAGES, redirect, type PlatformPages } from '../../http/respond.ts';

export interface TenantStageDeps {
  /** Host → the tenant serving it now (tenant/tenant-resolver.ts). */
  resolveTenant: (hostname: string) => Promise<TenantResolution>;
  pages: PlatformPages;
  sessions: Sessions | undefined;
  edgeCacheSeconds: number;
  /** Delays the unknown-host answer while the worker is busy (pipeline/refusal-pacer.ts); undefined = never. */
  pace?: () => Promise<void> | undefined;
}

/**
 * Finds the tenant for the normalised host. Unknown hosts get the platform's 404 (after `pace`), aliases a 301 to the site's primary domain, a site whose
 * site.json is invalid a 503 (thrown: errors.ts maps it); a valid site continues with a context
 * whose `site` is always set.
 */
export function tenantStage(deps: TenantStageDeps): Refinement<HostedRequest, SiteRequest> {
  return async (ctx) => {
    const { req, res, host, target } = ctx;
    const tenant = await deps.resolveTenant(host.hostname);
    if (tenant.kind === 'unknown') {
      const paced = deps.pace?.();
      if (paced) await paced;
      await deps.pages.error(req, res, PLATFORM_PAGES.unknownHost);
      return 'unknown_host';
    }
    ctx.siteId = tenant.siteId;
    if (tenant.kind === 'redirect') {
      redirect(res, 301, `${ctx.proto}://${formatAuthority(tenant.toHost, host.port)}${target.pathname}${target.search}`, { cache: 'public', edgeCacheSeconds: deps.edgeCacheSeconds });
      return 'redirect';
    }
    if (!tenant.state.ok) throw tenant.state.error;
    const site = tenant.state.site;
    const primary = site.config.domains[0] ?? host.hostname;
    let viewer: Promise<Viewer> | undefined;
    const origin = { proto: ctx.proto, authority: ctx.authority };
    return Object.assign(ctx, {
      site,
      siteOrigin: `${ctx.proto}://${formatAuthority(primary, host.port)}`,
      siteLoadMs: tenant.loadMs,
      viewer: () => (viewer ??= deps.sessions ? deps.sessions.viewer(req, site, origin) : Promise.resolve({ kind: 'anonymous' } as const)),
    });
  };
}
