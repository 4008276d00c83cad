import type { IncomingMessage } from 'node:http';
import type { HostedRequest, Stage } from '../context.ts';
import { formatAuthority } from '../../tenant/normalize-host.ts';
import { PLATFORM_PAGES, sendText, type PlatformPages } from '../../http/respond.ts';
import { DEFAULT_FAVICON, DEFAULT_FAVICON_TYPE } from '../../http/default-favicon.ts';
import type { PlatformHomeSite } from '../../render/view.ts';

export interface PlatformHomeDeps {
  platformDomain: string;
  pages: PlatformPages;
  /**
   * Site ids the home page may list; undefined lists none. Only embedded mode lists them (one
   * operator's own sites): a shared deployment's bare domain is never a directory of tenants.
   */
  listSites: (() => readonly string[]) | undefined;
  /** Whether this request comes from an operator (ADMIN_ALLOW or the admin token): only they see the list. */
  isAdmin: (req: IncomingMessage) => boolean;
  staticMaxAgeSeconds: number;
}

/** How many sites the home page names before "and N more". */
const HOME_LIST_LIMIT = 200;

/** robots.txt of the platform's own domain: nothing here is content to index. */
const PLATFORM_ROBOTS = 'User-agent: *\nDisallow: /\n';

/**
 * The bare PLATFORM_DOMAIN (`localhost` by default), which no site may claim: its home page at
 * `/` (in embedded mode, and to operators only, a list of the local sites with their links), its
 * favicon and a robots.txt that disallows everything; any other path is the platform 404, never
 * a soft 200.
 */
export function platformHomeStage(deps: PlatformHomeDeps): Stage<HostedRequest> {
  return async (ctx) => {
    const { req, res, host, target } = ctx;
    if (host.hostname !== deps.platformDomain) return undefined;
    const path = target.segments.join('/');
    if (path === '' && !target.trailingSlash) {
      const ids = deps.isAdmin(req) ? deps.listSites?.() : undefined;
      const sites: PlatformHomeSite[] | undefined = ids?.slice(0, HOME_LIST_LIMIT).map((id) => ({ id, url: `${ctx.proto}://${formatAuthority(`${id}.${deps.platformDomain}`, host.port)}/` }));
      await deps.pages.home(req, res, deps.platformDomain, sites, Math.max(0, (ids?.length ?? 0) - HOME_LIST_LIMIT));
      return 'platform';
    }
    if (path === 'favicon.ico') {
      sendText(res, 200, DEFAULT_FAVICON, { type: DEFAULT_FAVICON_TYPE, headers: { 'Cache-Control': `public, max-age=${deps.staticMaxAgeSeconds}` } });
      return 'static';
    }
    if (path === 'robots.txt') {
      sendText(res, 200, PLATFORM_ROBOTS, { headers: { 'Cache-Control': 'public, max-age=300' } });
      return 'robots';
    }
    await deps.pages.error(req, res, PLATFORM_PAGES.notFound);
    return 'platform';
  };
}
