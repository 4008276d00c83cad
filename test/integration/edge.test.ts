import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ROOT, copySites, get, removeDir, startServer, waitFor, type RunningServer } from '../helpers/server.ts';
import { NGINX, startNginx, type RunningNginx } from '../helpers/nginx.ts';
import { startRetryingLoad } from '../helpers/retrying-load.ts';
import { spawnStartEdge } from '../helpers/start-edge.ts';
import { edgeOptionsFromEnv } from '../../nginx/render.ts';
import { writeEdgeConfig } from '../../astro-multi-tenant/server/cli/edge.ts';

const run = promisify(execFile);

describe('nginx in front of the server (real nginx, real server)', () => {
  let sitesDir: string;
  let app: RunningServer;
  let edge: RunningNginx;

  beforeAll(async () => {
    sitesDir = await copySites();
    // A longer edge TTL than production's 1 s so MISS-then-HIT cannot race the expiry on a slow machine.
    app = await startServer(sitesDir, { EDGE_CACHE_S: '30' });
    edge = await startNginx(app.port, sitesDir);
  }, 60_000);

  afterAll(async () => {
    await edge?.stop();
    await app?.stop();
    await removeDir(sitesDir);
  });

  const appSaw = (reqId: string) => app.logs.some((line) => line.includes(`"reqId":"${reqId}"`));

  it('passes nginx -t, with and without TLS (HTTP/2 and a wildcard certificate)', async () => {
    expect(await edge.test()).toMatchObject({ ok: true });
    const dir = await mkdtemp(join(tmpdir(), 'amt-tls-'));
    try {
      await run('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=*.localhost', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')]);
      const options = edgeOptionsFromEnv({ NGINX_OUT: join(dir, 'out'), SITES_DIR: sitesDir, TLS_CERT: join(dir, 'cert.pem'), TLS_KEY: join(dir, 'key.pem'), NGINX_LISTEN: '127.0.0.1:1', NGINX_TLS_LISTEN: '127.0.0.1:2' }, ROOT);
      const conf = await writeEdgeConfig(options);
      const { stderr } = await run(NGINX, ['-t', '-c', conf, '-p', options.outDir]);
      expect(stderr).toContain('test is successful');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("serves a site's public file from disk once the app has authorised it, on that site's host only", async () => {
    const logo = await get(edge.port, 'acme.example', '/logo.svg', { 'X-Request-Id': 'edge-static-1' });
    expect(logo.status).toBe(200);
    expect(logo.headers['x-served-by']).toBe('nginx-static');
    expect(logo.headers['content-type']).toContain('image/svg+xml');
    expect(logo.headers['cache-control']).toBe('public, max-age=300');
    expect(logo.headers.etag).toBeTruthy();
    expect(logo.headers['x-accel-redirect']).toBeUndefined();
    // The app decided (it saw the request); nginx sent the bytes.
    await waitFor(async () => appSaw('edge-static-1'), 2000);
    // The same path on another tenant's host: not acme's file (the app answers its own 404).
    const elsewhere = await get(edge.port, 'docs.example', '/logo.svg');
    expect(elsewhere.status).toBe(404);
    expect(elsewhere.headers['x-served-by']).toBeUndefined();
    // Wildcard platform hosts too.
    expect((await get(edge.port, 'bakery.localhost', '/loaf.svg')).headers['x-served-by']).toBe('nginx-static');
  });

  it('never lets a visitor name the internal file location, nor offer it to the app', async () => {
    const direct = await get(edge.port, 'acme.example', '/_amt_files/acme/public/logo.svg');
    expect(direct.status).toBe(404);
    expect(direct.body).not.toContain('<svg');
    // A visitor's own X-Amt-Edge-Files is replaced by nginx's: the file still comes whole.
    const offered = await get(edge.port, 'acme.example', '/logo.svg', { 'X-Amt-Edge-Files': '/elsewhere/' });
    expect(offered.status).toBe(200);
    expect(offered.headers['x-served-by']).toBe('nginx-static');
  });

  it('serves built CSS from disk as immutable', async () => {
    const page = await get(edge.port, 'acme.example', '/');
    const href = /href="(\/_platform\/css\/acme\/[^"]+)"/.exec(page.body)?.[1];
    expect(href).toBeTruthy();
    const css = await get(edge.port, 'acme.example', href!);
    expect(css.status).toBe(200);
    expect(css.headers['x-served-by']).toBe('nginx-static');
    expect(css.headers['cache-control']).toBe('public, max-age=31536000, immutable');
  });

  it('micro-caches anonymous HTML per host: MISS then HIT, and never hands one tenant another tenant’s page', async () => {
    const first = await get(edge.port, 'docs.example', '/guide');
    expect(first.status).toBe(200);
    expect(first.headers['x-cache-status']).toBe('MISS');
    const second = await get(edge.port, 'docs.example', '/guide');
    expect(second.headers['x-cache-status']).toBe('HIT');
    expect(second.body).toBe(first.body);

    // The same URI on two tenants (a query no other test uses, so both start cold).
    const docsHome = await get(edge.port, 'docs.example', '/?cross=1');
    expect(docsHome.headers['x-cache-status']).toBe('MISS');
    expect((await get(edge.port, 'docs.example', '/?cross=1')).headers['x-cache-status']).toBe('HIT');
    // Same URI, other tenant: its own MISS and its own content.
    const acmeHome = await get(edge.port, 'acme.example', '/?cross=1');
    expect(acmeHome.headers['x-cache-status']).toBe('MISS');
    expect(acmeHome.body).toContain('data-site="acme"');
    expect(acmeHome.body).not.toContain('data-site="docs"');
    const acmeAgain = await get(edge.port, 'acme.example', '/?cross=1');
    expect(acmeAgain.headers['x-cache-status']).toBe('HIT');
    expect(acmeAgain.body).toContain('data-site="acme"');
  });

  it('bypasses the cache for visitors with a session cookie, and never stores a members page', async () => {
    await get(edge.port, 'docs.example', '/guide/getting-started');
    const withSession = await get(edge.port, 'docs.example', '/guide/getting-started', { Cookie: 'amt_session=abc' });
    expect(withSession.headers['x-cache-status']).toBe('BYPASS');
    const members1 = await get(edge.port, 'docs.example', '/members');
    const members2 = await get(edge.port, 'docs.example', '/members');
    expect(members1.status).toBe(303);
    expect(members2.headers['x-cache-status']).not.toBe('HIT');
  });

  it('passes Host, X-Forwarded-* and X-Request-Id to the app, and adds security headers and gzip', async () => {
    const res = await get(edge.port, 'acme.example', '/about', { 'X-Request-Id': 'edge-req-42', 'Accept-Encoding': 'gzip' });
    expect(res.status).toBe(200);
    expect(res.headers['x-request-id']).toBe('edge-req-42');
    expect(res.headers['content-encoding']).toBe('gzip');
    expect(res.headers['x-content-type-options']).toBe('nosniff');
    expect(res.headers['x-frame-options']).toBe('SAMEORIGIN');
    expect(res.headers['referrer-policy']).toBe('strict-origin-when-cross-origin');
    await waitFor(async () => appSaw('edge-req-42'), 2000);
    // Alias redirects keep working through the edge, to the primary domain.
    const alias = await get(edge.port, 'www.acme.example', '/about?x=1');
    expect(alias.status).toBe(301);
    expect(alias.headers.location).toBe('http://acme.example/about?x=1');
  });

  it('does not expose metrics or status, although nginx reaches the app from loopback', async () => {
    expect((await get(edge.port, 'acme.example', '/_platform/metrics')).status).toBe(404);
    expect((await get(edge.port, 'localhost', '/_platform/status')).status).toBe(404);
    expect((await get(edge.port, 'localhost', '/_platform/status.json')).status).toBe(404);
    expect((await get(edge.port, 'localhost', '/_platform/healthz')).status).toBe(200);
  });

  it('answers 429 past the per-IP rate limit', async () => {
    const limited = await startNginx(app.port, sitesDir, { NGINX_RATE: '2r/s', NGINX_BURST: '3' });
    try {
      const statuses = [];
      for (let i = 0; i < 12; i++) statuses.push((await get(limited.port, 'acme.example', '/')).status);
      expect(statuses.filter((s) => s === 200).length).toBeGreaterThanOrEqual(3);
      expect(statuses.filter((s) => s === 429).length).toBeGreaterThan(0);
    } finally {
      await limited.stop();
    }
  });

  it('reloads gracefully (nginx -s reload) under load without a single failed request', async () => {
    // nginx's graceful reload closes idle client keep-alive connections; a browser resends a GET
    // that raced such a close, and so does this client (counted in `retried`). Nothing else may fail.
    const load = startRetryingLoad({ port: edge.port, host: 'blog.localhost', path: '/', connections: 8 });
    await waitFor(async () => load.result.ok2xx > 200, 10_000);
    for (let i = 0; i < 3; i++) {
      const before = load.result.ok2xx;
      await edge.reload();
      await waitFor(async () => load.result.ok2xx > before + 300, 10_000);
    }
    const result = await load.stop();
    expect(result.errorMessages).toEqual([]);
    expect(result.failed).toBe(0);
    expect(result.non2xx).toBe(0);
    expect(result.ok2xx).toBeGreaterThan(900);
  }, 60_000);
});

describe('npm run start:edge', () => {
  it('starts nginx in front of the PM2 cluster, serves through it, and stops both on Ctrl-C', async () => {
    const edge = await spawnStartEdge();
    let cleanedUp = false;
    try {
      // Well inside the test's own timeout, so a failure shows the processes' output.
      await waitFor(async () => {
        if (edge.child.exitCode !== null) throw new Error(`npm run start:edge exited with ${edge.child.exitCode} before serving`);
        return (await get(edge.edgePort, 'acme.example', '/').catch(() => ({ status: 0 }))).status === 200;
      }, 45_000, 250);
      const logo = await get(edge.edgePort, 'acme.example', '/logo.svg');
      expect(logo.headers['x-served-by']).toBe('nginx-static');
      expect((await get(edge.edgePort, 'acme.example', '/about')).body).toContain('data-site="acme"');
      edge.child.kill('SIGINT');
      expect(await Promise.race([edge.exited, new Promise((r) => setTimeout(() => r('timeout'), 20_000))])).not.toBe('timeout');
      await waitFor(async () => (await get(edge.edgePort, 'acme.example', '/').catch(() => ({ status: 0 }))).status === 0, 5000);
      // Ctrl-C stopped everything it started: nginx, pm2-runtime and the workers all exit by
      // themselves, leaving the cleanup nothing to stop.
      cleanedUp = true;
      expect((await edge.cleanup()).orphans).toEqual([]);
    } catch (error) {
      throw new Error(`${(error as Error).message}\n${edge.output()}`);
    } finally {
      if (!cleanedUp) await edge.cleanup({ settleMs: 0 });
    }
  }, 120_000);
});
