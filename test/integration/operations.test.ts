import { afterEach, describe, expect, it } from 'vitest';
import { Agent, request } from 'node:http';
import { join } from 'node:path';
import { ROOT, copySites, get, rawRequest, removeDir, startServer, waitFor, type RunningServer } from '../helpers/server.ts';

/** GET over a given agent, so several requests share one keep-alive connection. */
function getVia(agent: Agent, port: number, host: string, path: string): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, headers: { host }, agent }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString() }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('health, readiness and graceful shutdown of one server process', () => {
  let server: RunningServer | undefined;
  let sitesDir: string | undefined;

  afterEach(async () => {
    await server?.stop();
    if (sitesDir) await removeDir(sitesDir);
    server = undefined;
    sitesDir = undefined;
  });

  it('answers healthz and readyz on any host, even with no usable Host header, before tenant routing', async () => {
    sitesDir = await copySites();
    server = await startServer(sitesDir);
    expect((await get(server.port, 'unknown.example', '/_platform/healthz')).status).toBe(200);
    const ready = await get(server.port, 'acme.example', '/_platform/readyz');
    expect(ready.status).toBe(200);
    expect(JSON.parse(ready.body)).toEqual({ status: 'ready', checks: [{ name: 'accepting', ok: true, critical: true }, { name: 'sites_dir', ok: true, critical: true }] });
    const noHost = await rawRequest(server.port, 'GET /_platform/healthz HTTP/1.0\r\n\r\n');
    expect(noHost.status).toBe(200);
  });

  it('turns readyz 503 when the sites folder becomes unreadable, and back to 200 when it returns', async () => {
    sitesDir = await copySites();
    server = await startServer(sitesDir);
    const { rename } = await import('node:fs/promises');
    await rename(sitesDir, `${sitesDir}-away`);
    try {
      const notReady = await get(server.port, 'localhost', '/_platform/readyz');
      expect(notReady.status).toBe(503);
      const body = JSON.parse(notReady.body);
      expect(body.status).toBe('not ready');
      // Loopback is an admin address, so the reason is shown.
      expect(body.checks.find((c: { name: string }) => c.name === 'sites_dir')).toMatchObject({ ok: false, error: expect.stringContaining('ENOENT') });
    } finally {
      await rename(`${sitesDir}-away`, sitesDir);
    }
    expect((await get(server.port, 'localhost', '/_platform/readyz')).status).toBe(200);
  });

  it('turns readyz 503 as soon as shutdown starts, while still serving pages during SHUTDOWN_DELAY_MS', async () => {
    sitesDir = await copySites();
    server = await startServer(sitesDir, { SHUTDOWN_DELAY_MS: '1500' });
    expect((await get(server.port, 'localhost', '/_platform/readyz')).status).toBe(200);
    server.signal('SIGTERM');
    await waitFor(async () => (await get(server!.port, 'localhost', '/_platform/readyz')).status === 503, 1000);
    const ready = JSON.parse((await get(server.port, 'localhost', '/_platform/readyz')).body);
    expect(ready.checks[0]).toEqual({ name: 'accepting', ok: false, critical: true, error: 'shutting down' });
    const page = await get(server.port, 'acme.example', '/');
    expect(page.status).toBe(200);
    expect(page.headers.connection).toBe('close');
    expect(await server.exited).toBe(0);
  });

  it('finishes a request on a live keep-alive connection after SIGTERM, tells the client to reconnect, and exits', async () => {
    sitesDir = await copySites();
    server = await startServer(sitesDir);
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const first = await getVia(agent, server.port, 'acme.example', '/');
      expect(first.status).toBe(200);
      expect(first.headers.connection).toBe('keep-alive');
      server.signal('SIGTERM');
      await waitFor(async () => server!.logs.some((l) => l.includes('shutting down')), 2000, 5);
      // Same socket, right after shutdown began: answered in full, with Connection: close.
      const second = await getVia(agent, server.port, 'acme.example', '/about');
      expect(second.status).toBe(200);
      expect(second.body).toContain('</html>');
      expect(second.headers.connection).toBe('close');
      expect(await server.exited).toBe(0);
      expect(server.logs.some((line) => line.includes('"msg":"stopped"'))).toBe(true);
    } finally {
      agent.destroy();
    }
  });

  it('exits well within DRAIN_TIMEOUT_MS even when a client holds an idle keep-alive connection open', async () => {
    sitesDir = await copySites();
    server = await startServer(sitesDir, { DRAIN_TIMEOUT_MS: '5000' });
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    try {
      expect((await getVia(agent, server.port, 'acme.example', '/')).status).toBe(200);
      const started = Date.now();
      server.signal('SIGTERM');
      expect(await server.exited).toBe(0);
      // Idle connections get a 1 s grace, not the whole deadline.
      expect(Date.now() - started).toBeLessThan(4500);
    } finally {
      agent.destroy();
    }
  });

  it('writes one JSON log line per request with request id, site, status, route and duration, echoing X-Request-Id', async () => {
    sitesDir = await copySites();
    server = await startServer(sitesDir);
    const res = await get(server.port, 'acme.example', '/about', { 'X-Request-Id': 'trace-abc-123' });
    expect(res.headers['x-request-id']).toBe('trace-abc-123');
    const generated = await get(server.port, 'docs.example', '/');
    expect(generated.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
    // An id that could smuggle text into logs is replaced, not echoed.
    const forged = await get(server.port, 'docs.example', '/', { 'X-Request-Id': 'bad id <script>' });
    expect(forged.headers['x-request-id']).not.toContain('<script>');
    await waitFor(async () => server!.logs.some((l) => l.includes('trace-abc-123')), 2000);
    const line = JSON.parse(server.logs.find((l) => l.includes('trace-abc-123'))!);
    expect(line).toMatchObject({ msg: 'request', reqId: 'trace-abc-123', site: 'acme', status: 200, route: 'page', method: 'GET', path: '/about' });
    expect(typeof line.ms).toBe('number');
    expect(Number.isNaN(Date.parse(line.time))).toBe(false);
  });

  it('answers a failing render with a plain 500 and no details, and logs the error with its stack', async () => {
    sitesDir = await copySites();
    server = await startServer(sitesDir, { ASTRO_ENTRY: join(ROOT, 'test/fixtures/failing-renderer/entry.mjs') });
    const res = await get(server.port, 'acme.example', '/', { 'X-Request-Id': 'boom-1' });
    expect(res.status).toBe(500);
    expect(res.body).toBe('Internal Server Error\n');
    expect(res.body).not.toContain('secret-internal-detail');
    await waitFor(async () => server!.logs.some((l) => l.includes('"msg":"request failed"')), 2000);
    const line = JSON.parse(server.logs.find((l) => l.includes('"msg":"request failed"'))!);
    expect(line).toMatchObject({ level: 50, reqId: 'boom-1', site: 'acme' });
    expect(line.err.message).toContain('secret-internal-detail');
    expect(line.err.stack).toContain('entry.mjs');
  });
});
