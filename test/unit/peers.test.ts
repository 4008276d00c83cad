import { describe, it, expect, beforeEach, afterEach } from 'vitest';
import { spawn } from 'node:child_process';
import { chmod, chown, mkdir, mkdtemp, readdir, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkPeerDir, collectFromPeers, startPeerEndpoint, type PeerEndpoint, type PeerHandlers } from '../../astro-multi-tenant/server/ops/peers.ts';

const SELF_PID = 100;

let dir: string;
let endpoints: PeerEndpoint[];

beforeEach(async () => {
  // Short base: Unix socket paths are limited to about 100 bytes.
  dir = await mkdtemp(join(tmpdir(), 'amt-peers-'));
  endpoints = [];
});

afterEach(async () => {
  await Promise.all(endpoints.map((e) => e.close()));
  await rm(dir, { recursive: true, force: true });
});

/** An endpoint answering `{ pid, part }` for both parts, unless handlers are given. */
async function peer(pid: number, handlers?: Partial<PeerHandlers>) {
  const endpoint = await startPeerEndpoint(
    dir,
    { metrics: async () => ({ pid, part: 'metrics' }), status: async () => ({ pid, part: 'status' }), ...handlers },
    pid,
  );
  endpoints.push(endpoint);
  return endpoint;
}

const self = (value: unknown = { pid: SELF_PID, part: 'self' }) => ({ pid: SELF_PID, value: async () => value });

/** A socket left behind by a process killed with SIGKILL: the file exists, nobody listens. */
async function staleSocket(path: string) {
  const child = spawn(process.execPath, ['-e', 'require("node:net").createServer().listen(process.argv[1], () => console.log("up"))', path], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  await new Promise<void>((resolve, reject) => {
    child.stdout!.once('data', () => resolve());
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`child exited early (${code})`)));
  });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGKILL');
  await exited;
  expect((await stat(path)).isSocket()).toBe(true);
}

const exists = (path: string) => stat(path).then(() => true, () => false);

describe('startPeerEndpoint', () => {
  it('listens on a socket named by the pid in the shared directory and removes it on close', async () => {
    const endpoint = await startPeerEndpoint(dir, { metrics: async () => 1, status: async () => 2 }, 4321);
    expect(endpoint.socketPath).toBe(join(dir, '4321.sock'));
    expect((await stat(endpoint.socketPath)).isSocket()).toBe(true);
    await endpoint.close();
    expect(await readdir(dir)).toEqual([]);
  });

  it('creates the directory for its socket, readable by this user only', async () => {
    const nested = join(dir, 'peers');
    const endpoint = await startPeerEndpoint(nested, { metrics: async () => 1, status: async () => 2 }, 1);
    endpoints.push(endpoint);
    expect((await stat(nested)).mode & 0o777).toBe(0o700);
  });

  it('takes over a socket file left behind by an earlier process with the same pid', async () => {
    const path = join(dir, '555.sock');
    await staleSocket(path);
    await peer(555);
    const result = await collectFromPeers(dir, 'status', self(), 1000);
    expect(result.values).toContainEqual({ pid: 555, part: 'status' });
  });
});

describe('collectFromPeers', () => {
  it("returns this worker's own value plus every peer's answer for the part asked", async () => {
    await peer(201);
    await peer(202);
    const status = await collectFromPeers(dir, 'status', self(), 1000);
    expect(status.values[0]).toEqual({ pid: SELF_PID, part: 'self' });
    expect(status.values.slice(1).sort((a, b) => (a as { pid: number }).pid - (b as { pid: number }).pid)).toEqual([
      { pid: 201, part: 'status' },
      { pid: 202, part: 'status' },
    ]);
    expect(status.unreachable).toEqual([]);

    const metrics = await collectFromPeers(dir, 'metrics', self(), 1000);
    expect(metrics.values).toHaveLength(3);
    expect(metrics.values).toContainEqual({ pid: 201, part: 'metrics' });
    expect(metrics.values).toContainEqual({ pid: 202, part: 'metrics' });
  });

  it('answers for itself in-process instead of over its own socket', async () => {
    let overSocket = 0;
    await peer(SELF_PID, {
      status: async () => {
        overSocket++;
        return 'from the socket';
      },
    });
    await peer(201);
    const result = await collectFromPeers(dir, 'status', self('in-process'), 1000);
    expect(result.values).toHaveLength(2);
    expect(result.values).toContain('in-process');
    expect(result.values).not.toContain('from the socket');
    expect(overSocket).toBe(0);
  });

  it('still answers with its own value when the directory does not exist', async () => {
    const result = await collectFromPeers(join(dir, 'missing'), 'status', self('alone'), 1000);
    expect(result).toEqual({ values: ['alone'], unreachable: [] });
  });

  it('ignores files in the directory that are not sockets by name', async () => {
    await writeFile(join(dir, 'notes.txt'), 'hello');
    await peer(201);
    const result = await collectFromPeers(dir, 'status', self(), 1000);
    expect(result.values).toHaveLength(2);
    expect(result.unreachable).toEqual([]);
    expect(await exists(join(dir, 'notes.txt'))).toBe(true);
  });

  it('removes a socket left by a killed worker and does not count it as unreachable', async () => {
    await peer(201);
    await staleSocket(join(dir, '202.sock'));
    const result = await collectFromPeers(dir, 'status', self(), 1000);
    expect(result.values).toEqual([{ pid: SELF_PID, part: 'self' }, { pid: 201, part: 'status' }]);
    expect(result.unreachable).toEqual([]);
    expect(await exists(join(dir, '202.sock'))).toBe(false);
    expect(await exists(join(dir, '201.sock'))).toBe(true);
  });

  it('removes a plain file named like a socket that nobody listens on', async () => {
    await writeFile(join(dir, '999999.sock'), '');
    const result = await collectFromPeers(dir, 'status', self(), 1000);
    expect(result).toEqual({ values: [{ pid: SELF_PID, part: 'self' }], unreachable: [] });
    expect(await readdir(dir)).toEqual([]);
  });

  it('reports a peer that never answers as unreachable after the timeout, and still returns the others', async () => {
    await peer(201);
    await peer(303, { status: () => new Promise(() => {}) });
    const result = await collectFromPeers(dir, 'status', self(), 200);
    expect(result.values).toEqual([{ pid: SELF_PID, part: 'self' }, { pid: 201, part: 'status' }]);
    expect(result.unreachable).toEqual([{ pid: 303, error: 'peer did not answer within 200 ms' }]);
    // A busy worker is not dead: its socket stays.
    expect(await exists(join(dir, '303.sock'))).toBe(true);
  });

  it('reports a peer whose handler fails as unreachable with its error', async () => {
    await peer(404, {
      metrics: async () => {
        throw new Error('registry exploded');
      },
    });
    const result = await collectFromPeers(dir, 'metrics', self(), 1000);
    expect(result.values).toEqual([{ pid: SELF_PID, part: 'self' }]);
    expect(result.unreachable).toEqual([{ pid: 404, error: 'peer answered 500: registry exploded' }]);
    expect(await exists(join(dir, '404.sock'))).toBe(true);
  });

  it('passes JSON values through intact', async () => {
    const value = { nested: { list: [1, 2.5, 'three', null, true] }, text: 'ünïcødé ✓ <tag>' };
    await peer(201, { status: async () => value });
    const result = await collectFromPeers(dir, 'status', self(), 1000);
    expect(result.values[1]).toEqual(value);
  });

describe('a peer directory another local user could write to', () => {
  const handlers = { metrics: async () => 1, status: async () => 2 };
  const NOBODY = 65534;
  const asRoot = process.getuid?.() === 0;

  /** A folder as another user might have left it at the predictable name. */
  async function planted(mode: number, owner?: number): Promise<string> {
    const path = join(dir, 'shared');
    await mkdir(path);
    await chmod(path, mode);
    if (owner !== undefined) await chown(path, owner, owner);
    return path;
  }

  it.each([0o777, 0o1777, 0o775, 0o722, 0o703])('refuses a pre-created folder with mode %o, naming PEER_DIR and the problem', async (mode) => {
    const path = await planted(mode);
    const error = await startPeerEndpoint(path, handlers, 7).then(() => undefined, (e: Error & { code?: string }) => e);
    expect(error?.code).toBe('CONFIG_INVALID');
    expect(error?.message).toMatch(/^PEER_DIR: /);
    expect(error?.message).toContain(path);
    expect(error?.message).toMatch(/writable by (group|others)/);
    // Nothing was put into it.
    expect(await readdir(path)).toEqual([]);
  });

  it('refuses a folder owned by another user, even a private one', async () => {
    // Tests run as root in CI; as another user the chown itself is impossible, so check by uid instead.
    const path = await planted(0o700, asRoot ? NOBODY : undefined);
    const uid = asRoot ? process.getuid!() : (await stat(path)).uid + 1;
    await expect(checkPeerDir(path, uid)).rejects.toThrow(/is owned by uid \d+, not by this process/);
    if (asRoot) await expect(startPeerEndpoint(path, handlers, 7)).rejects.toThrow(/PEER_DIR: .* is owned by uid 65534/);
  });

  it('refuses a symbolic link planted at the name, even to a private folder of this user', async () => {
    const target = await planted(0o700);
    const link = join(dir, 'link');
    await symlink(target, link);
    await expect(startPeerEndpoint(link, handlers, 7)).rejects.toThrow(/PEER_DIR: .* is a symbolic link/);
    expect(await readdir(target)).toEqual([]);
  });

  it('accepts a private folder of this user that already exists', async () => {
    const path = await planted(0o700);
    endpoints.push(await startPeerEndpoint(path, handlers, 7));
    expect(await readdir(path)).toEqual(['7.sock']);
  });

  it('does not ask the sockets in an unsafe folder: metrics and status cover this worker alone', async () => {
    const path = await planted(0o700);
    // A real worker's socket, then the folder turns world-writable (as if planted that way).
    endpoints.push(await startPeerEndpoint(path, { metrics: async () => 'fake worker', status: async () => 'fake worker' }, 8));
    await chmod(path, 0o777);
    const result = await collectFromPeers(path, 'status', self(), 1000);
    expect(result.values).toEqual([{ pid: SELF_PID, part: 'self' }]);
    expect(result.refused).toMatch(/PEER_DIR: .* writable by group and others/);
    if (asRoot) {
      await chmod(path, 0o700);
      await chown(path, NOBODY, NOBODY);
      const owned = await collectFromPeers(path, 'metrics', self(), 1000);
      expect(owned.values).toEqual([{ pid: SELF_PID, part: 'self' }]);
      expect(owned.refused).toMatch(/owned by uid 65534/);
      await chown(path, 0, 0);
    }
  });
});
});
