import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { APP_DIR } from '../config.ts';
import { SITE_CONFIG_FILE, parseSiteConfig } from '../sites/loader.ts';
import type { SiteConfig } from '../sites/schema.ts';
import { mapBounded, siteSourceOf, type SiteSource } from '../sites/site-source.ts';
import { edgeOptionsFromEnv, renderNginxConfig, type EdgeOptions, type EdgeSite } from '../../../nginx/render.ts';

/**
 * `npm run nginx:config` writes the nginx configuration (NGINX_OUT, default nginx/generated) and
 * checks it with `nginx -t`; `npm run start:edge` does that, then runs the PM2 cluster and nginx in
 * the foreground until Ctrl-C. Rerun nginx:config and `nginx -s reload` after adding domains, so
 * nginx serves their public/ files from disk too (until then the app serves them).
 */
const ROOT = resolve(APP_DIR, '..');
const BROTLI = ['/usr/lib/nginx/modules/ngx_http_brotli_filter_module.so', '/usr/lib/nginx/modules/ngx_http_brotli_static_module.so'];

/**
 * Sites with a valid site.json and the domains they own (first site by id wins a contested host,
 * as in routing). Reads only site.json files, a few at a time: 10,000 sites take a second or two.
 */
export async function edgeSites(sitesDirOrSource: string | SiteSource): Promise<EdgeSite[]> {
  const source = siteSourceOf(sitesDirOrSource);
  const ids = await source.listSiteIds();
  const configs = new Map<string, SiteConfig>();
  await mapBounded(ids, 16, async (id) => {
    const read = await source.readConfig(id).catch(() => null);
    const parsed = read === null ? undefined : parseSiteConfig(read.text, `sites/${id}/${SITE_CONFIG_FILE}`);
    if (parsed?.ok) configs.set(id, parsed.config);
  });
  const claimed = new Set<string>();
  const sites: EdgeSite[] = [];
  for (const id of ids) {
    const config = configs.get(id);
    if (!config) continue;
    const domains = config.domains.filter((d) => !claimed.has(d));
    for (const d of domains) claimed.add(d);
    sites.push({ id, domains });
  }
  return sites;
}

export async function writeEdgeConfig(options: EdgeOptions): Promise<string> {
  const files = renderNginxConfig(options, await edgeSites(options.sitesDir));
  await mkdir(options.outDir, { recursive: true });
  for (const dir of ['body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']) await mkdir(join(options.outDir, 'temp', dir), { recursive: true });
  await mkdir(options.cacheDir, { recursive: true });
  for (const [name, text] of Object.entries(files)) await writeFile(join(options.outDir, name), text);
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
      console.error(`edge: nginx -t failed for ${conf}:\n${test.error?.message ?? test.stderr}`);
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
