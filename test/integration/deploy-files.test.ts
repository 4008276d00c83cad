import { describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { closeSync, existsSync, openSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, posix, relative, resolve } from 'node:path';
import yaml from 'js-yaml';
import { edgeOptionsFromEnv, renderNginxConfig } from '../../nginx/render.ts';
import { writeEdgeConfig } from '../../astro-multi-tenant/server/cli/edge.ts';
import { loadConfig } from '../../astro-multi-tenant/server/config.ts';
import { parseSessionKeys } from '../../astro-multi-tenant/server/session/session-token.ts';

/**
 * The Docker and Kubernetes files cannot be run here (no Docker engine, no cluster), so these tests
 * read them and hold them to what the code does: ports, health paths, environment variable names,
 * shutdown budgets, secrets, and the nginx configuration the compose file renders.
 */

const ROOT = resolve(import.meta.dirname, '../..');
const NGINX = process.env.NGINX_BIN || '/usr/sbin/nginx';

// Parsed YAML is checked field by field below; `any` keeps those paths readable.
type Y = any;

const text = (path: string) => readFile(join(ROOT, path), 'utf8');
const yamlDocs = async (path: string): Promise<Y[]> => (yaml.loadAll(await text(path)) as Y[]).filter((d) => d);
const yamlDoc = async (path: string): Promise<Y> => (await yamlDocs(path))[0];

/** `${VAR:-default}` / `${VAR-default}` / `${VAR}` as docker compose reads them with nothing set. */
const interpolate = (value: unknown): string => String(value ?? '').replace(/\$\{(\w+)(?::?-([^}]*))?\}/g, (_, _name: string, fallback?: string) => fallback ?? '');
const interpolateEnv = (env: Record<string, unknown> | undefined): Record<string, string> =>
  Object.fromEntries(Object.entries(env ?? {}).map(([k, v]) => [k, interpolate(v)]));

// ---------------------------------------------------------------------------------------------
// What the code reads

async function filesUnder(dir: string, ext: string): Promise<string[]> {
  const entries = await readdir(join(ROOT, dir), { recursive: true });
  return entries.filter((e) => e.endsWith(ext)).map((e) => join(dir, e));
}

/** Every environment variable name the server, the nginx generator and the PM2 file read. */
async function codeEnvNames(): Promise<Set<string>> {
  const files = [...(await filesUnder('astro-multi-tenant/server', '.ts')), 'nginx/render.ts', 'ecosystem.config.js'];
  const names = new Set<string>();
  const patterns = [
    /\benv\.([A-Z][A-Z0-9_]*)\b/g, // env.X, process.env.X
    /\benv\[\s*'([A-Z][A-Z0-9_]*)'\s*\]/g, // env['X']
    /\(\s*env\s*,\s*'([A-Z][A-Z0-9_]*)'/g, // integer(env, 'X', …)
    /\bms\(\s*'([A-Z][A-Z0-9_]*)'/g, // ecosystem.config.js: ms('X', …)
  ];
  for (const file of files) {
    const source = await text(file);
    for (const pattern of patterns) for (const match of source.matchAll(pattern)) names.add(match[1]!);
  }
  return names;
}

/** The exact paths the platform routes answer (ops/platform-routes.ts compares `path === '…'`). */
async function platformPaths(): Promise<string[]> {
  const source = await text('astro-multi-tenant/server/ops/platform-routes.ts');
  return [...source.matchAll(/path === '(\/_platform\/[^']+)'/g)].map((m) => m[1]!);
}

/** PM2's kill_timeout margin over the server's own drain budget (ecosystem.config.js). */
async function pm2KillMarginMs(): Promise<number> {
  const match = /kill_timeout:\s*drainBudget\s*\+\s*(\d+)/.exec(await text('ecosystem.config.js'));
  expect(match, 'ecosystem.config.js: kill_timeout = drainBudget + margin').toBeTruthy();
  return Number(match![1]);
}

async function pm2AppName(): Promise<string> {
  return /name:\s*'([^']+)'/.exec(await text('ecosystem.config.js'))![1]!;
}

/** Relative imports reachable from the given entry files (repository-relative paths). */
async function importClosure(entries: string[]): Promise<Set<string>> {
  const seen = new Set<string>();
  const queue = [...entries];
  while (queue.length) {
    const file = queue.pop()!;
    if (seen.has(file)) continue;
    seen.add(file);
    const source = await text(file);
    const specs = [...source.matchAll(/(?:\bfrom\s*|\bimport\s*\(?\s*)['"](\.{1,2}\/[^'"]+)['"]/g)].map((m) => m[1]!);
    for (const spec of specs) queue.push(relative(ROOT, resolve(ROOT, dirname(file), spec)));
  }
  return seen;
}

const sizeBytes = (value: string): number => {
  const m = /^(\d+(?:\.\d+)?)\s*(Ki|Mi|Gi|K|M|G)?$/.exec(value.trim());
  if (!m) throw new Error(`not a size: ${value}`);
  const unit = { Ki: 1024, Mi: 1024 ** 2, Gi: 1024 ** 3, K: 1024, M: 1024 ** 2, G: 1024 ** 3 }[m[2] ?? ''] ?? 1; // PM2 reads M as MiB
  return Number(m[1]) * unit;
};

// ---------------------------------------------------------------------------------------------
// Dockerfile

interface Instruction {
  op: string;
  args: string;
}
interface Stage {
  name: string | undefined;
  from: string;
  instructions: Instruction[];
}

function parseDockerfile(source: string): { globalArgs: Record<string, string>; stages: Stage[] } {
  const lines = source
    .replace(/\\\r?\n/g, ' ')
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
  const globalArgs: Record<string, string> = {};
  const stages: Stage[] = [];
  for (const line of lines) {
    const [, op = '', args = ''] = /^(\S+)\s*(.*)$/.exec(line) ?? [];
    const upper = op.toUpperCase();
    if (upper === 'FROM') {
      const m = /^(\S+)(?:\s+AS\s+(\S+))?/i.exec(args)!;
      stages.push({ from: m[1]!.replace(/\$\{(\w+)\}/g, (_, n: string) => globalArgs[n] ?? ''), name: m[2], instructions: [] });
    } else if (upper === 'ARG' && stages.length === 0) {
      const [k, v = ''] = args.split('=');
      globalArgs[k!] = v;
    } else if (stages.length) {
      stages.at(-1)!.instructions.push({ op: upper, args });
    }
  }
  return { globalArgs, stages };
}

/** COPY's sources and where each lands (absolute, in the image). */
function copies(stage: Stage): Array<{ from: string | undefined; src: string; dest: string }> {
  let workdir = '/';
  const out: Array<{ from: string | undefined; src: string; dest: string }> = [];
  for (const { op, args } of stage.instructions) {
    if (op === 'WORKDIR') workdir = posix.resolve(workdir, args);
    if (op !== 'COPY') continue;
    const tokens = args.split(/\s+/);
    const from = tokens.find((t) => t.startsWith('--from='))?.slice('--from='.length);
    const paths = tokens.filter((t) => !t.startsWith('--'));
    const dest = posix.resolve(workdir, paths.at(-1)!);
    const sources = paths.slice(0, -1);
    const intoDir = sources.length > 1 || paths.at(-1)!.endsWith('/');
    for (const src of sources) out.push({ from, src, dest: intoDir ? posix.join(dest, posix.basename(src)) : dest });
  }
  return out;
}

const envOf = (stage: Stage): Record<string, string> =>
  Object.fromEntries(
    stage.instructions
      .filter((i) => i.op === 'ENV')
      .flatMap((i) => i.args.split(/\s+/))
      .map((kv) => kv.split('=') as [string, string]),
  );

/** A .dockerignore pattern as a regex over repository-relative paths (enough for ours). */
const ignoreRegex = (pattern: string) =>
  new RegExp(`^${pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*\*\//g, '(?:.*/)?').replace(/\*/g, '[^/]*')}(?:/.*)?$`);

describe('docker/Dockerfile', async () => {
  const source = await text('docker/Dockerfile');
  const { stages } = parseDockerfile(source);
  const runtime = stages.at(-1)!;
  const runtimeOps = (op: string) => runtime.instructions.filter((i) => i.op === op).map((i) => i.args);
  const defaults = loadConfig({}, ROOT);

  it('builds in at least two stages, all from a Node 24 image, and runs the last one as a non-root user', () => {
    expect(stages.length).toBeGreaterThanOrEqual(2);
    for (const stage of stages) expect(stage.from).toMatch(/^node:24[-.]/);
    const users = runtimeOps('USER');
    expect(users.length).toBeGreaterThan(0);
    expect(users.at(-1)).not.toMatch(/^(root|0)(:|$)/);
  });

  it('keeps dev dependencies out of the runtime: its node_modules come from an `npm ci --omit=dev` stage', () => {
    const modules = copies(runtime).find((c) => c.dest === '/app/node_modules');
    expect(modules?.from).toBeTruthy();
    const depsStage = stages.find((s) => s.name === modules!.from)!;
    expect(depsStage.instructions.some((i) => i.op === 'RUN' && /npm ci\b.*--omit=dev/.test(i.args))).toBe(true);
    // The build stage does run the full build.
    expect(stages.some((s) => s.instructions.some((i) => i.op === 'RUN' && /npm run build\b/.test(i.args)))).toBe(true);
  });

  it('copies into the runtime image every file that npm start, the server, npm run css and npm run nginx:config load', async () => {
    const needed = await importClosure([
      'astro-multi-tenant/server/cli/start.ts',
      'astro-multi-tenant/server/main.ts',
      'astro-multi-tenant/server/cli/css.ts',
      'astro-multi-tenant/server/cli/sites.ts',
      'astro-multi-tenant/server/cli/edge.ts',
    ]);
    for (const extra of ['package.json', 'ecosystem.config.js', 'shared-components/styles/theme.css', 'node_modules/pm2/bin/pm2-runtime']) needed.add(extra);
    needed.add(relative(ROOT, defaults.astroEntry));
    needed.add(relative(ROOT, join(defaults.cssDir, '_base/manifest.json')));
    const landed = copies(runtime).map((c) => c.dest);
    const missing = [...needed].filter((file) => !landed.some((dest) => `/app/${file}` === dest || `/app/${file}`.startsWith(`${dest}/`)));
    expect(missing).toEqual([]);
  });

  it('copies from the build context only paths that exist and that the dockerignore lets through', async () => {
    const ignore = (await text('docker/Dockerfile.dockerignore'))
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith('#'))
      .map(ignoreRegex);
    const fromContext = stages.flatMap((s) => copies(s).filter((c) => !c.from));
    expect(fromContext.length).toBeGreaterThan(0);
    for (const { src } of fromContext) {
      expect(existsSync(join(ROOT, src)), `${src} exists`).toBe(true);
      expect(ignore.some((re) => re.test(src.replace(/^\.\//, ''))), `${src} is not dockerignored`).toBe(false);
    }
    // …and what must never be sent is ignored.
    for (const secret of ['docker/secrets.env', 'node_modules', 'astro-multi-tenant/node_modules', 'astro-multi-tenant/dist']) {
      expect(ignore.some((re) => re.test(secret)), `${secret} is dockerignored`).toBe(true);
    }
    // Every --from names an earlier stage.
    const names = stages.map((s) => s.name);
    for (const stage of stages) for (const c of copies(stage)) if (c.from) expect(names.slice(0, stages.indexOf(stage))).toContain(c.from);
  });

  it(`exposes PORT ${defaults.port} (the server default) and health-checks /_platform/healthz on that same port`, async () => {
    expect(defaults.port).toBe(4321);
    const port = Number(envOf(runtime).PORT ?? defaults.port);
    expect(port).toBe(defaults.port);
    expect(runtimeOps('EXPOSE')).toContain(String(port));
    const health = runtimeOps('HEALTHCHECK').join(' ');
    expect(await platformPaths()).toContain('/_platform/healthz');
    expect(health).toContain('/_platform/healthz');
    expect(health).not.toContain('/_platform/readyz');
    expect(health).toMatch(new RegExp(`process\\.env\\.PORT \\|\\| ${port}\\b`));
  });

  it('runs `npm start` (cli/start.ts → pm2-runtime) under an init that forwards SIGTERM', () => {
    const cmd = JSON.parse(runtimeOps('CMD').at(-1)!) as string[];
    const entrypoint = JSON.parse(runtimeOps('ENTRYPOINT').at(-1)!) as string[];
    expect(cmd).toEqual(['node', 'astro-multi-tenant/server/cli/start.ts']);
    expect(entrypoint[0]).toBe('tini');
    expect(source).toMatch(/apt-get install[^\n]*\btini\b/);
  });

  it('discards the log files pm2-runtime would otherwise grow without bound in ~/.pm2/logs', async () => {
    const app = await pm2AppName();
    for (const stream of ['out', 'error']) expect(source).toContain(`ln -s /dev/null /home/node/.pm2/logs/${app}-${stream}.log`);
    expect(runtimeOps('USER').at(-1)).toBe('node');
  });

  it('sets only environment variables the server reads, and serves sites from /srv/sites', async () => {
    const names = await codeEnvNames();
    for (const name of Object.keys(envOf(runtime))) expect(names, name).toContain(name);
    expect(envOf(runtime).SITES_DIR).toBe('/srv/sites');
  });
});

// ---------------------------------------------------------------------------------------------
// docker-compose.yml

describe('docker/docker-compose.yml', async () => {
  const compose = await yamlDoc('docker/docker-compose.yml');
  const services = compose.services as Record<string, Y>;
  const appEnv = interpolateEnv(services.app.environment);
  const edgeEnv = interpolateEnv(services['nginx-config'].environment);
  const defaults = loadConfig({}, ROOT);
  /** "source:target[:mode]" → { source, target }, with compose defaults filled in. */
  const mounts = (service: Y) =>
    (service.volumes as string[]).map((v) => {
      const [source, target, mode] = interpolate(v).split(':');
      return { source: source!, target: target!, readOnly: mode === 'ro' };
    });

  it('builds the app from docker/Dockerfile with the repository as context, and runs nginx-config from the same image', () => {
    expect(services.app.build).toMatchObject({ context: '..', dockerfile: 'docker/Dockerfile' });
    expect(services['nginx-config'].image).toBe(services.app.image);
  });

  it(`runs the app on PORT ${defaults.port} with the sites mounted read-only at SITES_DIR`, () => {
    expect(Number(appEnv.PORT)).toBe(defaults.port);
    expect(services.app.expose.map(String)).toContain(String(defaults.port));
    const sites = mounts(services.app).find((m) => m.target === appEnv.SITES_DIR);
    expect(appEnv.SITES_DIR).toBe('/srv/sites');
    expect(sites).toMatchObject({ source: '../sites', readOnly: true });
    expect(existsSync(resolve(ROOT, 'docker', sites!.source))).toBe(true);
  });

  it('passes the server’s own config validation with the compose values', () => {
    const config = loadConfig({ ...appEnv, SESSION_KEYS: `k1:${'x'.repeat(48)}`, DOMAIN_TOKEN_SECRET: 'y'.repeat(44) }, '/app');
    expect(config.redis?.url).toBe(appEnv.REDIS_URL);
    expect(config.sitesDir).toBe('/srv/sites');
    // Custom domains are proven by DNS; with ACME_DIRECTORY_URL set, certificates are ordered too.
    expect(config.domainVerification).toBeDefined();
    expect(loadConfig({ ...appEnv, SESSION_KEYS: `k1:${'x'.repeat(48)}`, DOMAIN_TOKEN_SECRET: 'y'.repeat(44), ACME_DIRECTORY_URL: 'https://acme-staging-v02.api.letsencrypt.org/directory' }, '/app').acme?.certsDir).toBe(appEnv.CERTS_DIR);
  });

  it('shares the certificates: the app writes CERTS_DIR on a volume nginx reads at the folder the config names, owned by the app and nginx’s group', () => {
    const written = mounts(services.app).find((m) => m.target === appEnv.CERTS_DIR);
    const read = mounts(services.nginx).find((m) => m.target === edgeEnv.CERTS_DIR);
    expect(written).toMatchObject({ readOnly: false });
    expect(read).toMatchObject({ source: written!.source, readOnly: true });
    expect(Object.keys(compose.volumes)).toContain(written!.source);
    const options = edgeOptionsFromEnv(edgeEnv, '/app');
    expect(options.certsDir).toBe(appEnv.CERTS_DIR);
    expect(renderNginxConfig(options)['nginx.conf']).toContain(`${appEnv.CERTS_DIR}/$amt_sni_crt_name.crt;`);
    // The volume is made the app user's (1000, the image's node) and the nginx image's group (101), setgid, before the app starts.
    const dir = services['certs-dir'];
    expect(mounts(dir).find((m) => m.target === appEnv.CERTS_DIR)?.source).toBe(written!.source);
    expect(dir.command.join(' ')).toContain(`chown 1000:101 ${appEnv.CERTS_DIR} && chmod 2750 ${appEnv.CERTS_DIR}`);
    expect(services.app.depends_on['certs-dir'].condition).toBe('service_completed_successfully');
    // HTTPS is published, and redirects name the published port.
    expect(services.nginx.ports.map(interpolate)).toContain(`8443:${edgeEnv.NGINX_TLS_LISTEN}`);
    expect(options.tlsPublicPort).toBe(':8443');
  });

  it('points REDIS_URL at the redis service, which keeps an append-only file on a volume and is healthy before the app starts', () => {
    const url = new URL(appEnv.REDIS_URL!);
    expect(url.protocol).toBe('redis:');
    expect(Object.keys(services)).toContain(url.hostname);
    expect(url.port).toBe('6379');
    const redis = services[url.hostname];
    expect(redis.command.join(' ')).toMatch(/--appendonly yes/);
    const data = mounts(redis).find((m) => m.target === '/data');
    expect(Object.keys(compose.volumes)).toContain(data?.source);
    expect(services.app.depends_on.redis.condition).toBe('service_healthy');
  });

  it('takes SESSION_KEYS from a git-ignored env file, whose committed example the server refuses as is', async () => {
    expect(appEnv.SESSION_KEYS).toBeUndefined();
    expect(services.app.env_file).toEqual(['secrets.env']);
    expect((await text('docker/.gitignore')).split('\n')).toContain('secrets.env');
    const example = Object.fromEntries(
      (await text('docker/secrets.env.example'))
        .split('\n')
        .filter((l) => /^[A-Z_]+=/.test(l))
        .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
    );
    expect(example.SESSION_KEYS).toBeDefined();
    expect(() => parseSessionKeys(example.SESSION_KEYS!)).toThrow(/SESSION_KEYS/);
    // So is its DOMAIN_TOKEN_SECRET, which DOMAIN_VERIFICATION=dns requires.
    expect(appEnv.DOMAIN_TOKEN_SECRET).toBeUndefined();
    expect(() => loadConfig({ ...appEnv, SESSION_KEYS: `k1:${'x'.repeat(48)}`, DOMAIN_TOKEN_SECRET: example.DOMAIN_TOKEN_SECRET }, '/app')).toThrow(/DOMAIN_TOKEN_SECRET/);
  });

  it('sets only environment variables the code reads, in both services that run the app image', async () => {
    const names = await codeEnvNames();
    for (const name of ['PORT', 'SITES_DIR', 'REDIS_URL', 'SESSION_KEYS', 'DRAIN_TIMEOUT_MS', 'EDGE_CACHE_S', 'INSTANCES', 'NGINX_OUT', 'NGINX_SKIP_TEST']) expect(names).toContain(name);
    for (const name of [...Object.keys(appEnv), ...Object.keys(edgeEnv)]) expect(names, name).toContain(name);
    for (const other of ['redis', 'nginx']) expect(services[other].environment).toBeUndefined();
  });

  it('gives Docker longer to stop the app than PM2 gives a draining worker (SHUTDOWN_DELAY_MS + DRAIN_TIMEOUT_MS + margin)', async () => {
    const config = loadConfig({ ...appEnv, DOMAIN_TOKEN_SECRET: 'y'.repeat(44) }, '/app');
    const grace = /^(\d+)s$/.exec(services.app.stop_grace_period)!;
    expect(Number(grace[1]) * 1000).toBeGreaterThan(config.shutdownDelayMs + config.drainTimeoutMs + (await pm2KillMarginMs()));
  });

  it('trusts forwarded headers only from nginx’s fixed address on the compose network', () => {
    const nginxIp = services.nginx.networks.amt.ipv4_address as string;
    expect(appEnv.TRUSTED_PROXIES).toBe(nginxIp);
    const subnet = compose.networks.amt.ipam.config[0].subnet as string;
    expect(nginxIp.split('.').slice(0, 3)).toEqual(subnet.split('/')[0]!.split('.').slice(0, 3));
    expect(Object.keys(services.app.ports ?? {})).toEqual([]); // only nginx is published
  });

  it('renders the nginx config with npm run nginx:config into the volume nginx mounts at the same absolute path, and starts nginx with it', () => {
    expect(services['nginx-config'].command).toEqual(['npm', 'run', 'nginx:config']);
    const out = edgeEnv.NGINX_OUT!;
    expect(out).toMatch(/^\//);
    const written = mounts(services['nginx-config']).find((m) => m.target === out);
    const read = mounts(services.nginx).find((m) => m.target === out);
    expect(written?.source).toBeTruthy();
    expect(read?.source).toBe(written!.source);
    expect(Object.keys(compose.volumes)).toContain(written!.source);
    expect(services.nginx.command).toEqual(['nginx', '-c', `${out}/nginx.conf`, '-p', out, '-g', 'daemon off;']);
    expect(services.nginx.depends_on['nginx-config'].condition).toBe('service_completed_successfully');
    expect(services.nginx.depends_on.app.condition).toBe('service_healthy');
  });

  it('mounts the sites into nginx at NGINX_SITES_DIR from the same source as the app, and the renderer sees them there too', () => {
    const appSites = mounts(services.app).find((m) => m.target === appEnv.SITES_DIR)!;
    for (const service of [services.nginx, services['nginx-config']]) {
      const sites = mounts(service).find((m) => m.target === edgeEnv.NGINX_SITES_DIR);
      expect(sites).toMatchObject({ source: appSites.source, readOnly: true });
    }
  });

  it(`renders a config that listens on 80, proxies to app:${defaults.port}, proxies and caches CSS, and logs to the container's stdout/stderr`, async () => {
    expect(edgeEnv.NGINX_UPSTREAM).toBe(`app:${defaults.port}`);
    expect(services.nginx.ports.map(interpolate)).toContain(`8080:${edgeEnv.NGINX_LISTEN}`);
    const options = edgeOptionsFromEnv(edgeEnv, '/app');
    expect(options.cssDir).toBeUndefined();
    const files = renderNginxConfig(options);
    const main = files['nginx.conf']!;
    expect(main).toMatch(/stream \{[^]*?\n\s+listen 80;/);
    expect(main).toContain(`server app:${defaults.port} max_fails=0;`);
    expect(main).toContain('pid /srv/edge/nginx.pid;');
    expect(main).toContain('error_log stderr warn;');
    expect(main).toContain('access_log /dev/stdout amt_json;');
    expect(main).toContain('proxy_cache_path /srv/edge/cache');
    expect(main).toContain('include /etc/nginx/mime.types;');
    const locations = files['amt-locations.conf']!;
    expect(locations).toMatch(/location \^~ \/_platform\/css\/ \{[^}]*proxy_cache amt_cache;/);
    expect(locations).toContain('alias /srv/sites/$amt_file_site/$amt_file_path;');
  });

  it('renders a config that nginx -t accepts, which differs from a loopback-upstream rendering only in the upstream line', async () => {
    // Not skipped without nginx: CI installs it (.ci/run), so a missing binary is a broken setup.
    expect(existsSync(NGINX), `${NGINX} is missing: install Debian's nginx (.ci/run does) or set NGINX_BIN`).toBe(true);
    const dir = await mkdtemp(join(tmpdir(), 'amt-deploy-'));
    const sitesDir = join(ROOT, 'sites');
    try {
      const composeFiles = renderNginxConfig(edgeOptionsFromEnv(edgeEnv, '/app'));
      const nginxTest = async (upstream: string) => {
        const options = edgeOptionsFromEnv({ ...edgeEnv, NGINX_OUT: join(dir, 'out'), NGINX_SITES_DIR: sitesDir, NGINX_UPSTREAM: upstream }, ROOT);
        const conf = await writeEdgeConfig(options);
        // The access log is /dev/stdout. In a container that is a pipe; Node gives a child a
        // socket instead, which nginx cannot open() (ENXIO). A file stands in for the pipe.
        const stdout = openSync(join(dir, 'nginx-stdout'), 'w');
        const result = await new Promise<{ ok: boolean; output: string }>((done) => {
          const child = spawn(NGINX, ['-t', '-c', conf, '-p', options.outDir], { stdio: ['ignore', stdout, 'pipe'] });
          let output = '';
          child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
          child.on('error', (error) => done({ ok: false, output: error.message }));
          child.on('close', (code) => done({ ok: code === 0, output }));
        }).finally(() => closeSync(stdout));
        return { ...result, options };
      };
      let upstream = edgeEnv.NGINX_UPSTREAM!;
      let result = await nginxTest(upstream);
      if (!result.ok) {
        // `app` resolves only on the compose network; that must be the one and only complaint.
        expect(result.output).toContain(`host not found in upstream "${upstream}"`);
        upstream = `127.0.0.1:${defaults.port}`;
        result = await nginxTest(upstream);
      }
      expect(result.output).toContain('test is successful');
      const changed: string[] = [];
      for (const [name, composed] of Object.entries(composeFiles)) {
        const local = (await readFile(join(result.options.outDir, name), 'utf8')).replaceAll(result.options.outDir, '/srv/edge').replaceAll(sitesDir, '/srv/sites');
        const a = composed.split('\n');
        const b = local.split('\n');
        expect(b.length, name).toBe(a.length);
        a.forEach((line, i) => {
          if (line !== b[i]) changed.push(`${line.trim()} | ${b[i]!.trim()}`);
        });
      }
      expect(changed).toEqual(upstream === edgeEnv.NGINX_UPSTREAM ? [] : [`server ${edgeEnv.NGINX_UPSTREAM} max_fails=0; | server ${upstream} max_fails=0;`]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

// ---------------------------------------------------------------------------------------------
// Kubernetes

describe('deploy/k8s', async () => {
  const kustomization = await yamlDoc('deploy/k8s/kustomization.yaml');
  const resources: Y[] = [];
  for (const file of kustomization.resources as string[]) resources.push(...(await yamlDocs(join('deploy/k8s', file))));
  const find = (kind: string, name?: string): Y => {
    const found = resources.filter((r) => r.kind === kind && (name === undefined || r.metadata.name === name));
    expect(found.length, `${kind} ${name ?? ''}`).toBeGreaterThan(0);
    return found[0];
  };
  const deployment = find('Deployment', 'astro-multi-tenant');
  const pod = deployment.spec.template.spec;
  const app = pod.containers.find((c: Y) => c.name === 'app');
  /** The pod's edge nginx for custom domains over HTTPS: the one container not running the app image. */
  const edge = pod.containers.find((c: Y) => c.name === 'edge');
  const configMap = find('ConfigMap', 'astro-multi-tenant-config');
  const cm = configMap.data as Record<string, string>;
  const secretExample = await yamlDoc('deploy/k8s/secret.example.yaml');
  const cssJob = await yamlDoc('deploy/k8s/jobs/build-css.yaml');
  const defaults = loadConfig({}, ROOT);
  const matches = (selector: Record<string, string>, labels: Record<string, string>) => Object.entries(selector).every(([k, v]) => labels[k] === v);

  it('lists only files that exist, leaves the Secret example and the CSS job out, and names the image kustomize rewrites in every app container', async () => {
    for (const file of kustomization.resources as string[]) expect(existsSync(join(ROOT, 'deploy/k8s', file)), file).toBe(true);
    expect(kustomization.resources).not.toContain('secret.example.yaml');
    expect(resources.map((r) => r.kind)).toEqual(
      expect.arrayContaining(['ConfigMap', 'PersistentVolumeClaim', 'Deployment', 'Service', 'HorizontalPodAutoscaler', 'PodDisruptionBudget', 'Ingress', 'StatefulSet', 'NetworkPolicy']),
    );
    // kustomize's `images` transformer (kubectl kustomize; not installable on the CI image, so
    // applied here): a container whose image *name* (before any :tag or @digest) equals an entry's
    // `name` gets newName:newTag; every other image is left exactly as written.
    const rewrite = (image: string) => {
      const name = image.replace(/@.*$/, '').replace(/:[^/:]+$/, '');
      const entry = (kustomization.images as Y[]).find((i) => i.name === name);
      return entry ? `${entry.newName ?? name}:${entry.newTag}` : image;
    };
    const released = `${kustomization.images[0].newName}:${kustomization.images[0].newTag}`;
    const containers = resources.flatMap((r) => [...(r.spec?.template?.spec?.initContainers ?? []), ...(r.spec?.template?.spec?.containers ?? [])]);
    for (const c of [...pod.initContainers, ...pod.containers].filter((c: Y) => c !== edge)) expect(rewrite(c.image), c.name).toBe(released);
    // Anything else (Redis) is pinned by tag: kustomize leaves it alone, and :latest would drift.
    for (const c of containers.filter((c: Y) => rewrite(c.image) === c.image)) expect(c.image, c.name).toMatch(/^[^:@]+(:(?!latest$)[\w.-]+|@sha256:[a-f0-9]{64})$/);
    // The CSS job is not rewritten by kustomize (not in `resources`): it names the same image explicitly.
    expect(cssJob.spec.template.spec.containers[0].image).toBe(released);
  });

  it(`reaches PORT ${defaults.port} everywhere: ConfigMap, containerPort, probes, Service targetPort and Ingress backends`, () => {
    expect(Number(cm.PORT)).toBe(defaults.port);
    const port = app.ports.find((p: Y) => p.name === 'http');
    expect(port.containerPort).toBe(defaults.port);
    for (const probe of ['startupProbe', 'livenessProbe', 'readinessProbe']) expect([port.name, port.containerPort]).toContain(app[probe].httpGet.port);
    const service = find('Service', 'astro-multi-tenant');
    expect(matches(service.spec.selector, deployment.spec.template.metadata.labels)).toBe(true);
    const servicePort = service.spec.ports[0];
    expect([port.name, port.containerPort]).toContain(servicePort.targetPort);
    for (const ingress of resources.filter((r) => r.kind === 'Ingress')) {
      for (const rule of ingress.spec.rules) {
        for (const path of rule.http.paths) {
          expect(path.backend.service.name).toBe(service.metadata.name);
          expect([servicePort.name, servicePort.port]).toContain(path.backend.service.port.name ?? path.backend.service.port.number);
        }
      }
    }
  });

  it('probes readiness on /_platform/readyz and liveness on /_platform/healthz, exactly the paths the server answers', async () => {
    const paths = await platformPaths();
    expect(paths).toEqual(expect.arrayContaining(['/_platform/healthz', '/_platform/readyz']));
    expect(app.readinessProbe.httpGet.path).toBe('/_platform/readyz');
    expect(app.livenessProbe.httpGet.path).toBe('/_platform/healthz');
    expect(app.startupProbe.httpGet.path).toBe('/_platform/healthz');
    // readyz runs its checks with a 1 s timeout each: the probe must wait longer than that.
    expect(app.readinessProbe.timeoutSeconds).toBeGreaterThan(1);
  });

  it('rolls out with maxUnavailable 0 and maxSurge 1, leaving the replica count to the autoscaler', () => {
    expect(deployment.spec.strategy).toEqual({ type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } });
    expect(deployment.spec.replicas).toBeUndefined();
  });

  it('gives a terminating pod more time than preStop + SHUTDOWN_DELAY_MS + DRAIN_TIMEOUT_MS + PM2’s kill margin', async () => {
    const config = loadConfig({ ...cm, DOMAIN_TOKEN_SECRET: 'y'.repeat(44) }, '/app');
    const command = app.lifecycle.preStop.exec.command as string[];
    expect(command[0]).toBe('sleep');
    const preStopMs = Number(command[1]) * 1000;
    expect(preStopMs).toBeGreaterThan(0);
    const needed = preStopMs + config.shutdownDelayMs + config.drainTimeoutMs + (await pm2KillMarginMs());
    expect(pod.terminationGracePeriodSeconds * 1000).toBeGreaterThan(needed);
  });

  it('sets only environment variables the code reads, and the ConfigMap passes the server’s own validation', async () => {
    const names = await codeEnvNames();
    const containers = [...(pod.initContainers ?? []), ...pod.containers.filter((c: Y) => c !== edge), ...cssJob.spec.template.spec.containers];
    const set = [...Object.keys(cm), ...containers.flatMap((c: Y) => (c.env ?? []).map((e: Y) => e.name))];
    for (const name of set) expect(names, name).toContain(name);
    for (const c of containers) expect(c.envFrom).toEqual([{ configMapRef: { name: configMap.metadata.name } }]);
    expect(edge.env).toBeUndefined();
    expect(() => loadConfig({ ...cm, SESSION_KEYS: `k1:${'x'.repeat(48)}`, DOMAIN_TOKEN_SECRET: 'y'.repeat(44) }, '/app')).not.toThrow();
  });

  it('reads SESSION_KEYS (and the optional ADMIN_TOKEN) from the Secret, whose committed example the server refuses as is', () => {
    expect(cm.SESSION_KEYS).toBeUndefined();
    const env = Object.fromEntries(app.env.map((e: Y) => [e.name, e]));
    expect(env.SESSION_KEYS.valueFrom.secretKeyRef).toEqual({ name: secretExample.metadata.name, key: 'SESSION_KEYS' });
    expect(env.ADMIN_TOKEN.valueFrom.secretKeyRef).toMatchObject({ name: secretExample.metadata.name, key: 'ADMIN_TOKEN', optional: true });
    expect(secretExample.kind).toBe('Secret');
    expect(() => parseSessionKeys(secretExample.stringData.SESSION_KEYS)).toThrow(/SESSION_KEYS/);
    // DOMAIN_VERIFICATION=dns needs DOMAIN_TOKEN_SECRET, from the same Secret, whose example is refused too.
    expect(cm.DOMAIN_VERIFICATION).toBe('dns');
    expect(cm.DOMAIN_TOKEN_SECRET).toBeUndefined();
    expect(env.DOMAIN_TOKEN_SECRET.valueFrom.secretKeyRef).toEqual({ name: secretExample.metadata.name, key: 'DOMAIN_TOKEN_SECRET' });
    expect(() => loadConfig({ ...cm, SESSION_KEYS: `k1:${'x'.repeat(48)}`, DOMAIN_TOKEN_SECRET: secretExample.stringData.DOMAIN_TOKEN_SECRET }, '/app')).toThrow(/DOMAIN_TOKEN_SECRET/);
  });

  it('serves custom domains over HTTPS from each pod\'s edge nginx, which reads the certificates the pod\'s app writes into CERTS_DIR from the shared store', async () => {
    expect(loadConfig({ ...cm, SESSION_KEYS: `k1:${'x'.repeat(48)}`, DOMAIN_TOKEN_SECRET: 'y'.repeat(44), ACME_DIRECTORY_URL: 'https://acme-staging-v02.api.letsencrypt.org/directory' }, '/app').acme?.certsDir).toBe(cm.CERTS_DIR);
    // Certificates are shared through Redis (every pod); CERTS_DIR is this pod's copy: written by the app, read by the edge.
    const certsMount = (c: Y) => c.volumeMounts.find((m: Y) => m.mountPath === cm.CERTS_DIR);
    expect(certsMount(app).readOnly).toBeFalsy();
    expect(certsMount(edge)).toMatchObject({ name: certsMount(app).name, readOnly: true });
    expect(pod.volumes.find((v: Y) => v.name === certsMount(app).name).emptyDir).toBeDefined();
    // The edge's configuration is rendered at pod start into a folder the edge container runs from.
    const init = pod.initContainers.find((c: Y) => c.name === 'edge-config');
    const initEnv = { ...cm, ...Object.fromEntries(init.env.map((e: Y) => [e.name, e.value])) };
    const options = edgeOptionsFromEnv(initEnv, '/app');
    expect(init.volumeMounts.find((m: Y) => m.mountPath === options.outDir)?.name).toBe(edge.volumeMounts.find((m: Y) => m.mountPath === options.outDir)?.name);
    expect(edge.command).toEqual(['nginx', '-e', 'stderr', '-c', `${options.outDir}/nginx.conf`, '-p', options.outDir, '-g', 'daemon off;']);
    expect(options.certsDir).toBe(cm.CERTS_DIR);
    expect(options.upstream).toBe(`127.0.0.1:${cm.PORT}`);
    // It talks to the app over loopback, which the app trusts for X-Forwarded-*.
    expect(cm.TRUSTED_PROXIES!.split(',')).toContain('127.0.0.1');
    // Sites and CSS from the content volume, where the app reads them.
    for (const dir of [options.sitesDir, options.cssDir!]) expect(edge.volumeMounts.some((m: Y) => dir.startsWith(`${m.mountPath}/`) && m.readOnly), dir).toBe(true);
    // The load balancer for custom domains reaches the edge's plain-HTTP (ACME HTTP-01) and TLS ports.
    const service = find('Service', 'astro-multi-tenant-edge');
    expect(matches(service.spec.selector, deployment.spec.template.metadata.labels)).toBe(true);
    const ports = Object.fromEntries(edge.ports.map((p: Y) => [p.name, p.containerPort]));
    const byPort = Object.fromEntries(service.spec.ports.map((p: Y) => [p.port, ports[p.targetPort]]));
    expect(byPort).toEqual({ 80: Number(options.listen), 443: Number(options.tlsListen) });
    expect(options.tlsPublicPort).toBe('');
    expect(edge.readinessProbe.httpGet).toEqual({ path: '/_platform/healthz', port: 'edge-http' });
    // nginx -t accepts what the pod renders (paths moved under a temp folder, upstream on loopback).
    const dir = await mkdtemp(join(tmpdir(), 'amt-k8s-edge-'));
    try {
      const local = edgeOptionsFromEnv({ ...initEnv, NGINX_OUT: join(dir, 'out'), NGINX_SITES_DIR: join(ROOT, 'sites'), NGINX_CSS_DIR: join(ROOT, 'sites'), CERTS_DIR: join(dir, 'certs'), NGINX_ACCESS_LOG: join(dir, 'access.log') }, ROOT);
      const conf = await writeEdgeConfig(local);
      const output = await new Promise<string>((done) => {
        const child = spawn(NGINX, ['-t', '-c', conf, '-p', local.outDir], { stdio: ['ignore', 'ignore', 'pipe'] });
        let text = '';
        child.stderr!.on('data', (c: Buffer) => (text += c.toString()));
        child.on('close', () => done(text));
      });
      expect(output).toContain('test is successful');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('points REDIS_URL at the Redis Service, whose StatefulSet runs with appendonly on a persistent volume', () => {
    const url = new URL(cm.REDIS_URL!);
    const service = find('Service', url.hostname);
    expect(service.spec.ports.map((p: Y) => String(p.port))).toContain(url.port);
    const redis = find('StatefulSet', url.hostname);
    expect(matches(service.spec.selector, redis.spec.template.metadata.labels)).toBe(true);
    const container = redis.spec.template.spec.containers[0];
    expect([...(container.command ?? []), ...(container.args ?? [])].join(' ')).toMatch(/--appendonly yes/);
    expect(container.volumeMounts).toEqual(expect.arrayContaining([{ name: 'data', mountPath: '/data' }]));
    expect(redis.spec.volumeClaimTemplates[0].metadata.name).toBe('data');
    // Only the app's pods may connect.
    const policy = find('NetworkPolicy', url.hostname);
    expect(matches(policy.spec.podSelector.matchLabels, redis.spec.template.metadata.labels)).toBe(true);
    expect(matches(policy.spec.ingress[0].from[0].podSelector.matchLabels, deployment.spec.template.metadata.labels)).toBe(true);
  });

  it('blocks /_platform/metrics and /_platform/status (also status.json) at the Ingress, on every host it serves', async () => {
    const operatorOnly = (await platformPaths()).filter((p) => !/\/(healthz|readyz)$/.test(p));
    expect(operatorOnly).toEqual(expect.arrayContaining(['/_platform/metrics', '/_platform/status', '/_platform/status.json']));
    const ingresses = resources.filter((r) => r.kind === 'Ingress');
    const deny = ingresses.filter((i) => i.metadata.annotations?.['nginx.ingress.kubernetes.io/denylist-source-range'] === '0.0.0.0/0,::/0');
    expect(deny.length).toBe(1);
    const covered = (host: string, path: string) =>
      deny[0].spec.rules.some(
        (r: Y) => r.host === host && r.http.paths.some((p: Y) => p.path === path || (p.pathType === 'Prefix' && path.startsWith(`${p.path}/`))),
      );
    const hosts = ingresses.filter((i) => i !== deny[0]).flatMap((i) => i.spec.rules.map((r: Y) => r.host));
    expect(hosts.length).toBeGreaterThan(0);
    for (const host of hosts) for (const path of operatorOnly) expect(covered(host, path), `${host}${path}`).toBe(true);
    // Health checks stay reachable.
    for (const rule of deny[0].spec.rules) for (const p of rule.http.paths) expect(p.path).not.toMatch(/healthz|readyz/);
  });

  it('serves the wildcard *.PLATFORM_DOMAIN host through ingress-nginx with TLS and the edge’s request-body limit', async () => {
    const ingress = find('Ingress', 'astro-multi-tenant');
    expect(ingress.spec.ingressClassName).toBe('nginx');
    expect(ingress.spec.rules.map((r: Y) => r.host)).toContain(`*.${cm.PLATFORM_DOMAIN}`);
    expect(ingress.spec.tls[0].hosts).toContain(`*.${cm.PLATFORM_DOMAIN}`);
    expect(ingress.spec.tls[0].secretName).toBeTruthy();
    const bodyLimit = /client_max_body_size (\S+);/.exec(renderNginxConfig(edgeOptionsFromEnv({}, ROOT))['nginx.conf']!)![1];
    expect(ingress.metadata.annotations['nginx.ingress.kubernetes.io/proxy-body-size']).toBe(bodyLimit);
  });

  it('scales on CPU with autoscaling/v2, and the PodDisruptionBudget leaves room below the minimum replica count', () => {
    const hpa = find('HorizontalPodAutoscaler');
    expect(hpa.apiVersion).toBe('autoscaling/v2');
    expect(hpa.spec.scaleTargetRef).toEqual({ apiVersion: 'apps/v1', kind: 'Deployment', name: deployment.metadata.name });
    expect(hpa.spec.metrics[0].resource.name).toBe('cpu');
    expect(app.resources.requests.cpu).toBeTruthy(); // utilisation is relative to the request
    const pdb = find('PodDisruptionBudget');
    expect(pdb.apiVersion).toBe('policy/v1');
    expect(pdb.spec.minAvailable).toBeLessThan(hpa.spec.minReplicas);
    expect(matches(pdb.spec.selector.matchLabels, deployment.spec.template.metadata.labels)).toBe(true);
  });

  it('runs a fixed, small number of PM2 workers per pod, which fit the memory limit together', () => {
    expect(cm.INSTANCES).toMatch(/^\d+$/);
    const instances = Number(cm.INSTANCES);
    expect(instances).toBeGreaterThanOrEqual(1);
    expect(instances).toBeLessThanOrEqual(4);
    expect(instances * sizeBytes(cm.MAX_MEMORY_RESTART!)).toBeLessThan(sizeBytes(app.resources.limits.memory));
  });

  it('mounts the shared content volume read-only where SITES_DIR and CSS_DIR point, and lets only the seed and the CSS job write to it', () => {
    const pvc = find('PersistentVolumeClaim');
    expect(pvc.spec.accessModes).toEqual(['ReadWriteMany']);
    const volume = pod.volumes.find((v: Y) => v.persistentVolumeClaim?.claimName === pvc.metadata.name);
    const mount = app.volumeMounts.find((m: Y) => m.name === volume.name);
    expect(mount.readOnly).toBe(true);
    for (const dir of [cm.SITES_DIR!, cm.CSS_DIR!]) expect(dir.startsWith(`${mount.mountPath}/`), dir).toBe(true);
    const seed = pod.initContainers[0];
    expect(seed.volumeMounts[0]).toEqual({ name: volume.name, mountPath: mount.mountPath });
    expect(seed.command.join(' ')).toContain('_base/manifest.json');
    const job = cssJob.spec.template.spec;
    expect(job.volumes[0].persistentVolumeClaim.claimName).toBe(pvc.metadata.name);
    expect(job.containers[0].volumeMounts[0]).toEqual({ name: job.volumes[0].name, mountPath: mount.mountPath });
    expect(job.containers[0].command).toEqual(['node', 'astro-multi-tenant/server/cli/css.ts']);
  });

  it('runs the pods as the image’s non-root user without privilege escalation', () => {
    expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 1000 });
    for (const c of [...pod.initContainers, ...pod.containers]) expect(c.securityContext).toMatchObject({ allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } });
  });
});

// ---------------------------------------------------------------------------------------------
// Docs

describe('deployment docs', async () => {
  const edgeDoc = await text('docs/edge.md');
  const deployDoc = await text('docs/deploy.md');

  it('docs/edge.md lists every variable the nginx generator reads', async () => {
    const render = await text('nginx/render.ts');
    const fn = render.slice(render.indexOf('export function edgeOptionsFromEnv'));
    const names = new Set([...fn.matchAll(/\benv\.([A-Z][A-Z0-9_]*)/g)].map((m) => m[1]!));
    for (const m of (await text('astro-multi-tenant/server/cli/edge.ts')).matchAll(/process\.env\.([A-Z][A-Z0-9_]*)/g)) names.add(m[1]!);
    expect(names.size).toBeGreaterThan(10);
    for (const name of names) expect(edgeDoc, name).toContain(`\`${name}\``);
    for (const command of ['npm run nginx:config', 'npm run start:edge', 'nginx -s reload', '--deploy-hook', 'X-Accel-Expires', 'EDGE_CACHE_S']) expect(edgeDoc).toContain(command);
  });

  it('docs/deploy.md shows the compose nginx-config values exactly as docker-compose.yml sets them', async () => {
    const compose = await yamlDoc('docker/docker-compose.yml');
    const env = compose.services['nginx-config'].environment as Record<string, string>;
    for (const [name, value] of Object.entries(env)) {
      const shown = value === '' ? `${name}=''` : `${name}=${value}`;
      expect(deployDoc, shown).toContain(shown);
    }
    expect(deployDoc).toContain('npm run nginx:config');
    expect(deployDoc).toContain('CONTENT_CHECK_MS');
  });

  it('README links both deployment guides', async () => {
    const readme = await text('README.md');
    expect(readme).toContain('(docs/deploy.md)');
    expect(readme).toContain('(docs/edge.md)');
  });
});
