import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './cluster.ts';
import { StartError, stopChild } from './processes.ts';

export interface RunningRedis {
  url: string;
  port: number;
  /** The current server's pid (a new one after kill() and start()). */
  readonly pid: number | undefined;
  /** SIGKILLs the server (as a crash would); start() brings it back on the same port and data dir. */
  kill(): Promise<void>;
  start(): Promise<void>;
  stop(): Promise<void>;
}

function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    let reply = '';
    socket.setTimeout(500, () => socket.destroy());
    socket.on('connect', () => socket.write('PING\r\n'));
    socket.on('data', (d) => {
      reply += d.toString();
      if (reply.includes('\r\n')) socket.end();
    });
    socket.on('close', () => resolve(reply.startsWith('+PONG')));
    socket.on('error', () => resolve(false));
  });
}

/**
 * A real redis-server of the test's own on a free loopback port, with AOF on so a killed and
 * restarted server keeps its sessions (as production Redis with AOF would).
 */
export async function startRedis(options: { readyTimeoutMs?: number } = {}): Promise<RunningRedis> {
  const port = await freePort();
  const dir = await mkdtemp(join(tmpdir(), 'amt-redis-'));
  const readyTimeoutMs = options.readyTimeoutMs ?? 10_000;
  let child: ChildProcess | undefined;

  async function start() {
    const spawned = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'yes', '--appendfsync', 'always', '--dir', dir], { stdio: 'ignore' });
    child = spawned;
    let spawnError: Error | undefined;
    spawned.once('error', (error) => (spawnError = error));
    const started = Date.now();
    try {
      while (!(await ping(port))) {
        if (spawnError) throw new Error(`cannot run redis-server: ${spawnError.message} (is redis-server installed?)`);
        if (spawned.exitCode !== null) throw new Error(`redis-server exited with ${spawned.exitCode}`);
        if (Date.now() - started > readyTimeoutMs) throw new Error(`redis-server did not answer PING within ${readyTimeoutMs} ms`);
        await new Promise((r) => setTimeout(r, 50));
      }
    } catch (error) {
      await stopChild(spawned, 'SIGKILL', 0);
      throw new StartError((error as Error).message, [spawned.pid]);
    }
  }

  async function kill() {
    if (child) await stopChild(child, 'SIGKILL', 0);
  }

  try {
    await start();
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    get pid() {
      return child?.pid;
    },
    kill,
    start,
    async stop() {
      await kill();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** REDIS_URL when the environment provides a shared one, else a server of our own. */
export async function redisForTests(): Promise<{ url: string; stop(): Promise<void> }> {
  if (process.env.REDIS_URL) return { url: process.env.REDIS_URL, stop: async () => {} };
  return startRedis();
}
