import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { reasonPhrase } from './respond.ts';

/**
 * The status for a request Node's parser refused (RFC 9110 §15.5): headers too large → 431, a
 * request that did not arrive in time → 408, anything else malformed → 400.
 */
export function clientErrorStatus(error: NodeJS.ErrnoException): 400 | 408 | 431 {
  if (error.code === 'HPE_HEADER_OVERFLOW') return 431;
  if (error.code === 'ERR_HTTP_REQUEST_TIMEOUT' || error.code === 'HPE_HEADER_TIMEOUT') return 408;
  return 400;
}

/**
 * Answers requests that never became requests (a malformed or oversized head, a slow client) on
 * a connection that may still owe earlier answers. HTTP/1.1 answers in order (RFC 9112 §9.3.2):
 * a pipelined client that sends a good request and then a bad one gets the good one's response in
 * full, then the error, then the connection closes. Node's own handler writes the error at once,
 * which drops a response not yet started and would land inside one already streaming.
 *
 * `track` must see every request (server 'request'); `onClientError` is the server's
 * 'clientError' listener.
 */
export function createClientErrors() {
  const lastResponse = new WeakMap<Duplex, ServerResponse>();
  return {
    track(req: IncomingMessage, res: ServerResponse): void {
      lastResponse.set(req.socket, res);
    },
    onClientError(error: NodeJS.ErrnoException, socket: Duplex): void {
      const status = clientErrorStatus(error);
      const answer = () => {
        if (!socket.writable) {
          socket.destroy();
          return;
        }
        socket.end(`HTTP/1.1 ${status} ${reasonPhrase(status)}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
      };
      const owed = lastResponse.get(socket);
      if (owed && !owed.writableFinished && !owed.destroyed) owed.once('close', answer);
      else answer();
    },
  };
}
