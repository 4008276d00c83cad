import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRenderedPagesFolder, renderedPageKey, serverIdentity, SETTINGS_OUTSIDE_PAGES } from '../../astro-multi-tenant/server/render/rendered-pages-folder.ts';
import { loadConfig } from '../../astro-multi-tenant/server/config.ts';

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
