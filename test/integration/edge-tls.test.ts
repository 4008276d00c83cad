import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { copySites, get, removeDir, startServer, type RunningServer } from '../helpers/server.ts';
import { startNginx, type RunningNginx } from '../helpers/nginx.ts';
import { freePort } from '../helpers/cluster.ts';
import { childPids } from '../../bench/processes.ts';
import { httpsGet, tlsHandshake } from '../helpers/custom-domains.ts';

/** The certificate's subject nginx presents for `servername`, or the handshake's error. */
const handshake = async (port: number, servername: string | undefined) => {
  const { subject, error } = await tlsHandshake(port, servername);
  return error === undefined ? { subject } : { error };
};

const run = promisify(execFile);

/** A self-signed certificate for `name`, as PEM files in `dir`. */
async function makeCertificate(dir: string, name: string): Promise<{ cert: string; key: string }> {
  const [cert, key] = [join(dir, `${name}.made.crt`), join(dir, `${name}.made.key`)];
  await run('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '2', '-subj', `/CN=${name}`, '-addext', `subjectAltName=DNS:${name}`, '-keyout', key, '-out', cert]);
  return { cert: await readFile(cert, 'utf8'), key: await readFile(key, 'utf8') };
}

describe('HTTPS at the nginx edge with certificates by name (real nginx, real server)', () => {
  let sitesDir: string;
  let certsDir: string;
  let app: RunningServer;
  let edge: RunningNginx;
  let tlsPort: number;
  let acme: { cert: string; key: string };

  beforeAll(async () => {
    sitesDir = await copySites();
    certsDir = await mkdtemp(join(tmpdir(), 'amt-certs-'));
    acme = await makeCertificate(certsDir, 'acme.example');
    app = await startServer(sitesDir);
    tlsPort = await freePort();
    edge = await startNginx(app.port, sitesDir, { CERTS_DIR: certsDir, NGINX_TLS_LISTEN: `127.0.0.1:${tlsPort}` });
  }, 60_000);

  afterAll(async () => {
    await edge?.stop();
    await app?.stop();
    await removeDir(sitesDir);
    if (certsDir) await rm(certsDir, { recursive: true, force: true });
  });

  it('passes nginx -t with certificates by name and the default certificate it made', async () => {
    expect(await edge.test()).toMatchObject({ ok: true });
    const made = await run('openssl', ['x509', '-noout', '-subject', '-in', edge.options.defaultCertificate]);
    expect(made.stdout).toContain('default.invalid');
  });

  it('serves a certificate written into the folder after nginx started, with no reload, and the site over it', async () => {
    const workers = childPids(edge.pid).sort();
    // Before: no file for the name, so nginx refuses the handshake, and plain HTTP serves the site.
    expect((await handshake(tlsPort, 'acme.example')).error).toBeTruthy();
    const before = await get(edge.port, 'acme.example', '/about');
    expect(before.status).toBe(200);

    // Written as the app does: key first, then the certificate, each renamed into place.
    await writeFile(join(certsDir, '.acme.example.key.tmp'), acme.key, { mode: 0o640 });
    await rename(join(certsDir, '.acme.example.key.tmp'), join(certsDir, 'acme.example.key'));
    await writeFile(join(certsDir, '.acme.example.crt.tmp'), acme.cert);
    await rename(join(certsDir, '.acme.example.crt.tmp'), join(certsDir, 'acme.example.crt'));

    expect(await handshake(tlsPort, 'acme.example')).toEqual({ subject: 'acme.example' });
    const page = await httpsGet(tlsPort, 'acme.example', '/about', acme.cert);
    expect(page.status).toBe(200);
    expect(page.body).toContain('Acme');
    // HSTS for a tenant's own domain never covers its other subdomains.
    expect(page.headers['strict-transport-security']).toBe('max-age=31536000');
    // The same nginx workers: nothing was reloaded.
    expect(childPids(edge.pid).sort()).toEqual(workers);
  });

  it('gives the default certificate to a handshake without a usable name, and refuses names it has no certificate for', async () => {
    expect(await handshake(tlsPort, undefined)).toEqual({ subject: 'default.invalid' });
    // Not a plain lower-case name: never turned into a path; the default answers.
    for (const name of ['ACME.EXAMPLE', 'a_b.example']) expect(await handshake(tlsPort, name), name).toEqual({ subject: 'default.invalid' });
    const unknown = await handshake(tlsPort, 'nobody.example');
    expect(unknown.subject).toBeUndefined();
    expect(unknown.error).toMatch(/alert|internal error|socket/i);
  });

  it('redirects plain HTTP to HTTPS with 308 only for the host that has a certificate, and never an ACME challenge', async () => {
    const page = await get(edge.port, 'acme.example', '/about?x=1');
    expect(page.status).toBe(308);
    expect(page.headers.location).toBe(`https://acme.example:${tlsPort}/about?x=1`);
    // Another custom domain without a certificate: served over plain HTTP as before.
    const other = await get(edge.port, 'sweet-crumbs.example', '/');
    expect(other.status).toBe(200);
    expect(other.body).toContain('Sweet Crumbs');
    // Challenges and health probes stay on plain HTTP even for a host with a certificate.
    const challenge = await get(edge.port, 'acme.example', '/.well-known/acme-challenge/no-such-token_0123456789');
    expect(challenge.status).toBe(404);
    expect((await get(edge.port, 'acme.example', '/_platform/healthz')).status).toBe(200);
  });

  it('stops redirecting and serving a name once its certificate is removed', async () => {
    await rm(join(certsDir, 'acme.example.crt'));
    expect((await get(edge.port, 'acme.example', '/about')).status).toBe(200);
    expect((await handshake(tlsPort, 'acme.example')).error).toBeTruthy();
  });
});
