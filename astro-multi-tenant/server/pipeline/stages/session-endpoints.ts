import type { SiteRequest, Stage } from '../context.ts';
import { SESSION_PREFIX, type Sessions, type SignInForm } from '../../session/sessions.ts';
import { sendText } from '../../http/respond.ts';
import type { Renderer } from '../../render/astro-renderer.ts';
import { siteView } from '../../render/site-view.ts';
import type { Site } from '../../sites/loader.ts';

/**
 * Sign-in, sign-out and whoami under /_platform/session/ (session/sessions.ts), in the site's own
 * look. Without sessions configured these paths are plain platform 404s, and a POST is a 405.
 */
export function sessionEndpointsStage(deps: { sessions: Sessions | undefined; renderer: Renderer; stylesheets: (site: Site) => string[] }): Stage<SiteRequest> {
  return async (ctx) => {
    const { req, res, site, target } = ctx;
    if (target.pathname.startsWith(SESSION_PREFIX) && deps.sessions) {
      const action = target.pathname.slice(SESSION_PREFIX.length);
      const render = (status: number, form: SignInForm) =>
        deps.renderer.render(req, res, { kind: 'sign-in', status, site: siteView(site, ctx.siteOrigin), form, stylesheets: deps.stylesheets(site) });
      return deps.sessions.handle(req, res, site, { proto: ctx.proto, authority: ctx.authority }, action, new URLSearchParams(target.search), render);
    }
    if (req.method === 'POST') {
      sendText(res, 405, 'Method not allowed\n', { headers: { Allow: 'GET, HEAD' } });
      return 'method_not_allowed';
    }
    return undefined;
  };
}
