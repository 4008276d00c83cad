import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRenderedPagesFolder, renderedPageKey, serverIdentity, SETTINGS_OUTSIDE_PAGES } from '../../astro-multi-tenant/server/render/rendered-pages-folder.ts';
import { loadConfig } from '../../astro-multi-tenant/server/config.ts';
import { createCacheFolder } from '../../astro-multi-tenant/server/sites/cache-folder.ts';

let root: string;
let code: string;
let lock: string;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'amt-rendered-unit-'));
  code = join(root, 'server');
  await mkdir(join(code, 'render'), { recursive: true });
  await writeFile(join(code, 'main.ts'), 'export {};\n');
  await writeFile(join(code, 'render', 'view.ts'), 'export const a = 1;\n');
  lock = join(root, 'package-lock.json');
  await writeFile(lock, '{"lockfileVersion":3}');
});

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('what names a rendered page on disk', () => {
  const config = (env: Record<string, string> = {}) => loadConfig({ SITES_DIR: '/srv/sites', ...env }, root);

  it('is the same for a server placed elsewhere (port, log level, cache sizes): those never reach a page', () => {
    const base = serverIdentity(code, lock, config());
    expect(serverIdentity(code, lock, config({ PORT: '8123', LOG_LEVEL: 'debug', RENDER_CACHE_MB: '9', CONTENT_CHECK_MS: '900', CONTENT_IO: 'thread-pool', MARKDOWN_CACHE_DIR: '/elsewhere' }))).toBe(base);
    // Nor does rotating the session keys or the admin token (never in an anonymous page).
    expect(serverIdentity(code, lock, config({ SESSION_KEYS: 'k1:' + 'a'.repeat(43), ADMIN_TOKEN: 'b'.repeat(32) }))).toBe(serverIdentity(code, lock, config({ SESSION_KEYS: 'k2:' + 'c'.repeat(43), ADMIN_TOKEN: 'd'.repeat(32) })));
    for (const name of SETTINGS_OUTSIDE_PAGES) expect(Object.keys(config())).toContain(name);
  });

  it.each([
    ['another platform domain', { PLATFORM_DOMAIN: 'other.test' }],
    ['another sites folder', { SITES_DIR: '/srv/other' }],
    ['another trusted proxy list', { TRUSTED_PROXIES: '10.0.0.1' }],
    ['another edge cache time', { EDGE_CACHE_S: '7' }],
  ])('changes with %s', (_what, env) => {
    expect(serverIdentity(code, lock, config(env))).not.toBe(serverIdentity(code, lock, config()));
  });

  it('changes with any file of the server\'s code and with the installed packages', async () => {
    const before = serverIdentity(code, lock, config());
    await writeFile(join(code, 'render', 'view.ts'), 'export const a = 2;\n');
    const edited = serverIdentity(code, lock, config());
    expect(edited).not.toBe(before);
    await writeFile(lock, '{"lockfileVersion":3,"packages":{}}');
    expect(serverIdentity(code, lock, config())).not.toBe(edited);
  });

  it('is a different file for another page, another ETag or another server', () => {
    const key = renderedPageKey('id', 'site\0https://a.test\0/', 'W/"x"');
    expect(key).toMatch(/^[a-f0-9]{64}$/);
    expect(renderedPageKey('id', 'site\0https://a.test\0/about', 'W/"x"')).not.toBe(key);
    expect(renderedPageKey('id', 'site\0https://a.test\0/', 'W/"y"')).not.toBe(key);
    expect(renderedPageKey('other', 'site\0https://a.test\0/', 'W/"x"')).not.toBe(key);
  });
});

describe('the rendered-pages folder', () => {
  it('gives back the bytes written under the same key and ETag, and nothing under another ETag', async () => {
    const dir = join(root, 'pages');
    const folder = createRenderedPagesFolder({ dir, maxBytes: 1 << 20, identity: 'test' });
    const body = Buffer.from('<!DOCTYPE html><p>héllo</p>');
    expect(await folder.read('k', 'W/"1"')).toBeUndefined();
    folder.write('k', 'W/"1"', body);
    await folder.settle();
    expect((await folder.read('k', 'W/"1"'))?.equals(body)).toBe(true);
    expect(await folder.read('k', 'W/"2"')).toBeUndefined();
    await expect(createRenderedPagesFolder({ dir, maxBytes: 1 << 20, identity: 'another server' }).read('k', 'W/"1"')).resolves.toBeUndefined();
    expect(folder.stats).toMatchObject({ hits: 1, misses: 2, writes: 1, writeErrors: 0 });
  });
});

describe('bounding the folder', () => {
  it('scans and prunes a folder of 1,200 pages a batch at a time, with the event loop turning in between, and ends under its bound', async () => {
    const dir = join(root, 'bounded');
    const names = Array.from({ length: 1200 }, (_, i) => renderedPageKey('old', `k${i}`, 'W/"e"'));
    for (const key of names) {
      await mkdir(join(dir, key.slice(0, 2)), { recursive: true, mode: 0o700 });
      await writeFile(join(dir, key.slice(0, 2), `${key}.html`), 'x'.repeat(1024));
    }
    const cacheFolder = createCacheFolder({ dir, maxBytes: 600 * 1024, extension: '.html' });
    const folder = createRenderedPagesFolder({ dir, maxBytes: 600 * 1024, identity: 'test', folder: cacheFolder });
    // The folder's checks (thread-pool calls) first, so that only the scan and prune remain.
    expect(await cacheFolder.ensureShard(renderedPageKey('test', 'new', 'W/"n"'))).toBe(true);
    let turns = 0;
    const ticker = setInterval(() => turns++, 0);
    try {
      folder.write('new', 'W/"n"', Buffer.from('y'.repeat(1024)));
      await folder.settle();
    } finally {
      clearInterval(ticker);
    }
    expect(folder.stats.pruned).toBeGreaterThan(600);
    // The scan (1,200 stats) and the prune (600+ removals) let timers run: never one long block.
    expect(turns).toBeGreaterThan(3);
    expect((await folder.read('new', 'W/"n"'))?.toString()).toBe('y'.repeat(1024));
  });
});

describe('the runtime in the identity', () => {
  it('changes with the time zone pages format dates in', async () => {
    const { execFileSync } = await import('node:child_process');
    const script = `import('${new URL('../../astro-multi-tenant/server/render/rendered-pages-folder.ts', import.meta.url).href}').then((m) => console.log(m.serverIdentity(${JSON.stringify(code)}, ${JSON.stringify(lock)}, {})))`;
    const run = (tz: string) => execFileSync(process.execPath, ['-e', script], { env: { ...process.env, TZ: tz }, encoding: 'utf8' }).trim();
    expect(run('UTC')).toMatch(/^[a-f0-9]{32}$/);
    expect(run('UTC')).toBe(run('UTC'));
    expect(run('Pacific/Auckland')).not.toBe(run('UTC'));
  });
});

describe('the build and the installed packages in the identity', () => {
  it('changes with a rebuilt chunk of the same size and time (a build with pinned timestamps), and with what npm installed', async () => {
    const { utimes, stat } = await import('node:fs/promises');
    const dist = join(root, 'dist-server');
    await mkdir(join(dist, 'chunks'), { recursive: true });
    await writeFile(join(dist, 'entry.mjs'), 'export * from "./chunks/a.mjs";\n');
    await writeFile(join(dist, 'chunks', 'a.mjs'), 'export const footer = "A";\n');
    const installed = join(root, 'installed-lock.json');
    await writeFile(installed, '{"packages":{"node_modules/x":{"version":"1.0.0"}}}');
    const config = loadConfig({ SITES_DIR: '/srv/sites' }, root);
    const before = serverIdentity([code, dist], [lock, installed], config);
    const chunk = join(dist, 'chunks', 'a.mjs');
    const { atime, mtime } = await stat(chunk);
    await writeFile(chunk, 'export const footer = "B";\n');
    await utimes(chunk, atime, mtime);
    const rebuilt = serverIdentity([code, dist], [lock, installed], config);
    expect(rebuilt).not.toBe(before);
    await writeFile(installed, '{"packages":{"node_modules/x":{"version":"1.0.1"}}}');
    expect(serverIdentity([code, dist], [lock, installed], config)).not.toBe(rebuilt);
  });
});

describe('reading back only what this server wrote', () => {
  it('never serves a page file others can write, or a link planted at its name', async () => {
    const { chmod, symlink, unlink } = await import('node:fs/promises');
    const dir = join(root, 'planted');
    const folder = createRenderedPagesFolder({ dir, maxBytes: 1 << 20, identity: 'test' });
    folder.write('k', 'W/"1"', Buffer.from('<p>ours</p>'));
    await folder.settle();
    const file = join(dir, renderedPageKey('test', 'k', 'W/"1"').slice(0, 2), `${renderedPageKey('test', 'k', 'W/"1"')}.html`);
    expect((await folder.read('k', 'W/"1"'))?.toString()).toBe('<p>ours</p>');
    await chmod(file, 0o666);
    expect(await folder.read('k', 'W/"1"')).toBeUndefined();
    await unlink(file);
    const elsewhere = join(root, 'planted-page.html');
    await writeFile(elsewhere, '<p>planted</p>', { mode: 0o600 });
    await symlink(elsewhere, file);
    expect(await folder.read('k', 'W/"1"')).toBeUndefined();
  });
});
