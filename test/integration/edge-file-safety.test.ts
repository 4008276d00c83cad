import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, type Server } from 'node:http';
import { mkdir, mkdtemp, symlink, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { get, removeDir, type Response } from '../helpers/server.ts';
import { startNginx, type RunningNginx } from '../helpers/nginx.ts';

/**
 * What nginx itself refuses when it sends a site's file from disk, whatever it is asked to send.
 * The app checks every file before naming it in X-Accel-Redirect, but between its check and
 * nginx's open a site owner can swap a file or folder for a symlink, and a bug in the app must not
 * become a way out of the folder. So here the "app" is a stand-in that names whatever the test
 * tells it (X-Test-Accel): the checks below are nginx's alone, on the config we ship.
 *
 * Each refusal is also shown to depend on its directive: the same probe against a copy of the
 * config with that one directive removed does leak. (The app's own refusals of the same kinds,
 * through the real app and nginx, are in edge-static.test.ts.)
 */
let work: string;
let sitesDir: string;
let stub: Server;
let stubPort: number;
let edge: RunningNginx;

const SECRET = 'TOP SECRET';

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'amt-file-safety-'));
  sitesDir = join(work, 'sites');
  const outside = join(work, 'outside');
  await mkdir(outside, { recursive: true });
  await writeFile(join(outside, 'secret.txt'), `${SECRET} outside the sites folder`);
  const acme = join(sitesDir, 'acme');
  await mkdir(join(acme, 'public/media'), { recursive: true });
  await writeFile(join(acme, 'public/logo.txt'), 'acme logo');
  await writeFile(join(acme, 'public/.env'), `${SECRET} env`);
  await writeFile(join(acme, 'public/media/.hidden.txt'), `${SECRET} hidden`);
  await writeFile(join(acme, 'private.txt'), `${SECRET} beside public/`);
  // A file the app would not name (its site withdrawn, say): only the app may send visitors to it.
  await writeFile(join(acme, 'public/withdrawn.txt'), `${SECRET} of a withdrawn site`);
  // What an owner swaps in after the app's check: a link to a file, and a link to a folder.
  await symlink(join(outside, 'secret.txt'), join(acme, 'public/raced.txt'));
  await symlink(outside, join(acme, 'public/raced-folder'));

  // The stand-in for the app: health for nginx's readiness check, else the redirect it is told.
  stub = createServer((req, res) => {
    const target = req.headers['x-test-accel'];
    if (req.url === '/_platform/healthz' || typeof target !== 'string') {
      res.end('ok');
      return;
    }
    res.setHeader('X-Accel-Redirect', target);
    res.setHeader('Content-Type', 'text/plain');
    res.end();
  });
  await new Promise<void>((resolve) => stub.listen(0, '127.0.0.1', resolve));
  stubPort = (stub.address() as AddressInfo).port;
  edge = await startNginx(stubPort, sitesDir);
}, 30_000);

afterAll(async () => {
  await edge?.stop();
  await new Promise((resolve) => stub?.close(resolve));
  if (work) await removeDir(work);
});

const leaks = (res: Response) => res.status === 200 && res.body.includes(SECRET);
/** Asks nginx for a page, with the stand-in app answering X-Accel-Redirect: `target`. */
const accel = (port: number, target: string) => get(port, 'acme.example', '/anything.txt', { 'X-Test-Accel': target });

interface Probe {
  name: string;
  /** The directive that refuses it, as it appears in the generated files. */
  directive: RegExp;
  /** The request that would leak SECRET. */
  send(port: number): Promise<Response>;
}

const PROBES: Probe[] = [
  { name: 'a file swapped for a symlink out of the site', directive: /^\s*disable_symlinks on from=.*;\n/m, send: (port) => accel(port, '/_amt_files/acme/public/raced.txt') },
  { name: 'a folder swapped for a symlink out of the site', directive: /^\s*disable_symlinks on from=.*;\n/m, send: (port) => accel(port, '/_amt_files/acme/public/raced-folder/secret.txt') },
  { name: 'a dot-file in public/', directive: /^\s*location ~ "\/\\\." \{\n\s*internal;\n\s*return 404;\n\s*\}\n/m, send: (port) => accel(port, '/_amt_files/acme/public/.env') },
  { name: 'a dot-file in a folder of public/', directive: /^\s*location ~ "\/\\\." \{\n\s*internal;\n\s*return 404;\n\s*\}\n/m, send: (port) => accel(port, '/_amt_files/acme/public/media/.hidden.txt') },
  { name: 'a file of the site outside public/', directive: /(?<=amt_file_path>)public\//, send: (port) => accel(port, '/_amt_files/acme/private.txt') },
  { name: 'a visitor naming the internal location', directive: /^\s*internal;\n/gm, send: (port) => get(port, 'acme.example', '/_amt_files/acme/public/withdrawn.txt') },
];

describe('files nginx sends from disk', () => {
  it('sends a file the app names, with nginx-static and the app’s content type', async () => {
    const res = await accel(edge.port, '/_amt_files/acme/public/logo.txt');
    expect(res.status).toBe(200);
    expect(res.body).toBe('acme logo');
    expect(res.headers['x-served-by']).toBe('nginx-static');
  });

  it.each(PROBES.map((p) => [p.name, p] as const))('refuses %s, and leaks it once its directive is removed', async (_name, probe) => {
    const refused = await probe.send(edge.port);
    expect(leaks(refused), `${refused.status} ${refused.body.slice(0, 80)}`).toBe(false);
    expect(refused.status).toBe(404);

    let removed = 0;
    const weakened = await startNginx(stubPort, sitesDir, {}, {
      edit: (_file, text) =>
        text.replace(probe.directive, () => {
          removed++;
          return '';
        }),
    });
    try {
      expect(removed, 'the directive is in the generated config').toBeGreaterThan(0);
      const leaked = await probe.send(weakened.port);
      expect(leaks(leaked), `without it: ${leaked.status} ${leaked.body.slice(0, 80)}`).toBe(true);
    } finally {
      await weakened.stop();
    }
  });

  it.each([
    '/_amt_files/acme/public/../private.txt',
    '/_amt_files/acme/public/%2e%2e/private.txt',
    '/_amt_files/acme/public/%2E%2E%2Fprivate.txt',
    '/_amt_files/acme/public/raced-folder/../../private.txt',
    '/_amt_files/../outside/secret.txt',
    '/_amt_files/acme/public/..%2f..%2f..%2foutside%2fsecret.txt',
    '/_amt_files/ACME/public/logo.txt',
    '/_amt_files/acme/public/logo.txt%00.txt',
  ])('refuses the traversal or malformed name %s whoever names it', async (target) => {
    const res = await accel(edge.port, target);
    expect(leaks(res)).toBe(false);
    expect(res.status).toBe(404);
  });
});
