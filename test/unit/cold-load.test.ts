import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import * as fs from 'node:fs/promises';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createContentCache, type CacheSource } from '../../astro-multi-tenant/server/sites/content-cache.ts';
import { createSiteLoader, cssManifestPath } from '../../astro-multi-tenant/server/sites/loader.ts';
import { createFolderSiteSource, type SourceFs } from '../../astro-multi-tenant/server/sites/site-source.ts';
import { measureContent } from '../../astro-multi-tenant/server/plans/content-limits.ts';
import { readFolderEntry } from '../../astro-multi-tenant/server/sites/contained-file.ts';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

/**
 * Issue 12: a cold site costs as few file-system round trips as it can without giving up any
 * check. These tests pin what a cold load asks of the disk, and that edits are still seen.
 */

let root: string;
let sitesDir: string;
let cssDir: string;

beforeEach(async () => {
  root = await fs.realpath(await mkdtemp(join(tmpdir(), 'amt-cold-')));
  sitesDir = join(root, 'sites');
  cssDir = join(root, 'css');
  await mkdir(sitesDir);
  await mkdir(cssDir);
});

afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

async function writeSite(id: string, name = id) {
  await mkdir(join(sitesDir, id), { recursive: true });
  await writeFile(join(sitesDir, id, 'site.json'), JSON.stringify({ name, domains: [`${id}.example`] }));
}

/** The real file system under a folder source, counting its calls by kind. */
function countingFs() {
  const calls = { stat: 0, readdir: 0, realpath: 0 };
  const counted = (name: keyof typeof calls) => (...args: unknown[]) => {
    calls[name]++;
    return (fs[name] as (...a: unknown[]) => unknown)(...args);
  };
  return { fs: { stat: counted('stat'), readdir: counted('readdir'), realpath: counted('realpath') } as SourceFs, calls };
}

function loaderWith(checkIntervalMs: number) {
  const counting = countingFs();
  const cache = createContentCache({ maxEntries: 100, maxBytes: 1 << 20, checkIntervalMs });
  const loadSite = createSiteLoader({ sitesDir, cssDir, cache, source: createFolderSiteSource(sitesDir, counting.fs) });
  return { loadSite, calls: counting.calls, cache };
}

describe('content cache: a cold key is loaded without a fingerprint first', () => {
  it('uses loadCold for a key it does not hold, and fingerprint + load once it holds it', async () => {
    const cache = createContentCache({ maxEntries: 10, maxBytes: 1000, checkIntervalMs: 0 });
    const asked: string[] = [];
    let version = 'v1';
    const source: CacheSource<string> = {
      fingerprint: async () => (asked.push('fingerprint'), version),
      load: async (fp) => (asked.push(`load ${fp}`), { value: `value ${fp}`, bytes: 1 }),
      loadCold: async () => (asked.push('loadCold'), { value: `value ${version}`, bytes: 1, fingerprint: version }),
    };
    expect(await cache.get('k', source)).toBe('value v1');
    expect(asked).toEqual(['loadCold']);
    // Held: revalidated by its fingerprint (the one loadCold gave), not loaded again.
    expect(await cache.get('k', source)).toBe('value v1');
    expect(asked).toEqual(['loadCold', 'fingerprint']);
    version = 'v2';
    expect(await cache.get('k', source)).toBe('value v2');
    expect(asked).toEqual(['loadCold', 'fingerprint', 'fingerprint', 'load v2']);
  });

  it('keeps nothing when loadCold says the thing does not exist', async () => {
    const cache = createContentCache({ maxEntries: 10, maxBytes: 1000, checkIntervalMs: 60_000 });
    let calls = 0;
    const gone: CacheSource<string> = { fingerprint: async () => 'x', load: async () => ({ value: 'never', bytes: 1 }), loadCold: async () => (calls++, null) };
    expect(await cache.get('k', gone)).toBeNull();
    expect(await cache.get('k', gone)).toBeNull();
    expect(calls).toBe(2);
    expect(cache.size).toBe(0);
  });
});

describe('site loader: a cold site is read without a stat of site.json first', () => {
  it('makes no stat of site.json and no realpath of the folder for a site it does not hold', async () => {
    await writeSite('alpha');
    const { loadSite, calls } = loaderWith(60_000);
    const state = await loadSite('alpha');
    expect(state).toMatchObject({ ok: true, site: { id: 'alpha', dir: join(sitesDir, 'alpha'), config: { name: 'alpha' } } });
    // Before: a stat of site.json (the fingerprint), then two realpaths of the folder (the read's
    // and the site's dir). Now the read's descriptor stat is the version, and where the
    // descriptor is (site.json being a plain entry of the folder) tells the folder's real path.
    expect(calls).toEqual({ stat: 0, readdir: 0, realpath: 0 });
  });

  it('resolves a symlinked site folder to its target, and reads a site.json linked inside the folder the careful way', async () => {
    await mkdir(join(root, 'elsewhere', 'beta'), { recursive: true });
    await writeFile(join(root, 'elsewhere', 'beta', 'site.json'), JSON.stringify({ name: 'beta' }));
    await symlink(join(root, 'elsewhere', 'beta'), join(sitesDir, 'beta'));
    await mkdir(join(sitesDir, 'gamma', 'config'), { recursive: true });
    await writeFile(join(sitesDir, 'gamma', 'config', 'real.json'), JSON.stringify({ name: 'gamma' }));
    await symlink('config/real.json', join(sitesDir, 'gamma', 'site.json'));
    const { loadSite, calls } = loaderWith(60_000);
    expect(await loadSite('beta')).toMatchObject({ ok: true, site: { dir: join(root, 'elsewhere', 'beta'), config: { name: 'beta' } } });
    expect(calls.realpath).toBe(0);
    // The folder is gamma itself, not config/ where the link leads: its pages stay servable.
    expect(await loadSite('gamma')).toMatchObject({ ok: true, site: { dir: join(sitesDir, 'gamma'), config: { name: 'gamma' } } });
    expect(calls.realpath).toBe(1);
  });

  it('gives the site the same version a stat of site.json gives, so the next check does not reload it', async () => {
    await writeSite('alpha');
    const { loadSite, calls, cache } = loaderWith(0);
    const first = await loadSite('alpha');
    const again = await loadSite('alpha');
    expect(again).toBe(first);
    expect(calls.stat).toBe(1);
    expect(cache.stats).toMatchObject({ misses: 1, revalidations: 1, reloads: 0 });
    if (!first?.ok) throw new Error('site did not load');
    expect(first.site.version).toBe(`${(await fs.stat(join(sitesDir, 'alpha', 'site.json'))).ino}:${(await fs.stat(join(sitesDir, 'alpha', 'site.json'))).size}:${(await fs.stat(join(sitesDir, 'alpha', 'site.json'))).mtimeMs}|-`);
  });

  it('still sees an edit of site.json and a newly built CSS manifest at the next check', async () => {
    await writeSite('alpha', 'Before');
    const { loadSite } = loaderWith(0);
    expect(await loadSite('alpha')).toMatchObject({ ok: true, site: { config: { name: 'Before' }, cssProblem: 'missing' } });
    await writeFile(join(sitesDir, 'alpha', 'site.json'), JSON.stringify({ name: 'After, and longer' }));
    await mkdir(join(cssDir, 'alpha'));
    await writeFile(join(cssDir, 'alpha', 'site.0123abcd.css'), 'body{}');
    await writeFile(cssManifestPath(cssDir, 'alpha'), JSON.stringify({ file: 'site.0123abcd.css' }));
    expect(await loadSite('alpha')).toMatchObject({ ok: true, site: { config: { name: 'After, and longer' }, cssFile: 'site.0123abcd.css' } });
  });

  it('reads a built CSS manifest once, through one descriptor, and keeps its stat as part of the version', async () => {
    await writeSite('alpha');
    await mkdir(join(cssDir, 'alpha'));
    await writeFile(join(cssDir, 'alpha', 'site.0123abcd.css'), 'body{}');
    await writeFile(cssManifestPath(cssDir, 'alpha'), JSON.stringify({ file: 'site.0123abcd.css' }));
    const { loadSite, cache } = loaderWith(0);
    const first = await loadSite('alpha');
    expect(first).toMatchObject({ ok: true, site: { cssFile: 'site.0123abcd.css', cssProblem: undefined } });
    const m = await fs.stat(cssManifestPath(cssDir, 'alpha'));
    if (!first?.ok) throw new Error('site did not load');
    expect(first.site.version.endsWith(`|${m.ino}:${m.size}:${m.mtimeMs}`)).toBe(true);
    expect(await loadSite('alpha')).toBe(first);
    expect(cache.stats).toMatchObject({ misses: 1, revalidations: 1, reloads: 0 });
    // A manifest naming a stylesheet that is not there: the base CSS, flagged stale.
    await writeSite('beta');
    await mkdir(join(cssDir, 'beta'));
    await writeFile(cssManifestPath(cssDir, 'beta'), JSON.stringify({ file: 'site.ffffffff.css' }));
    expect(await loadSite('beta')).toMatchObject({ ok: true, site: { cssFile: undefined, cssProblem: 'stale' } });
  });

  it('answers null for a folder without site.json, and refuses a site.json linking out of its folder', async () => {
    await mkdir(join(sitesDir, 'bare'));
    await mkdir(join(root, 'elsewhere'));
    await writeFile(join(root, 'elsewhere', 'secret.json'), JSON.stringify({ name: 'SECRET' }));
    await mkdir(join(sitesDir, 'linker'));
    await symlink(join(root, 'elsewhere', 'secret.json'), join(sitesDir, 'linker', 'site.json'));
    const { loadSite } = loaderWith(60_000);
    expect(await loadSite('bare')).toBeNull();
    const linker = await loadSite('linker');
    expect(linker).toMatchObject({ ok: false, id: 'linker' });
    expect(JSON.stringify(linker)).not.toContain('SECRET');
  });
});

describe('content walk without page sizes (the content gate)', () => {
  it('counts and orders pages from the listings alone, like the walk that stats every page', async () => {
    const dir = join(root, 'site');
    await mkdir(join(dir, 'pages', 'blog'), { recursive: true });
    await mkdir(join(dir, 'public'));
    for (const name of ['index.md', 'about.md', 'blog/a.md', 'blog/b.md', '.draft.md', 'notes.txt']) await writeFile(join(dir, 'pages', name), 'x'.repeat(10));
    await symlink(join(dir, 'pages', 'about.md'), join(dir, 'pages', 'linked.md'));
    await writeFile(join(dir, 'public', 'logo.png'), Buffer.alloc(300));
    const sized = await measureContent(dir, 5, 2);
    const listed = await measureContent(dir, 5, 2, { pageSizes: false });
    expect({ pages: listed.pages, lastPageWithin: listed.lastPageWithin, publicBytes: listed.publicBytes }).toEqual({ pages: sized.pages, lastPageWithin: sized.lastPageWithin, publicBytes: sized.publicBytes });
    expect(listed).toMatchObject({ pages: 4, lastPageWithin: 'blog/a.md', publicBytes: 300, largestPage: undefined, pagesOverLimit: [] });
    expect(sized.pagesOverLimit).toHaveLength(4);
  });
});

describe('readFolderEntry: a plain entry of a folder, and where the folder really is', () => {
  it('reads a plain file and tells the folder\'s real path, also through a linked folder', async () => {
    await mkdir(join(root, 'real'));
    await writeFile(join(root, 'real', 'site.json'), 'hello');
    await symlink(join(root, 'real'), join(root, 'via'));
    expect(await readFolderEntry(join(root, 'via'), 'site.json', { maxBytes: 100 })).toMatchObject({ kind: 'text', text: 'hello', realDir: join(root, 'real') });
  });

  it('hands a symlinked entry back to the careful path, unread, wherever it leads', async () => {
    await mkdir(join(root, 'dir'));
    await writeFile(join(root, 'secret'), 'SECRET');
    await symlink(join(root, 'secret'), join(root, 'dir', 'out.json'));
    await writeFile(join(root, 'dir', 'in.json'), 'inside');
    await symlink('in.json', join(root, 'dir', 'link-in.json'));
    expect(await readFolderEntry(join(root, 'dir'), 'out.json', { maxBytes: 100 })).toEqual({ kind: 'link' });
    expect(await readFolderEntry(join(root, 'dir'), 'link-in.json', { maxBytes: 100 })).toEqual({ kind: 'link' });
  });

  it('answers missing, and refuses a FIFO and a file over the limit, unread', async () => {
    await mkdir(join(root, 'dir'));
    await promisify(execFile)('mkfifo', [join(root, 'dir', 'pipe.json')]);
    await writeFile(join(root, 'dir', 'big.json'), 'x'.repeat(101));
    expect(await readFolderEntry(join(root, 'dir'), 'none.json', { maxBytes: 100 })).toEqual({ kind: 'missing' });
    expect(await readFolderEntry(join(root, 'no-folder'), 'site.json', { maxBytes: 100 })).toEqual({ kind: 'missing' });
    expect(await readFolderEntry(join(root, 'dir'), 'pipe.json', { maxBytes: 100 })).toEqual({ kind: 'refused', reason: 'not-a-file' });
    expect(await readFolderEntry(join(root, 'dir'), 'big.json', { maxBytes: 100 })).toEqual({ kind: 'refused', reason: 'too-large', size: 101, limit: 100 });
  });
});
