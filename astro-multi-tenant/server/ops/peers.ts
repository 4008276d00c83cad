import { createServer, request, type Server } from 'node:http';
import { lstat, mkdir, readdir, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { PlatformError } from '../errors.ts';

/**
 * Worker-to-worker channel for metrics and status. Every worker listens on a Unix socket named by
 * its pid in one directory shared by the cluster; whichever worker answers a scrape asks all the
 * sockets it finds and combines the answers. This needs nothing from PM2 (whose daemon is the
 * cluster primary and cannot host prom-client's aggregator), works the same under `npm run serve`,
 * and a worker killed with SIGKILL just leaves a dead socket that the next scrape removes.
 *
 * Whoever can write to the directory can add "workers" to the status page and the metrics, and its
 * default name (under the system temp folder, by port) is predictable: so the directory is created
 * 0700 and used only when it is a real directory (not a symlink) owned by this user that no one
 * else may write to (checkPeerDir); otherwise metrics and status cover this worker alone.
 */
export type PeerPart = 'metrics' | 'status';

export interface PeerEndpoint {
  readonly socketPath: string;
  close(): Promise<void>;
}

export type PeerHandlers = Record<PeerPart, () => Promise<unknown>>;

const SUFFIX = '.sock';

/**
 * Resolves when `dir` is safe to share between this user's workers: a directory (lstat, so a
 * symlink planted at the predictable name does not count), owned by `uid`, and not writable by
 * group or others.
 *
 * @throws PlatformError CONFIG_INVALID naming PEER_DIR, the folder and what is wrong with it.
 */
export async function checkPeerDir(dir: string, uid: number | undefined = process.getuid?.()): Promise<void> {
  const info = await lstat(dir);
  const problem = !info.isDirectory()
    ? info.isSymbolicLink() ? 'is a symbolic link' : 'is not a directory'
    : uid !== undefined && info.uid !== uid
      ? `is owned by uid ${info.uid}, not by this process (uid ${uid})`
      : (info.mode & 0o022) !== 0
        ? `is writable by ${(info.mode & 0o020 ? ['group'] : []).concat(info.mode & 0o002 ? ['others'] : []).join(' and ')} (mode ${(info.mode & 0o777).toString(8).padStart(4, '0')})`
        : undefined;
  if (problem) throw new PlatformError('CONFIG_INVALID', `PEER_DIR: ${dir} ${problem}; another local user could add fake workers to the status page, so it is not used (remove it, or set PEER_DIR to a folder only this user can write)`, dir);
}

/**
 * Opens this worker's socket in `dir`, creating the folder 0700 when missing.
 *
 * @throws PlatformError CONFIG_INVALID when the folder is not safe (checkPeerDir); errors from
 *   listen() otherwise.
 */
export async function startPeerEndpoint(dir: string, handlers: PeerHandlers, pid = process.pid): Promise<PeerEndpoint> {
  // 0700: the sockets hand out metrics and site errors, so other local users must not reach them.
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await checkPeerDir(dir);
  const socketPath = join(dir, `${pid}${SUFFIX}`);
  await unlink(socketPath).catch(() => {});
  const server: Server = createServer((req, res) => {
    const part = req.url?.slice(1) as PeerPart;
    const handler = Object.hasOwn(handlers, part) ? handlers[part] : undefined;
    if (!handler) {
      res.writeHead(404).end();
      return;
    }
    handler().then(
      (value) => {
        const body = JSON.stringify(value);
        res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) }).end(body);
      },
      (error: Error) => res.writeHead(500, { 'Content-Type': 'text/plain' }).end(error.message),
    );
  });
  // exclusive: in a cluster worker, a plain listen() would be handed to the primary (PM2's daemon)
  // and shared; this socket must belong to this worker alone.
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ path: socketPath, exclusive: true }, () => resolve());
  });
  server.unref();
  return {
    socketPath,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await unlink(socketPath).catch(() => {});
    },
  };
}

function ask(socketPath: string, part: PeerPart, timeoutMs: number): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, path: `/${part}`, method: 'GET', agent: false, timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        if (res.statusCode !== 200) return reject(new Error(`peer answered ${res.statusCode}: ${text.slice(0, 200)}`));
        try {
          resolve(JSON.parse(text));
        } catch (error) {
          reject(error);
        }
      });
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`peer did not answer within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end();
  });
}

export interface PeerCollection<T> {
  values: T[];
  /** Pids whose socket exists but did not answer in time (busy or stuck), for the status page. */
  unreachable: Array<{ pid: number; error: string }>;
  /** Why the directory was not read at all (checkPeerDir), when it exists but is not safe. */
  refused?: string;
}

/**
 * Asks every worker in `dir` for `part`, this worker included (answered in-process, so a scrape
 * still works if the directory was wiped). Sockets nobody listens on are removed.
 */
export async function collectFromPeers<T>(
  dir: string,
  part: PeerPart,
  self: { pid: number; value: () => Promise<T> },
  timeoutMs: number,
): Promise<PeerCollection<T>> {
  // Checked on every scrape, not only at start: a folder made writable later is not trusted either.
  const refused = await checkPeerDir(dir).then(
    () => undefined,
    (error: NodeJS.ErrnoException) => (error.code === 'ENOENT' ? undefined : error.message),
  );
  if (refused) return { values: [await self.value()], unreachable: [], refused };
  const names = await readdir(dir).catch(() => [] as string[]);
  const others = names.filter((name) => name.endsWith(SUFFIX) && name !== `${self.pid}${SUFFIX}`);
  const values: T[] = [await self.value()];
  const unreachable: PeerCollection<T>['unreachable'] = [];
  await Promise.all(
    others.map(async (name) => {
      const socketPath = join(dir, name);
      try {
        values.push((await ask(socketPath, part, timeoutMs)) as T);
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        if (code === 'ECONNREFUSED' || code === 'ENOENT') {
          await unlink(socketPath).catch(() => {});
          return;
        }
        unreachable.push({ pid: Number(name.slice(0, -SUFFIX.length)), error: (error as Error).message });
      }
    }),
  );
  return { values, unreachable };
}
