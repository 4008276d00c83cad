import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copySites, get, removeDir, startServer, type RunningServer } from '../helpers/server.ts';
import { startNginx, type RunningNginx } from '../helpers/nginx.ts';
import { DEMO, formHeaders, openForm, send, type Client } from '../helpers/sessions.ts';

const SESSION_KEYS = 'k1:sign-in-origin-test-secret-0123456789abcdef';

/** Posts the sign-in form with `origin` as the browser's Origin; returns the status. */
async function postWithOrigin(client: Client, origin: string, extra: Record<string, string> = {}): Promise<number> {
  const form = await openForm(client, extra);
  const body = new URLSearchParams({ csrf: form.token, ...DEMO, next: '/members' }).toString();
  return (await send(client, 'POST', '/_platform/session/sign-in', formHeaders(form, origin, extra), body)).status;
}

describe('sign-in compares the Origin with the whole origin, port included', () => {
  let sitesDir: string;
  let app: RunningServer;

  beforeAll(async () => {
    sitesDir = await copySites();
    app = await startServer(sitesDir, { SESSION_KEYS });
  }, 60_000);

  afterAll(async () => {
    await app?.stop();
    await removeDir(sitesDir);
  });

  it('accepts the origin a browser sends for a host with a port, and refuses the same host on another or no port', async () => {
    const client: Client = { port: app.port, host: `docs.example:${app.port}`, from: '127.0.0.2' };
    expect(await postWithOrigin(client, `http://docs.example:${app.port}`)).toBe(303);
    for (const wrong of ['http://docs.example', `http://docs.example:${app.port + 1}`, `https://docs.example:${app.port}`, `http://acme.example:${app.port}`, 'null', `http://docs.example:${app.port}/`]) {
      expect(await postWithOrigin(client, wrong), wrong).toBe(403);
    }
  });

  it('treats a default port as no port, and compares host names case-insensitively', async () => {
    expect(await postWithOrigin({ port: app.port, host: 'docs.example:80', from: '127.0.0.2' }, 'http://docs.example')).toBe(303);
    expect(await postWithOrigin({ port: app.port, host: 'docs.example', from: '127.0.0.2' }, 'http://DOCS.example')).toBe(303);
  });

  it('uses the port a trusted proxy forwards in X-Forwarded-Host', async () => {
    const viaProxy: Client = { port: app.port, host: 'docs.example' };
    const forwarded = { 'x-forwarded-host': 'docs.example:8080' };
    expect(await postWithOrigin(viaProxy, 'http://docs.example:8080', forwarded)).toBe(303);
    expect(await postWithOrigin(viaProxy, 'http://docs.example', forwarded)).toBe(403);
  });

  it('refuses a request the browser marks as cross-site even without an Origin', async () => {
    const client: Client = { port: app.port, host: 'docs.example' };
    const form = await openForm(client);
    const body = new URLSearchParams({ csrf: form.token, ...DEMO }).toString();
    const headers = { ...formHeaders(form, 'http://docs.example'), 'sec-fetch-site': 'cross-site' } as Record<string, string>;
    delete headers.origin;
    expect((await send(client, 'POST', '/_platform/session/sign-in', headers, body)).status).toBe(403);
  });
});

describe('sign-in through real nginx on a non-default port', () => {
  let sitesDir: string;
  let app: RunningServer;
  let edge: RunningNginx;

  beforeAll(async () => {
    sitesDir = await copySites();
    app = await startServer(sitesDir, { SESSION_KEYS });
    edge = await startNginx(app.port, sitesDir);
  }, 60_000);

  afterAll(async () => {
    await edge?.stop();
    await app?.stop();
    await removeDir(sitesDir);
  });

  it('never serves one visitor a cached page whose links name the port another visitor made up', async () => {
    // The app writes the forwarded port into canonical links; the edge's cache key carries it too.
    const poisoned = await get(edge.port, 'docs.example:9999', '/guide');
    expect(poisoned.body).toContain('http://docs.example:9999/guide');
    for (let i = 0; i < 3; i++) {
      const res = await get(edge.port, `docs.example:${edge.port}`, '/guide');
      expect(res.status).toBe(200);
      expect(res.body).not.toContain(':9999');
      expect(res.body).toContain(`http://docs.example:${edge.port}/guide`);
    }
  });

  it("accepts the browser's real Origin (with the edge's port) and refuses a port-less one", async () => {
    const browser: Client = { port: edge.port, host: `docs.example:${edge.port}` };
    expect(await postWithOrigin(browser, `http://docs.example:${edge.port}`)).toBe(303);
    expect(await postWithOrigin(browser, 'http://docs.example')).toBe(403);
  });
});
