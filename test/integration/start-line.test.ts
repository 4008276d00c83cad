import { afterEach, describe, expect, it } from 'vitest';
import { execFile, spawn } from 'node:child_process';
import { cp, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort } from '../helpers/cluster.ts';
import { copySites, get, removeDir, ROOT, waitFor } from '../helpers/server.ts';

const run = promisify(execFile);
/** The human lines among everything npm start printed. */
const servingLines = (output: string) => output.split('\n').filter((l) => l.startsWith('astro-multi-tenant: serving '));

interface Started {
  port: number;
  /** npm's own process (the group leader: npm, start.ts, pm2-runtime and the workers share its group). */
  pid: number;
  output(): string;
  /** The JSON log lines, parsed. */
  logs(): Array<Record<string, unknown>>;
  stop(): Promise<void>;
}

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) await cleanup();
});

/**
 * Runs `npm start` exactly as the README says, in its own process group with its own PM2_HOME, so
 * stop() can end npm, start.ts, pm2-runtime and the workers together, then kill that PM2 daemon.
 */
async function npmStart(env: Record<string, string>): Promise<Started> {
  const home = await mkdtemp(join(tmpdir(), 'amt-start-line-'));
  const port = await freePort();
  const child = spawn('npm', ['start'], {
    cwd: ROOT,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      ...process.env,
      PORT: String(port),
      HOST: '127.0.0.1',
      INSTANCES: '1',
      REDIS_URL: '',
      LOG_LEVEL: 'info',
      PM2_HOME: join(home, 'pm2'),
      PEER_DIR: join(home, 'peers'),
      ...env,
    },
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d) => (stdout += d));
  child.stderr!.on('data', (d) => (stderr += d));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const group = (signal: NodeJS.Signals) => {
    try {
      process.kill(-child.pid!, signal);
    } catch {
      // the group is gone already
    }
  };
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    group('SIGINT');
    const done = await Promise.race([exited.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 20_000))]);
    if (!done) group('SIGKILL');
    // Whatever the group did not take with it: bounded, so a hung daemon cannot eat the test's time.
    await run(join(ROOT, 'node_modules/.bin/pm2'), ['kill'], { env: { ...process.env, PM2_HOME: join(home, 'pm2') }, timeout: 15_000 }).catch(() => {});
    group('SIGKILL');
    await rm(home, { recursive: true, force: true });
  };
  cleanups.push(stop);
  return {
    port,
    pid: child.pid!,
    output: () => `${stdout}\n--- stderr ---\n${stderr}`,
    logs: () =>
      stdout
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as Record<string, unknown>),
    stop,
  };
}

/** Waits for the human line on stdout; a failure shows everything the processes printed. */
async function servingLineOf(started: Started): Promise<string> {
  try {
    await waitFor(async () => servingLines(started.output()).length > 0, 60_000, 100);
  } catch (error) {
    throw new Error(`${(error as Error).message}\n${started.output()}`);
  }
  return servingLines(started.output())[0]!;
}

describe('npm start', () => {
  it('prints one line with how many sites it serves and URLs that open them and the status page', async () => {
    const started = await npmStart({});
    const line = await servingLineOf(started);
    const { port } = started;
    expect(line).toBe(
      `astro-multi-tenant: serving 5 sites on http://127.0.0.1:${port} — open http://acme.localhost:${port}/, http://bakery.localhost:${port}/, http://blog.localhost:${port}/, http://docs.localhost:${port}/ and 1 more (npm run sites -- list) · status page http://127.0.0.1:${port}/_platform/status`,
    );
    // Every URL it names answers: the sites by their platform subdomain, the status page from here.
    for (const id of ['acme', 'bakery', 'blog', 'docs']) {
      const page = await get(port, `${id}.localhost:${port}`, '/');
      expect(page.status, id).toBe(200);
      expect(page.body, id).toContain(`data-site="${id}"`);
    }
    const status = await get(port, `127.0.0.1:${port}`, '/_platform/status');
    expect(status.status).toBe(200);
    expect(status.body).toContain('<div class="card"><b>5</b>sites</div>');
    // Once: requests later do not repeat it. The machines' JSON logs are still there.
    await new Promise((r) => setTimeout(r, 1500));
    expect(servingLines(started.output())).toHaveLength(1);
    expect(started.logs().find((l) => l.msg === 'listening')).toMatchObject({ port, sites: 5 });
    await started.stop();
  }, 120_000);

  it('counts site folders as the server does, lists a few on the platform domain and counts the rest', async () => {
    const sitesDir = await copySites();
    cleanups.push(() => removeDir(sitesDir));
    for (const id of ['blog-2', 'blog-3', 'zeta']) await cp(join(sitesDir, 'blog'), join(sitesDir, id), { recursive: true });
    // A symlinked site folder is a site, as the server has always served them.
    await symlink(join(sitesDir, 'docs'), join(sitesDir, 'linked'));
    // Not sites: an id that cannot be a DNS label, a folder without site.json, a file, a dangling link.
    await cp(join(sitesDir, 'blog'), join(sitesDir, 'Bad_Id'), { recursive: true });
    await mkdir(join(sitesDir, 'no-config'));
    await writeFile(join(sitesDir, 'README.txt'), 'not a folder');
    await symlink(join(sitesDir, 'nowhere'), join(sitesDir, 'dangling'));
    const started = await npmStart({ SITES_DIR: sitesDir, PLATFORM_DOMAIN: 'sites.test' });
    const line = await servingLineOf(started);
    const { port } = started;
    expect(line).toContain(
      `serving 9 sites on http://127.0.0.1:${port} — open http://acme.sites.test:${port}/, http://bakery.sites.test:${port}/, http://blog.sites.test:${port}/, http://blog-2.sites.test:${port}/ and 5 more (npm run sites -- list) · status page`,
    );
    // The same count the worker logged when it started listening.
    expect(started.logs().find((l) => l.msg === 'listening')).toMatchObject({ sites: 9, platformDomain: 'sites.test' });
    expect((await get(port, `blog-2.sites.test:${port}`, '/')).status).toBe(200);
    expect((await get(port, `linked.sites.test:${port}`, '/')).status).toBe(200);
    await started.stop();
  }, 120_000);

  it('stops the whole cluster when npm alone gets SIGTERM, as a supervisor or `kill <pid>` sends it', async () => {
    const started = await npmStart({});
    await servingLineOf(started);
    expect((await get(started.port, `acme.localhost:${started.port}`, '/')).status).toBe(200);
    // To npm's pid only, not its group: npm passes it to its script's process, which must be
    // start.ts itself (`exec`), not a `sh -c` that dies and leaves start.ts, PM2 and the worker serving.
    process.kill(started.pid, 'SIGTERM');
    const groupAlive = () => {
      try {
        process.kill(-started.pid, 0);
        return true;
      } catch {
        return false;
      }
    };
    try {
      await waitFor(async () => !groupAlive(), 30_000, 200);
    } catch (error) {
      throw new Error(`${(error as Error).message}: processes of npm start still running after SIGTERM to npm\n${started.output()}`);
    }
    await expect(get(started.port, `acme.localhost:${started.port}`, '/')).rejects.toThrow();
    // The worker was drained by PM2, not cut off.
    expect(started.output()).toContain('PM2 successfully stopped');
    await started.stop();
  }, 120_000);
});
