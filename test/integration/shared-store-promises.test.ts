import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { copySites, get, removeDir, ROOT, startServer, type RunningServer } from '../helpers/server.ts';
import { DEMO, signIn } from '../helpers/sessions.ts';
import { startRedis, type RunningRedis } from '../helpers/redis.ts';

/**
 * What the shared store promises when it is missing or stuck: a cluster never starts half-working
 * without it, and a Redis that accepts connections but never answers costs a request at most
 * REDIS_TIMEOUT_MS, never a hang, while public pages do not notice at all.
 */

const SESSION_KEYS = 'k1:a-signing-secret-for-shared-store-tests-0123456789';
const REDIS_TIMEOUT_MS = 300;
/** A Redis problem may add REDIS_TIMEOUT_MS per command; a request makes a few. Generous for a loaded CI machine. */
const BOUND_MS = 2_500;

/** Runs the server entry as PM2 would start one worker of a cluster, and returns how it ended. */
function startAsClusterWorker(env: Record<string, string>): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(ROOT, 'astro-multi-tenant/server/main.ts')], {
      cwd: ROOT,
      env: { ...process.env, PORT: '0', HOST: '127.0.0.1', SITES_DIR: join(ROOT, 'sites'), exec_mode: 'cluster_mode', instances: '2', NODE_APP_INSTANCE: '0', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (c) => (output += c));
    child.stderr.on('data', (c) => (output += c));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`the worker did not refuse to start within 20 s:\n${output}`));
    }, 20_000);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

describe('a cluster of more than one worker', () => {
  it('refuses to start without REDIS_URL, saying why, and never listens', async () => {
    const { code, output } = await startAsClusterWorker({ REDIS_URL: '', SESSION_KEYS });
    expect(code).toBe(78);
    expect(output).toContain('REDIS_URL is not set');
    expect(output).not.toContain('"msg":"listening"');
  });

  it('refuses to start with Redis but without SESSION_KEYS, saying why, and never listens', async () => {
    const { code, output } = await startAsClusterWorker({ REDIS_URL: 'redis://127.0.0.1:1', SESSION_KEYS: '' });
    expect(code).toBe(78);
    expect(output).toContain('SESSION_KEYS is required');
    expect(output).not.toContain('"msg":"listening"');
  });
});

/** The docs demo member, signed in the way a browser does; returns the Cookie header that carries the session. */
async function signInDemo(port: number): Promise<string> {
  const { res, session } = await signIn({ port, host: 'docs.example' }, DEMO.email, DEMO.password);
  expect(res.status, res.body.slice(0, 300)).toBe(303);
  expect(session, 'a session cookie').toBeTruthy();
  return `amt_session=${session}`;
}

async function timed<T>(work: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const started = performance.now();
  const value = await work();
  return { value, ms: performance.now() - started };
}

describe('a Redis that accepts connections and never answers', () => {
  let redis: RunningRedis;
  let sitesDir: string;
  let server: RunningServer;
  let cookie: string;

  beforeAll(async () => {
    redis = await startRedis();
    sitesDir = await copySites();
    server = await startServer(sitesDir, { REDIS_URL: redis.url, SESSION_KEYS, REDIS_TIMEOUT_MS: String(REDIS_TIMEOUT_MS) });
    cookie = await signInDemo(server.port);
    expect((await get(server.port, 'docs.example', '/members', { cookie })).status).toBe(200);
    // Stopped, not killed: the kernel still accepts connections and buffers commands, nothing answers.
    process.kill(redis.pid!, 'SIGSTOP');
  });

  afterAll(async () => {
    if (redis?.pid) process.kill(redis.pid, 'SIGCONT');
    await server?.stop();
    await redis?.stop();
    await removeDir(sitesDir);
  });

  it('keeps serving public pages as if nothing happened', async () => {
    for (const [host, path] of [['acme.example', '/'], ['docs.example', '/guide'], ['blog.localhost', '/posts/2026/hello-world']] as const) {
      const { value, ms } = await timed(() => get(server.port, host, path));
      expect(value.status, `${host}${path}`).toBe(200);
      expect(ms, `${host}${path} took ${ms.toFixed(0)} ms`).toBeLessThan(BOUND_MS);
    }
  });

  it('answers a signed-in visitor\'s members page with a 503 within the Redis timeout bound, not a hang', async () => {
    const { value, ms } = await timed(() => get(server.port, 'docs.example', '/members', { cookie }));
    expect(value.status).toBe(503);
    expect(value.headers['retry-after']).toBe('30');
    expect(value.headers['cache-control']).toBe('no-store');
    expect(ms, `took ${ms.toFixed(0)} ms`).toBeLessThan(BOUND_MS);
  });

  it('answers whoami and a sign-in attempt with a 503 within the bound', async () => {
    const who = await timed(() => get(server.port, 'docs.example', '/_platform/session/whoami', { cookie }));
    expect(who.value.status).toBe(503);
    expect(who.ms, `whoami took ${who.ms.toFixed(0)} ms`).toBeLessThan(BOUND_MS);
    const docs = { port: server.port, host: 'docs.example' };
    const attempt = await timed(() => signIn(docs, DEMO.email, 'wrong-password').then((r) => r.res));
    expect(attempt.value.status).toBe(503);
    expect(attempt.ms, `sign-in took ${attempt.ms.toFixed(0)} ms`).toBeLessThan(BOUND_MS);
  });

  it('reports Redis on readyz within the bound, without taking the worker out (degraded)', async () => {
    const { value, ms } = await timed(() => get(server.port, 'localhost', '/_platform/readyz'));
    expect(value.status).toBe(200);
    expect(JSON.parse(value.body).status).toBe('degraded');
    expect(ms, `readyz took ${ms.toFixed(0)} ms`).toBeLessThan(BOUND_MS);
  });

  it('serves the members page again once Redis answers', async () => {
    process.kill(redis.pid!, 'SIGCONT');
    const deadline = Date.now() + 10_000;
    let last = 0;
    while (Date.now() < deadline) {
      last = (await get(server.port, 'docs.example', '/members', { cookie })).status;
      if (last === 200) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(last).toBe(200);
  });
});
