import { collectFromPeers } from './peers.ts';
import { buildStatusModel, type StatusInput, type StatusModel, type WorkerStatus } from './status.ts';

export interface ClusterStatusDeps {
  peerDir: () => string;
  ownStatus: () => WorkerStatus;
  platformDomain: string;
  /** Every site folder with the hosts it claims, as the host index knows it. */
  known: () => StatusInput['known'];
  /** Validates the given sites' site.json from disk (bounded), without touching the site cache. */
  check: (ids: string[]) => Promise<StatusInput['checked']>;
  timeoutMs: number;
}

/** The status page's model for the whole machine's cluster: every worker's state over the peer sockets. */
export function createClusterStatus(deps: ClusterStatusDeps) {
  return async function status(): Promise<StatusModel> {
    const all = await collectFromPeers(deps.peerDir(), 'status', { pid: process.pid, value: async () => deps.ownStatus() }, deps.timeoutMs);
    const known = deps.known();
    return buildStatusModel({
      now: new Date(),
      platformDomain: deps.platformDomain,
      known,
      workers: all.values,
      unreachable: all.unreachable,
      checked: await deps.check(known.map((s) => s.id)),
    });
  };
}
