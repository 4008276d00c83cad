import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { lstat, mkdir, unlink, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { join, resolve } from 'node:path';
import { APP_DIR } from '../config.ts';
import { MODULES_CONF, edgeOptionsFromEnv, innerSocket, renderModulesConf, renderNginxConfig, type EdgeOptions } from '../../../nginx/render.ts';

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
