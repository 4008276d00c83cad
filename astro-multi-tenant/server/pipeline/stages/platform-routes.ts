import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Exchange, Outcome, Stage } from '../context.ts';

/** Health, readiness, metrics and status (ops/platform-routes.ts). */
export type PlatformRoutes = (req: IncomingMessage, res: ServerResponse) => Promise<Outcome>;

/**
 * The operator's endpoints, answered on every host before anything else: a load balancer probing
 * by IP has no tenant Host, and a readiness probe must not depend on the sites folder.
 */
export function platformRoutesStage(routes: PlatformRoutes | undefined): Stage<Exchange> {
  return (ctx) => routes?.(ctx.req, ctx.res);
}
