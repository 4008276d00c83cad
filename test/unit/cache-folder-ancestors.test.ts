import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { chmod, mkdir, mkdtemp, realpath, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import * as runtime from 'astro/compiler-runtime';
import { prepareCacheFolder } from '../../astro-multi-tenant/server/sites/cache-folder.ts';
import { compileCacheKey, componentCompilerId, openCompileCache } from '../../astro-multi-tenant/server/components/compile-cache.ts';
import { createComponentLoader } from '../../astro-multi-tenant/server/components/component-loader.ts';
import { siteComponentFile } from '../../astro-multi-tenant/server/components/component-file.ts';
import { createContentCache } from '../../astro-multi-tenant/server/sites/content-cache.ts';

/**
 * A cache folder holds what is served or run as is, so it must be the server user's alone, and so
 * must every folder above it: whoever can rename entries in a parent (the default parent is
 * `<tmp>/astro-multi-tenant-<uid>`, a name any local user can make first) can move the checked
 * folder aside and put their own in its place after the check.
 */
let root: string;
beforeEach(async () => {
  root = await realpath(await mkdtemp(join(tmpdir(), 'amt-cache-ancestors-')));
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('a cache folder and the folders above it', () => {
  it('refuses a folder whose parent others can write to (not sticky), naming the parent', async () => {
    const parent = join(root, 'astro-multi-tenant-1000');
    await mkdir(parent);
    await chmod(parent, 0o777);
    expect(await prepareCacheFolder(join(parent, 'components'))).toEqual({ ok: false, reason: `${parent} (above it) is writable by group or others and not sticky (mode 777)` });
  });

  it('accepts a parent that is writable by all but sticky, as the system temp folder is', async () => {
    const parent = join(root, 'tmp');
    await mkdir(parent);
    await chmod(parent, 0o1777);
    expect(await prepareCacheFolder(join(parent, 'mine', 'components'))).toEqual({ ok: true });
  });

  it('never runs a compiled component planted by whoever can write the cache folder’s parent', async () => {
    const parent = join(root, 'astro-multi-tenant-1000');
    await mkdir(parent);
    await chmod(parent, 0o777);
    const dir = join(parent, 'components');
    const compilerId = componentCompilerId();
    const cache = await openCompileCache({ dir, maxBytes: 1 << 20, compilerId });
    // The other user, after the server checked the folder: moves it aside and makes their own,
    // holding a record for the key of a component whose text they know.
    const site = { id: 'acme', dir: join(root, 'acme') };
    const source = '<p>public sample component</p>\n';
    await mkdir(join(site.dir, 'components'), { recursive: true });
    await writeFile(join(site.dir, 'components/Sample.astro'), source);
    await rename(dir, `${dir}.moved`);
    const key = compileCacheKey(compilerId, siteComponentFile('acme', 'Sample'), source);
    const planted = join(dir, key.slice(0, 2), `${key}.json`);
    await mkdir(dirname(planted), { recursive: true });
    const body = '"use strict";\nglobalThis.plantedCodeRan = true;\nreturn { default: function Planted() {} };\n';
    await writeFile(planted, JSON.stringify({ key, compiled: { body, scope: 'x', css: [], imports: [] } }));

    const loader = createComponentLoader({
      cache: createContentCache({ maxEntries: 100, maxBytes: 1 << 24, checkIntervalMs: 0 }),
      sharedDir: resolve(import.meta.dirname, '../../shared-components'),
      ...(cache ? { compile: cache.compile } : {}),
    });
    const loaded = await loader.component(site, 'Sample');
    loaded!.factory(runtime);
    expect((globalThis as { plantedCodeRan?: boolean }).plantedCodeRan).toBeUndefined();
  });
});
