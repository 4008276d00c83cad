import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, lstat, mkdir, rename, rm, unlink, writeFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { connect } from 'node:net';
import { join, resolve } from 'node:path';
import { APP_DIR } from '../config.ts';
import { DEFAULT_CERTIFICATE, DEFAULT_CERTIFICATE_KEY, MODULES_CONF, edgeOptionsFromEnv, innerSocket, renderModulesConf, renderNginxConfig, type EdgeOptions } from '../../../nginx/render.ts';

/**
 * `npm run nginx:config` writes the nginx configuration (NGINX_OUT, default nginx/generated) and
 * checks it with `nginx -t`; `npm run start:edge` does that, then runs the PM2 cluster and nginx in
 * the foreground until Ctrl-C. The configuration does not depend on the sites: rerun it only when
 * an NGINX_* variable, the certificate or the upstream changes.
 */
const ROOT = resolve(APP_DIR, '..');
const MODULES_DIR = '/usr/lib/nginx/modules';
const BROTLI = [`${MODULES_DIR}/ngx_http_brotli_filter_module.so`, `${MODULES_DIR}/ngx_http_brotli_static_module.so`];
/** Debian's dynamic stream module (libnginx-mod-stream); nginx.org builds have it built in. */
const STREAM = `${MODULES_DIR}/ngx_stream_module.so`;

/**
 * Removes a unix socket left behind by an nginx that was killed (nginx removes its own on a clean
 * stop, and refuses to start while the file exists). One that accepts a connection belongs to a
 * running nginx and is left alone.
 */
async function removeStaleSocket(path: string): Promise<void> {
  const stats = await lstat(path).catch(() => undefined);
  if (!stats?.isSocket()) return;
  const live = await new Promise<boolean>((done) => {
    const socket = connect(path, () => {
      socket.destroy();
      done(true);
    });
    socket.once('error', () => done(false));
  });
  if (!live) await unlink(path).catch(() => {});
}

/**
 * Makes the default certificate (for handshakes without a usable name, docs/edge.md) in NGINX_OUT
 * when TLS is on and it is missing: self-signed for `default.invalid`, ten years, with `openssl`
 * (on PATH, or OPENSSL_BIN). Nobody is meant to trust it; a kept one is never replaced. Written
 * under temporary names and renamed, key first, so nginx never sees half a pair. Its key is
 * world-readable on purpose: nginx workers (another user) load it on every handshake, and a key
 * for a name nobody trusts protects nothing.
 *
 * @throws Error naming NGINX_DEFAULT_CERT when openssl cannot make it.
 */
export async function ensureDefaultCertificate(options: EdgeOptions): Promise<void> {
  const ours = options.defaultCertificate === join(options.outDir, DEFAULT_CERTIFICATE) && options.defaultCertificateKey === join(options.outDir, DEFAULT_CERTIFICATE_KEY);
  if (!options.certsDir || !ours || (existsSync(options.defaultCertificate) && existsSync(options.defaultCertificateKey))) return;
  const [cert, key] = [`${options.defaultCertificate}.tmp-${process.pid}`, `${options.defaultCertificateKey}.tmp-${process.pid}`];
  try {
    await promisify(execFile)(process.env.OPENSSL_BIN || 'openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '3650', '-subj', '/CN=default.invalid', '-keyout', key, '-out', cert]);
    await chmod(key, 0o644);
    await rename(key, options.defaultCertificateKey);
    await rename(cert, options.defaultCertificate);
  } catch (error) {
    await Promise.all([rm(cert, { force: true }), rm(key, { force: true })]);
    throw new Error(`NGINX_DEFAULT_CERT: cannot make the default certificate ${options.defaultCertificate} with openssl (install it, or set NGINX_DEFAULT_CERT and NGINX_DEFAULT_KEY to a certificate of your own): ${(error as Error).message}`);
  }
}

/**
 * Writes the configuration into `options.outDir`, with its temp and cache folders, and the
 * `load_module` lines this machine's nginx needs (`modules`, default: the dynamic stream module
 * when Debian's libnginx-mod-stream is installed). Returns the path of nginx.conf.
 */
export async function writeEdgeConfig(options: EdgeOptions, modules: readonly string[] = existsSync(STREAM) ? [STREAM] : []): Promise<string> {
  const files = renderNginxConfig(options);
  await mkdir(options.outDir, { recursive: true });
  for (const dir of ['body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']) await mkdir(join(options.outDir, 'temp', dir), { recursive: true });
  await mkdir(options.cacheDir, { recursive: true });
  for (const [name, text] of Object.entries(files)) await writeFile(join(options.outDir, name), text);
  await writeFile(join(options.outDir, MODULES_CONF), renderModulesConf(modules));
  await ensureDefaultCertificate(options);
  for (const scheme of ['http', 'https'] as const) await removeStaleSocket(innerSocket(options.outDir, scheme));
  return join(options.outDir, 'nginx.conf');
}

function nginxBinary(): string {
  return process.env.NGINX_BIN || (existsSync('/usr/sbin/nginx') ? '/usr/sbin/nginx' : 'nginx');
}

async function main() {
  const command = process.argv[2] ?? 'config';
  const options = edgeOptionsFromEnv(process.env, ROOT, { brotliModules: BROTLI.every((m) => existsSync(m)) ? BROTLI : [] });
  const conf = await writeEdgeConfig(options);
  // Rendering in a container without nginx (docker compose does) cannot test; say so honestly.
  if (process.env.NGINX_SKIP_TEST === '1') {
    console.log(`edge: wrote ${conf} (not tested here: NGINX_SKIP_TEST=1; the nginx container tests it at start)`);
  } else {
    const test = spawnSync(nginxBinary(), ['-t', '-q', '-c', conf, '-p', options.outDir], { encoding: 'utf8' });
    if (test.error || test.status !== 0) {
      const output = test.error?.message ?? test.stderr;
      // The per-client connection limit needs the stream module: say which package has it.
      const hint = /unknown directive "stream"/.test(output) ? `\nThe stream module is missing: on Debian/Ubuntu, apt-get install libnginx-mod-stream (it is built into nginx.org packages and the official image).` : '';
      console.error(`edge: nginx -t failed for ${conf}:\n${output}${hint}`);
      process.exit(1);
    }
    console.log(`edge: wrote ${conf} (nginx -t ok); reload a running nginx with: nginx -s reload -c ${conf} -p ${options.outDir}`);
  }
  if (command !== 'start') return;

  const children: ChildProcess[] = [];
  const stop = (signal: NodeJS.Signals) => {
    for (const child of children) child.kill(signal);
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
  const app = spawn(process.execPath, [join(APP_DIR, 'server/cli/start.ts')], { cwd: ROOT, stdio: 'inherit' });
  const nginx = spawn(nginxBinary(), ['-c', conf, '-p', options.outDir, '-g', 'daemon off;'], { stdio: 'inherit' });
  children.push(app, nginx);
  console.log(`edge: nginx on ${options.listen} in front of ${options.upstream}; Ctrl-C stops both`);
  const first = await Promise.race(children.map((child) => new Promise<number>((r) => child.once('exit', (code) => r(code ?? 1)))));
  stop('SIGTERM');
  process.exit(first);
}

if (import.meta.main) await main();
