import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createHook } from 'node:async_hooks';
import { constants } from 'node:fs';
import { mkdir, mkdtemp, realpath, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { contentFs, useContentIo, type ContentIo } from '../../astro-multi-tenant/server/sites/content-fs.ts';
import { readContainedText } from '../../astro-multi-tenant/server/sites/contained-file.ts';
import { createFolderSiteSource } from '../../astro-multi-tenant/server/sites/site-source.ts';
import { createSiteLoader } from '../../astro-multi-tenant/server/sites/loader.ts';
import { createPageLoader } from '../../astro-multi-tenant/server/sites/pages.ts';
import { createContentCache } from '../../astro-multi-tenant/server/sites/content-cache.ts';
import { loadConfig } from '../../astro-multi-tenant/server/config.ts';

let root: string;
let sitesDir: string;

beforeAll(async () => {
  root = await realpath(await mkdtemp(join(tmpdir(), 'amt-content-fs-')));
  sitesDir = join(root, 'sites');
  for (const id of ['alpha', 'beta']) {
    await mkdir(join(sitesDir, id, 'pages'), { recursive: true });
    await writeFile(join(sitesDir, id, 'site.json'), JSON.stringify({ name: `Site ${id}`, domains: [`${id}.test`] }));
    await writeFile(join(sitesDir, id, 'pages', 'index.md'), `---\ntitle: Home of ${id}\n---\n\nHello from **${id}**.\n`);
  }
});

afterAll(async () => {
  useContentIo('sync');
  await rm(root, { recursive: true, force: true });
});

afterEach(() => useContentIo('sync'));

/** Thread-pool file requests (libuv fs requests) started while `work` runs. */
async function threadPoolFileRequests(work: () => Promise<unknown>): Promise<number> {
  let count = 0;
  const hook = createHook({
    init(_id, type) {
      if (type === 'FSREQPROMISE' || type === 'FSREQCALLBACK') count++;
    },
  });
  hook.enable();
  try {
    await work();
  } finally {
    hook.disable();
  }
  return count;
}

/** A cold site and its home page, as a request for a site the process has not seen loads them. */
async function coldLoad(id: string) {
  const cache = createContentCache({ maxEntries: 100, maxBytes: 1 << 20, checkIntervalMs: 60_000 });
  const loadSite = createSiteLoader({ sitesDir, cssDir: join(root, 'css'), cache, source: createFolderSiteSource(sitesDir) });
  const state = await loadSite(id);
  if (!state?.ok) throw new Error(`site ${id} did not load: ${JSON.stringify(state)}`);
  const page = await createPageLoader(cache, { renderMarkdown: async (markdown) => `<p>${markdown.trim()}</p>` })(state.site, []);
  return { site: state.site, page };
}

describe('content file calls (CONTENT_IO)', () => {
  it.each(['sync', 'thread-pool'] as const)('loads site B\'s config and page, never site A\'s, with %s calls', async (mode: ContentIo) => {
    useContentIo(mode);
    expect(contentFs.mode).toBe(mode);
    const { site, page } = await coldLoad('beta');
    expect(site.config.name).toBe('Site beta');
    expect(site.dir).toBe(join(sitesDir, 'beta'));
    expect(page).toMatchObject({ kind: 'page', page: { frontmatter: { title: 'Home of beta' } } });
  });

  it('makes a cold site\'s file calls on the event loop with sync: no thread-pool round trip at all', async () => {
    useContentIo('sync');
    expect(await threadPoolFileRequests(() => coldLoad('alpha'))).toBe(0);
  });

  it('hands every call to the thread pool with thread-pool (content on a network file system)', async () => {
    useContentIo('thread-pool');
    // At least site.json and the page (open, fstat, read each) and the CSS manifest's failed open.
    expect(await threadPoolFileRequests(() => coldLoad('alpha'))).toBeGreaterThanOrEqual(7);
  });

  it.each(['sync', 'thread-pool'] as const)('answers the same things both ways (%s)', async (mode) => {
    useContentIo(mode);
    const file = join(sitesDir, 'alpha', 'site.json');
    expect(await contentFs.statIfPresent(join(sitesDir, 'alpha', 'nope.json'))).toBeUndefined();
    // A file where a folder is expected (ENOTDIR) is "nothing there" too, as for a stat.
    expect(await contentFs.statIfPresent(join(file, 'below'))).toBeUndefined();
    expect((await contentFs.statIfPresent(file))?.isFile()).toBe(true);
    await expect(contentFs.stat(join(sitesDir, 'gone'))).rejects.toMatchObject({ code: 'ENOENT' });
    await expect(contentFs.open(join(sitesDir, 'gone'), constants.O_RDONLY)).rejects.toMatchObject({ code: 'ENOENT' });
    expect((await contentFs.readdir(sitesDir)).map((e) => e.name).sort()).toEqual(['alpha', 'beta']);
    expect(await contentFs.realpath(join(sitesDir, 'alpha', '..', 'beta'))).toBe(join(sitesDir, 'beta'));
    expect(JSON.parse(await contentFs.readText(file))).toMatchObject({ name: 'Site alpha' });
    const handle = await contentFs.open(file, constants.O_RDONLY);
    const stats = await handle.stat();
    const buffer = Buffer.alloc(stats.size);
    expect((await handle.read(buffer, 0, buffer.length, 0)).bytesRead).toBe(stats.size);
    await handle.close();
    expect(buffer.toString()).toContain('Site alpha');
  });

  it('closes a sync descriptor once, however often close is called (a second close would hit a reused number)', async () => {
    useContentIo('sync');
    const first = await contentFs.open(join(sitesDir, 'alpha', 'site.json'), constants.O_RDONLY);
    await first.close();
    const second = await contentFs.open(join(sitesDir, 'beta', 'site.json'), constants.O_RDONLY);
    // The kernel hands out the lowest free number: usually the one just closed.
    await first.close();
    const read = await readContainedText(join(sitesDir, 'beta', 'pages', 'index.md'), join(sitesDir, 'beta'), { maxBytes: 4096 });
    expect(read).toMatchObject({ kind: 'text' });
    expect((await second.stat()).isFile()).toBe(true);
    await second.close();
  });
});

describe('a site whose lookups are slow goes to the thread pool (sync mode)', () => {
  it('makes site A\'s calls through the thread pool after one slow call, for a while, and site B\'s still synchronously', async () => {
    const slow: Array<{ site: string; path: string }> = [];
    let clock = 1_000_000;
    // Every call counts as slow (threshold 0), but only paths of the sites folder belong to a site.
    useContentIo('sync', { siteRoots: [sitesDir], slowCallMs: -1, onSlowSite: (site, _ms, path) => slow.push({ site, path }), now: () => clock });
    const alpha = join(sitesDir, 'alpha', 'site.json');
    const beta = join(sitesDir, 'beta', 'site.json');
    expect(await threadPoolFileRequests(() => contentFs.stat(alpha))).toBe(0);
    expect(slow).toEqual([{ site: 'alpha', path: alpha }]);
    // From now on alpha's calls are handed to the thread pool, whatever they are.
    expect(await threadPoolFileRequests(() => contentFs.readText(alpha))).toBeGreaterThan(0);
    expect(await threadPoolFileRequests(() => readContainedText(join(sitesDir, 'alpha', 'pages', 'index.md'), join(sitesDir, 'alpha'), { maxBytes: 4096 }))).toBeGreaterThan(0);
    expect(slow).toHaveLength(1);
    // Site B was not slow: its call is made on the event loop.
    expect(await threadPoolFileRequests(() => contentFs.stat(beta))).toBe(0);
    // Paths outside the sites folder (the platform's caches) have no site: always synchronous.
    expect(await threadPoolFileRequests(() => contentFs.statIfPresent(join(root, 'elsewhere')))).toBe(0);
    // Ten minutes later alpha is tried synchronously again.
    clock += 10 * 60_000;
    expect(await threadPoolFileRequests(() => contentFs.stat(alpha))).toBe(0);
    expect(slow.map((s) => s.site)).toEqual(['alpha', 'beta', 'alpha']);
  });

  it('leaves sites whose lookups are fast on the event loop', async () => {
    const slow: string[] = [];
    useContentIo('sync', { siteRoots: [sitesDir], slowCallMs: 10_000, onSlowSite: (site) => slow.push(site) });
    expect(await threadPoolFileRequests(() => coldLoad('beta'))).toBe(0);
    expect(await threadPoolFileRequests(() => coldLoad('beta'))).toBe(0);
    expect(slow).toEqual([]);
  });
});

describe('CONTENT_IO setting', () => {
  it('is sync unless set', () => {
    expect(loadConfig({}, root).contentIo).toBe('sync');
  });

  it('takes thread-pool for content on a network file system', () => {
    expect(loadConfig({ CONTENT_IO: 'thread-pool' }, root).contentIo).toBe('thread-pool');
  });

  it.each(['async', 'SYNC', 'threads', '1'])('refuses %s, naming the variable and the values it takes', (value) => {
    expect(() => loadConfig({ CONTENT_IO: value }, root)).toThrow(/CONTENT_IO: ".*" must be sync .* or thread-pool/);
  });
});
