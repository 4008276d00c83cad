import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'node:http';
import { connect, type Socket } from 'node:net';
import { copySites, removeDir, startServer, type RunningServer } from '../helpers/server.ts';
import { startNginx, type RunningNginx } from '../helpers/nginx.ts';
import { LOADED_MACHINE_MARGIN_MS } from '../helpers/eventually.ts';

/**
 * The edge bounds each client (real nginx, real server): one client address opening far more
 * half-sent requests than its limit gets the excess closed at once and the rest closed after the
 * header timeout, while another client (a second loopback address, so per-address limits apply
 * to the first only) gets its pages throughout. A small worker_connections budget (one worker,
 * 512 connections) makes the flood big enough to exhaust nginx if the limit did not hold, which
 * the last test shows by removing it.
 */
const PER_CLIENT = 16;
const TIMEOUT_S = 2;
const FLOOD = 300;
const EDGE_ENV = { NGINX_CONN_PER_IP: String(PER_CLIENT), NGINX_CLIENT_TIMEOUT_S: String(TIMEOUT_S), NGINX_WORKER_CONNECTIONS: '512', NGINX_WORKERS: '1' };
const ATTACKER = '127.0.0.1';
const OTHER = '127.0.0.2';

let sitesDir: string;
let app: RunningServer;
let edge: RunningNginx;

beforeAll(async () => {
  sitesDir = await copySites();
  app = await startServer(sitesDir);
  edge = await startNginx(app.port, sitesDir, EDGE_ENV);
}, 60_000);

afterAll(async () => {
  await edge?.stop();
  await app?.stop();
  await removeDir(sitesDir);
});

interface Flood {
  /** For each first connection: ms from its open until the server closed it (undefined: still open). */
  closedAfter: (number | undefined)[];
  stop(): void;
}

/**
 * `count` connections from `from`, each sending a request header that never ends. With
 * `reconnect`, every connection the server closes is opened again 10 ms later, as an attacker
 * would, so the flood keeps pressing on whatever limit there is.
 */
async function halfSentFlood(port: number, from: string, count: number, options: { bytes?: string; reconnect?: boolean } = {}): Promise<Flood> {
  const bytes = options.bytes ?? 'GET / HTTP/1.1\r\nHost: acme.example\r\nX-Slow: ';
  const sockets = new Set<Socket>();
  const closedAfter: (number | undefined)[] = new Array(count).fill(undefined);
  let stopped = false;
  const open = (i: number | undefined, opened: () => void) => {
    const started = performance.now();
    const socket = connect({ port, host: '127.0.0.1', localAddress: from }, () => {
      socket.write(bytes);
      opened();
    });
    sockets.add(socket);
    socket.on('error', () => opened());
    socket.on('close', () => {
      sockets.delete(socket);
      if (i !== undefined) closedAfter[i] = performance.now() - started;
      opened();
      if (options.reconnect && !stopped) setTimeout(() => !stopped && open(undefined, () => {}), 10);
    });
  };
  await Promise.all(Array.from({ length: count }, (_, i) => new Promise<void>((opened) => open(i, opened))));
  return {
    closedAfter,
    stop: () => {
      stopped = true;
      for (const socket of sockets) socket.destroy();
    },
  };
}

/** One GET from `from` that must answer within `timeoutMs`: its status, or the error. */
function getFrom(port: number, from: string, host: string, path: string, timeoutMs: number): Promise<number | string> {
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port, path, localAddress: from, headers: { host }, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', (error) => resolve(error.message));
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.end();
  });
}

/** Another client asking for a page every 50 ms until `until` resolves. */
async function otherClientDuring(port: number, until: Promise<unknown>, timeoutMs: number): Promise<(number | string)[]> {
  const answers: (number | string)[] = [];
  let done = false;
  void until.then(() => (done = true));
  while (!done) {
    answers.push(await getFrom(port, OTHER, 'acme.example', '/about', timeoutMs));
    await new Promise((r) => setTimeout(r, 50));
  }
  return answers;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('the edge bounds each client', () => {
  it(`closes one client's connections past ${PER_CLIENT} at once, its half-sent requests after ${TIMEOUT_S} s, and serves another client throughout`, async () => {
    const flood = await halfSentFlood(edge.port, ATTACKER, FLOOD);
    const watched = sleep(TIMEOUT_S * 1000 + LOADED_MACHINE_MARGIN_MS);
    const answers = otherClientDuring(edge.port, watched, 2000);
    try {
      await sleep(500);
      const refusedAtOnce = flood.closedAfter.filter((ms) => ms !== undefined).length;
      expect(refusedAtOnce, 'closed within 500 ms of opening').toBeGreaterThanOrEqual(FLOOD - PER_CLIENT);
      await watched;
      const open = flood.closedAfter.filter((ms) => ms === undefined).length;
      expect(open, 'still open after the header timeout').toBe(0);
      // The ones within the limit were held until the header timeout, not closed early.
      const held = flood.closedAfter.filter((ms) => ms! >= TIMEOUT_S * 1000 - 100);
      expect(held.length).toBeGreaterThan(0);
      expect(held.length).toBeLessThanOrEqual(PER_CLIENT);
      const seen = await answers;
      expect(seen.length).toBeGreaterThan(5);
      expect(seen.filter((a) => a !== 200)).toEqual([]);
    } finally {
      flood.stop();
      await answers;
    }
  }, 30_000);

  it(`closes a request whose body stalls after ${TIMEOUT_S} s`, async () => {
    const started = performance.now();
    const closedAfter = await new Promise<number>((resolve, reject) => {
      const socket = connect({ port: edge.port, host: '127.0.0.1', localAddress: '127.0.0.3' }, () => {
        socket.write('POST /_platform/session/sign-in HTTP/1.1\r\nHost: acme.example\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\nuser=a');
      });
      socket.on('error', () => {});
      socket.on('close', () => resolve(performance.now() - started));
      setTimeout(() => reject(new Error('still open')), TIMEOUT_S * 1000 + LOADED_MACHINE_MARGIN_MS + 2000).unref();
    });
    expect(closedAfter).toBeGreaterThanOrEqual(TIMEOUT_S * 1000 - 100);
    expect(closedAfter).toBeLessThan(TIMEOUT_S * 1000 + LOADED_MACHINE_MARGIN_MS);
  }, 15_000);

  it('lets one client hold no more than its limit of idle keep-alive connections either', async () => {
    const flood = await halfSentFlood(edge.port, '127.0.0.4', PER_CLIENT * 2, { bytes: 'GET /_platform/healthz HTTP/1.1\r\nHost: acme.example\r\n\r\n' });
    try {
      await sleep(500);
      // Each got its answer and stays open (keep-alive) — but only up to the limit.
      expect(flood.closedAfter.filter((ms) => ms === undefined).length).toBe(PER_CLIENT);
    } finally {
      flood.stop();
    }
  });

  it('holds while the client keeps reopening what is closed; without the per-client limit, the same flood starves the other client', async () => {
    const pressOn = async (port: number) => {
      const flood = await halfSentFlood(port, ATTACKER, FLOOD, { reconnect: true });
      try {
        await sleep(300);
        const answers = await otherClientDuring(port, sleep(1500), 1000);
        return answers;
      } finally {
        flood.stop();
      }
    };
    expect((await pressOn(edge.port)).filter((a) => a !== 200)).toEqual([]);

    const unlimited = await startNginx(app.port, sitesDir, EDGE_ENV, { edit: (_file, text) => text.replace(/^\s*limit_conn amt_conn_per_ip \d+;\n/m, '') });
    try {
      expect(await unlimited.test()).toMatchObject({ ok: true });
      const starved = await pressOn(unlimited.port);
      expect(starved.filter((a) => a !== 200).length, JSON.stringify(starved)).toBeGreaterThan(0);
    } finally {
      await unlimited.stop();
    }
  }, 30_000);
});
