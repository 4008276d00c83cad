import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { copySites, get, removeDir, startServer, waitFor } from '../helpers/server.ts';
import { startNginx } from '../helpers/nginx.ts';
import { freePort, startCluster } from '../helpers/cluster.ts';
import { spawnStartEdge } from '../helpers/start-edge.ts';
import { StartError, isAlive, startAll } from '../helpers/processes.ts';

/**
 * The helpers that start real processes for the other tests stop them on every path, failures
 * included: a test that fails while starting must not leave servers, nginx or PM2 daemons behind
 * to take ports and cores from the tests after it.
 */

/** The StartError a start rejected with (fails the test if it did not reject). */
async function startFailure(start: Promise<unknown>): Promise<StartError> {
  const error = await start.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(StartError);
  return error as StartError;
}

/** Which of `pids` still run, with what `kill(pid, 0)` says (ESRCH = gone). */
const stillRunning = (pids: number[]) => pids.filter(isAlive);

let sitesDir: string;
beforeAll(async () => {
  sitesDir = await copySites();
});
afterAll(async () => {
  await removeDir(sitesDir);
});

describe('a server that fails to start', () => {
  it('is gone when it exits during start (bad configuration), and the error says why', async () => {
    const error = await startFailure(startServer(sitesDir, { PORT: 'not-a-port' }));
    expect(error.message).toContain('PORT');
    expect(error.pids).toHaveLength(1);
    expect(stillRunning(error.pids)).toEqual([]);
    expect(() => process.kill(error.pids[0]!, 0)).toThrow(expect.objectContaining({ code: 'ESRCH' }));
  });

  it('is killed and waited for when it is not ready within the timeout given', async () => {
    const error = await startFailure(startServer(sitesDir, {}, { readyTimeoutMs: 1 }));
    expect(error.message).toContain('did not start within 1 ms');
    expect(error.pids).toHaveLength(1);
    expect(stillRunning(error.pids)).toEqual([]);
  });

  it('takes down the servers that did start when one of several fails', async () => {
    const error = await startFailure(startAll([startServer(sitesDir), startServer(sitesDir, { LOG_LEVEL: 'chatty' }), startServer(sitesDir)]));
    expect(error.message).toMatch(/^1 of 3 starts failed; the 2 started were stopped/);
    expect(error.message).toContain('LOG_LEVEL');
    expect(error.pids).toHaveLength(3);
    expect(stillRunning(error.pids)).toEqual([]);
  });
});

describe('an nginx that fails to start', () => {
  it('is gone when it exits during start (its port is taken)', async () => {
    const app = await startServer(sitesDir);
    const port = await freePort();
    const { createServer } = await import('node:net');
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(port, '127.0.0.1', resolve));
    try {
      const error = await startFailure(startNginx(app.port, sitesDir, { NGINX_LISTEN: `127.0.0.1:${port}` }));
      expect(error.message).toMatch(/nginx exited: .*Address already in use/s);
      expect(error.pids.length).toBeGreaterThanOrEqual(1);
      expect(stillRunning(error.pids)).toEqual([]);
    } finally {
      blocker.close();
      await app.stop();
    }
  });

  it('is stopped with its workers when it is not ready within the timeout given (no app behind it)', async () => {
    const nowhere = await freePort();
    const error = await startFailure(startNginx(nowhere, sitesDir, {}, { readyTimeoutMs: 1500 }));
    expect(error.message).toContain('condition not met within 1500 ms');
    // The master and at least one worker were running when the helper gave up.
    expect(error.pids.length).toBeGreaterThanOrEqual(2);
    expect(stillRunning(error.pids)).toEqual([]);
  });
});

describe('a PM2 cluster that fails to start', () => {
  it('has its daemon and workers stopped, and its PM2_HOME removed, when it is not online in time', async () => {
    // Two workers without Redis refuse to start (sessions would split): pm2 restarts them in a loop.
    const error = await startFailure(startCluster(sitesDir, { instances: 2, env: { REDIS_URL: '' }, readyTimeoutMs: 4000 }));
    const home = /PM2_HOME (\S+)\)/.exec(error.message)?.[1];
    expect(error.message).toContain('did not start');
    expect(error.message).not.toContain('stopping it failed');
    // The daemon at least; workers too if pm2 had one up when the helper gave up.
    expect(error.pids.length).toBeGreaterThanOrEqual(1);
    expect(stillRunning(error.pids)).toEqual([]);
    expect(home).toBeTruthy();
    expect(existsSync(home!)).toBe(false);
  }, 60_000);
});

describe('npm run start:edge killed with SIGKILL', () => {
  it('leaves no nginx, pm2-runtime or worker behind once cleaned up', async () => {
    const edge = await spawnStartEdge();
    let report: { orphans: number[] } | undefined;
    try {
      await waitFor(async () => {
        if (edge.child.exitCode !== null) throw new Error(`npm run start:edge exited with ${edge.child.exitCode} before serving\n${edge.output()}`);
        return (await get(edge.edgePort, 'acme.example', '/').catch(() => ({ status: 0 }))).status === 200;
      }, 45_000, 250);
      // A SIGKILL cannot be handled: the edge process stops nothing it started.
      edge.child.kill('SIGKILL');
      await edge.exited;
    } finally {
      report = await edge.cleanup({ settleMs: 0 });
    }
    // nginx's master at least outlived the edge process (that is the leak this guards against)...
    expect(report.orphans.length).toBeGreaterThanOrEqual(2);
    // ...and is gone now, with everything else that ran below the edge process.
    expect(stillRunning(report.orphans)).toEqual([]);
    expect((await get(edge.edgePort, 'acme.example', '/').catch(() => ({ status: 0 }))).status).toBe(0);
    expect((await get(edge.appPort, 'acme.example', '/').catch(() => ({ status: 0 }))).status).toBe(0);
  }, 120_000);
});
