import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Exchange } from './context.ts';
import type { Logger } from '../log.ts';

/**
 * The context every request starts with. Its logger is a pino child carrying `reqId` (and `site`
 * once a stage has set `siteId`), made only when a stage logs something: most requests log only
 * their access line, which carries those bindings itself, so the hot path makes no child at all.
 */
export function createExchange(req: IncomingMessage, res: ServerResponse, id: string, logger: Logger): Exchange {
  let child: Logger | undefined;
  let childSite: string | undefined;
  return {
    req,
    res,
    id,
    siteId: undefined,
    get log(): Logger {
      if (!child || childSite !== this.siteId) {
        childSite = this.siteId;
        child = logger.child(childSite === undefined ? { reqId: id } : { reqId: id, site: childSite });
      }
      return child;
    },
  };
}
