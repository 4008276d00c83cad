import { Server as NetServer, type Socket } from 'node:net';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';

export interface DrainOptions {
  /** Hard limit for the drain; whatever is still open then is cut. Keep below PM2's kill_timeout. */
  deadlineMs: number;
  /** An idle keep-alive connection is closed once it has been idle this long during the drain. */
  idleGraceMs?: number;
  now?: () => number;
}

interface ConnectionState {
  active: number;
  idleSince: number;
}

/**
 * Graceful stop for an HTTP server. `http.Server.close()` drops every idle keep-alive connection
 * at once, which races with a client that is just sending its next request on it: that request
 * fails, and under load some always do. Instead this stops listening, answers every further
 * request on a live connection with `Connection: close` (so the client reconnects, to another
 * worker), closes connections only after they stayed idle for `idleGraceMs`, and cuts whatever is
 * left at the deadline.
 */
export function createDrain(server: Server, options: DrainOptions) {
  const now = options.now ?? Date.now;
  const idleGraceMs = options.idleGraceMs ?? 1000;
  const connections = new Map<Socket, ConnectionState>();
  let draining = false;
  let drained: Promise<void> | undefined;

  server.on('connection', (socket: Socket) => {
    connections.set(socket, { active: 0, idleSince: now() });
    socket.once('close', () => connections.delete(socket));
  });

  return {
    get draining() {
      return draining;
    },
    get openConnections() {
      return connections.size;
    },
    /** Call first thing for every request, before anything can send headers. */
    track(req: IncomingMessage, res: ServerResponse) {
      const state = connections.get(req.socket);
      if (state) state.active++;
      if (draining) res.setHeader('Connection', 'close');
      res.once('close', () => {
        if (!state) return;
        state.active--;
        state.idleSince = now();
      });
    },
    /** Marks the server as draining without closing anything yet (readiness turns false). */
    beginDrain() {
      draining = true;
    },
    /** Stops accepting and resolves once every connection is closed, or the deadline passed. */
    drain(): Promise<void> {
      draining = true;
      drained ??= new Promise<void>((resolve) => {
        // net.Server's close, not http.Server's: stop listening (in a PM2 worker this tells the
        // primary to route new connections elsewhere) but leave idle keep-alives to the sweep.
        NetServer.prototype.close.call(server);
        const started = now();
        const sweep = setInterval(() => {
          const t = now();
          for (const [socket, state] of connections) {
            if (state.active === 0 && t - state.idleSince >= idleGraceMs) socket.destroy();
          }
          if (t - started >= options.deadlineMs) {
            for (const socket of connections.keys()) socket.destroy();
          }
          if (connections.size === 0) {
            clearInterval(sweep);
            resolve();
          }
        }, 50);
      });
      return drained;
    },
  };
}

export type Drain = ReturnType<typeof createDrain>;
