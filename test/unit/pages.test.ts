import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtemp, mkdir, realpath, rm, symlink, truncate, writeFile } from 'node:fs/promises';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createPageLoader, findShadowedPages, listPageRoutes, MAX_PAGE_BYTES, pageCandidates, parsePage } from '../../astro-multi-tenant/server/sites/pages.ts';
import { checkSite, formatReport, siteFolderProblem } from '../../astro-multi-tenant/server/sites/check.ts';
import { createContentCache } from '../../astro-multi-tenant/server/sites/content-cache.ts';
import { parseSiteConfig, type Site } from '../../astro-multi-tenant/server/sites/loader.ts';
import type { SiteConfig } from '../../astro-multi-tenant/server/sites/schema.ts';

const SECRET = 'TOP-SECRET-OUTSIDE-THE-SITE';

let root: string;
let site: Site;

function config(json: Record<string, unknown>): SiteConfig {
  const parsed = parseSiteConfig(JSON.stringify(json), 'site.json');
  if (!parsed.ok) throw new Error(parsed.error.message);
  return parsed.config;
}

async function put(path: string, text: string) {
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, text);
}

function loader() {
  return createPageLoader(createContentCache({ maxEntries: 100, maxBytes: 10_000_000, checkIntervalMs: 1000 }));
}

beforeAll(async () => {
  // realpath: the loader compares real paths, and the temp folder may itself sit behind a symlink.
  root = await realpath(await mkdtemp(join(tmpdir(), 'pages-test-')));
  const dir = join(root, 'sites', 'demo');
  const pages = join(dir, 'pages');
  await put(join(dir, 'site.json'), JSON.stringify({ name: 'Demo', layout: 'article' }));
  await put(join(pages, 'index.md'), '---\ntitle: Home\n---\n# Welcome');
  await put(join(pages, 'about.md'), '---\ntitle: About\nlayout: landing\n---\nAbout us');
  await put(join(pages, 'blog', 'index.md'), '---\ntitle: Blog\n---\nAll posts');
  await put(join(pages, 'blog', 'first-post.md'), '---\ntitle: First\ndate: 2026-01-31\n---\nHello');
  await put(join(pages, 'guide.md'), '---\ntitle: Guide (file)\n---\n');
  await put(join(pages, 'guide', 'index.md'), '---\ntitle: Guide (folder)\n---\n');
  await put(join(pages, 'drafts', 'secret.md'), '---\ntitle: Not yet\ndraft: true\n---\nUnpublished');
  await put(join(pages, 'broken.md'), '---\ntitle: ""\ncolour: red\n---\n');
  await put(join(pages, '.hidden.md'), '---\ntitle: Hidden\n---\n');
  await put(join(pages, 'notes.txt'), 'not a page');
  await put(join(root, 'outside', 'secret.md'), `---\ntitle: ${SECRET}\n---\n${SECRET}`);
  await put(join(root, 'outside', 'nested', 'index.md'), `---\ntitle: ${SECRET}\n---\n${SECRET}`);
  await symlink(join(root, 'outside', 'secret.md'), join(pages, 'leak.md'));
  await symlink(join(root, 'outside', 'nested'), join(pages, 'leakdir'));
  // A symlink that stays inside the site folder is fine.
  await symlink(join(pages, 'about.md'), join(pages, 'about-us.md'));
  // A folder link inside the site, and one to an ancestor (a loop).
  await symlink(join(pages, 'blog'), join(pages, 'news'));
  await symlink(pages, join(pages, 'blog', 'loop'));
  site = { id: 'demo', dir: await realpath(dir), config: config({ name: 'Demo', layout: 'article' }), cssFile: undefined, cssProblem: undefined, version: 'v1' };
});

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('pageCandidates', () => {
  it('maps / to index.md', () => {
    expect(pageCandidates([])).toEqual(['index.md']);
  });

  it('maps /a to a.md, then a/index.md', () => {
    expect(pageCandidates(['about'])).toEqual(['about.md', 'about/index.md']);
  });

  it('maps nested paths to nested files', () => {
    expect(pageCandidates(['posts', '2026', 'hello'])).toEqual(['posts/2026/hello.md', 'posts/2026/hello/index.md']);
  });

  it('never maps a final `index` segment to the index page it would duplicate', () => {
    // /index is not a second URL for / (index.md), nor /blog/index for /blog (blog/index.md).
    expect(pageCandidates(['index'])).toEqual(['index/index.md']);
    expect(pageCandidates(['blog', 'index'])).toEqual(['blog/index/index.md']);
  });

  it('treats `index` like any other name when it is not the last segment', () => {
    expect(pageCandidates(['index', 'a'])).toEqual(['index/a.md', 'index/a/index.md']);
  });
});

describe('loadPage', () => {
  it('serves index.md at /', async () => {
    const state = await loader()(site, []);
    expect(state?.kind).toBe('page');
    if (state?.kind !== 'page') return;
    expect(state.page.file).toBe('sites/demo/pages/index.md');
    expect(state.page.frontmatter.title).toBe('Home');
    expect(state.page.html).toContain('<h1 id="welcome">Welcome</h1>');
  });

  it('serves a folder\'s index.md at the folder path', async () => {
    const state = await loader()(site, ['blog']);
    expect(state?.kind === 'page' && state.page.frontmatter.title).toBe('Blog');
  });

  it('prefers guide.md over guide/index.md when both exist', async () => {
    const state = await loader()(site, ['guide']);
    expect(state?.kind === 'page' && state.page.file).toBe('sites/demo/pages/guide.md');
  });

  it('uses the site\'s layout unless the page names its own', async () => {
    const load = loader();
    const post = await load(site, ['blog', 'first-post']);
    const about = await load(site, ['about']);
    expect(post?.kind === 'page' && post.page.layout).toBe('article');
    expect(about?.kind === 'page' && about.page.layout).toBe('landing');
  });

  it('answers null for /index and /blog/index instead of serving the index page a second time', async () => {
    const load = loader();
    expect(await load(site, ['index'])).toBeNull();
    expect(await load(site, ['blog', 'index'])).toBeNull();
    expect((await load(site, ['blog']))?.kind).toBe('page');
  });

  it('serves a real index/index.md folder page at /index', async () => {
    const dir = await mkdtemp(join(root, 'index-folder-'));
    await put(join(dir, 'pages', 'index', 'index.md'), '---\ntitle: The index\n---\n');
    const state = await loader()({ ...site, id: 'idx', dir }, ['index']);
    expect(state?.kind === 'page' && state.page.frontmatter.title).toBe('The index');
  });

  it('answers null for a page that does not exist', async () => {
    expect(await loader()(site, ['missing'])).toBeNull();
    expect(await loader()(site, ['blog', 'nope'])).toBeNull();
  });

  it('does not serve a file that is not Markdown', async () => {
    expect(await loader()(site, ['notes.txt'])).toBeNull();
  });

  it('never reads a page symlinked to a file outside the site folder', async () => {
    const state = await loader()(site, ['leak']);
    expect(state).toEqual({ kind: 'outside' });
    expect(JSON.stringify(state)).not.toContain(SECRET);
  });

  it('never reads a page inside a folder symlinked to outside the site folder', async () => {
    const state = await loader()(site, ['leakdir']);
    expect(state).toEqual({ kind: 'outside' });
    expect(JSON.stringify(state)).not.toContain(SECRET);
  });

  it('refuses a 700 MB sparse page by its size before reading it, naming the file and the limit, and remembers that per file version', async () => {
    const dir = await mkdtemp(join(root, 'huge-'));
    await put(join(dir, 'pages', 'huge.md'), '');
    await truncate(join(dir, 'pages', 'huge.md'), 700 * 1024 * 1024);
    const cache = createContentCache({ maxEntries: 100, maxBytes: 10_000_000, checkIntervalMs: 0 });
    const load = createPageLoader(cache);
    const huge = { ...site, id: 'huge', dir };
    const state = await load(huge, ['huge']);
    expect(state?.kind === 'invalid' && state.error.issues).toEqual([{ file: 'sites/huge/pages/huge.md', field: '', reason: 'is 734,003,200 bytes, over the limit of 1 MiB (1,048,576 bytes)' }]);
    // Asked again with the file unchanged: one stat, no reload (the refusal is cached by its version).
    expect(await load(huge, ['huge'])).toBe(state);
    expect(cache.stats).toMatchObject({ misses: 1, reloads: 0, revalidations: 1 });
    // A new version of the file is looked at again.
    await truncate(join(dir, 'pages', 'huge.md'), 0);
    await writeFile(join(dir, 'pages', 'huge.md'), '---\ntitle: Small now\n---\n');
    const small = await load(huge, ['huge']);
    expect(small?.kind === 'page' && small.page.frontmatter.title).toBe('Small now');
  });

  it('treats a FIFO at a page name as no page, without blocking on it', async () => {
    const dir = await mkdtemp(join(root, 'fifo-'));
    await mkdir(join(dir, 'pages'), { recursive: true });
    await promisify(execFile)('mkfifo', [join(dir, 'pages', 'pipe.md')]);
    expect(await loader()({ ...site, id: 'fifo', dir }, ['pipe'])).toBeNull();
  });

  it('follows a symlink that stays inside the site folder', async () => {
    const state = await loader()(site, ['about-us']);
    expect(state?.kind === 'page' && state.page.frontmatter.title).toBe('About');
  });

  it('marks a draft page as a draft so the server can withhold it', async () => {
    const state = await loader()(site, ['drafts', 'secret']);
    expect(state?.kind === 'page' && state.page.frontmatter.draft).toBe(true);
    const published = await loader()(site, ['about']);
    expect(published?.kind === 'page' && published.page.frontmatter.draft).toBe(false);
  });

  it('reports invalid frontmatter with the page file and frontmatter field', async () => {
    const state = await loader()(site, ['broken']);
    expect(state?.kind).toBe('invalid');
    if (state?.kind !== 'invalid') return;
    expect(state.error.code).toBe('PAGE_INVALID');
    expect(state.error.issues).toEqual(
      expect.arrayContaining([
        { file: 'sites/demo/pages/broken.md', field: 'frontmatter.title', reason: 'must not be empty' },
        { file: 'sites/demo/pages/broken.md', field: 'frontmatter', reason: 'unknown field(s) "colour"' },
      ]),
    );
  });
});

describe('parsePage', () => {
  it('reports YAML that does not parse against the frontmatter', async () => {
    const state = await parsePage('---\ntitle: [oops\n---\nbody', 'p.md', 'page');
    expect(state.kind).toBe('invalid');
    if (state.kind !== 'invalid') return;
    expect(state.error.issues).toHaveLength(1);
    expect(state.error.issues[0]).toMatchObject({ file: 'p.md', field: 'frontmatter' });
    expect(state.error.issues[0]!.reason).toMatch(/^not valid YAML: /);
  });

  it('requires a title even when there is no frontmatter at all', async () => {
    const state = await parsePage('# Just a body', 'p.md', 'page');
    expect(state.kind === 'invalid' && state.error.issues.map((i) => i.field)).toEqual(['frontmatter.title']);
  });

  it('rejects an unquoted impossible date instead of publishing it as another day', async () => {
    const state = await parsePage('---\ntitle: Post\ndate: 2026-13-45\n---\nbody', 'p.md', 'article');
    expect(state.kind === 'invalid' && state.error.issues).toEqual([
      { file: 'p.md', field: 'frontmatter.date', reason: '2026-13-45 is not a real date (must be a date such as 2026-01-31)' },
    ]);
  });

  it('refuses a page larger than 1 MiB before parsing it', async () => {
    const state = await parsePage('---\ntitle: Big\n---\n' + 'a'.repeat(MAX_PAGE_BYTES), 'big.md', 'page');
    expect(state.kind === 'invalid' && state.error.issues[0]).toEqual({ file: 'big.md', field: '', reason: `is ${(Buffer.byteLength('---\ntitle: Big\n---\n') + MAX_PAGE_BYTES).toLocaleString('en-US')} bytes, over the limit of 1 MiB (1,048,576 bytes)` });
  });
});

describe('listPageRoutes', () => {
  it('lists every Markdown page with its route, sorted by file', async () => {
    const routes = await listPageRoutes(site);
    expect(routes).toEqual([
      { segments: ['about-us'], file: 'about-us.md' },
      { segments: ['about'], file: 'about.md' },
      { segments: ['blog', 'first-post'], file: 'blog/first-post.md' },
      { segments: ['blog'], file: 'blog/index.md' },
      { segments: ['broken'], file: 'broken.md' },
      { segments: ['drafts', 'secret'], file: 'drafts/secret.md' },
      { segments: ['guide'], file: 'guide.md' },
      { segments: ['guide'], file: 'guide/index.md' },
      { segments: [], file: 'index.md' },
    ]);
  });

  it('skips hidden files, non-Markdown files and symlinks that lead out of the site, as the server does', async () => {
    const files = (await listPageRoutes(site)).map((r) => r.file);
    expect(files).not.toContain('.hidden.md');
    expect(files).not.toContain('notes.txt');
    expect(files).not.toContain('leak.md');
    expect(files.some((f) => f.startsWith('leakdir'))).toBe(false);
  });

  it('lists a page link and a folder link that stay inside the site (served there), and walks each real folder once', async () => {
    const files = (await listPageRoutes(site)).map((r) => r.file);
    expect(files).toContain('about-us.md');
    // `news` and `blog` are one real folder: it is listed once, under the name met first.
    expect(files.filter((f) => f.endsWith('first-post.md'))).toHaveLength(1);
    expect(files.some((f) => f.includes('loop/'))).toBe(false);
  });

  it('stops at the given limit', async () => {
    expect(await listPageRoutes(site, 3)).toHaveLength(3);
  });

  it('lists nothing for a site without a pages folder', async () => {
    const empty = await mkdtemp(join(root, 'empty-'));
    expect(await listPageRoutes({ ...site, dir: empty })).toEqual([]);
  });
});

describe('findShadowedPages', () => {
  it('reports a folder index.md that a same-named .md file shadows', async () => {
    expect(findShadowedPages(await listPageRoutes(site))).toEqual([{ file: 'guide/index.md', shadowedBy: 'guide.md' }]);
  });

  it('reports nothing when every route has one file', () => {
    expect(findShadowedPages([{ segments: [], file: 'index.md' }, { segments: ['a'], file: 'a/index.md' }, { segments: ['b'], file: 'b.md' }])).toEqual([]);
  });

  it('follows the server\'s lookup order at any depth', () => {
    const routes = [
      { segments: ['x', 'y'], file: 'x/y/index.md' },
      { segments: ['x', 'y'], file: 'x/y.md' },
    ];
    expect(findShadowedPages(routes)).toEqual([{ file: 'x/y/index.md', shadowedBy: 'x/y.md' }]);
  });
});

describe('sites check on page files', () => {
  it('warns, without failing the site, that guide.md shadows guide/index.md', async () => {
    const report = await checkSite(join(root, 'sites'), 'demo');
    expect(report.warnings).toEqual([
      { file: 'sites/demo/pages/guide/index.md', field: '', reason: 'never served: guide.md answers /guide instead; remove or rename one of them' },
    ]);
    expect(report.issues.some((i) => i.file.includes('guide'))).toBe(false);
    expect(formatReport([report])).toContain('      warning: sites/demo/pages/guide/index.md: never served: guide.md answers /guide instead');
  });

  it('prints warnings under an ok site too', () => {
    const text = formatReport([{ id: 'a', config: undefined, pages: 2, issues: [], warnings: [{ file: 'sites/a/pages/x/index.md', field: '', reason: 'never served' }], componentCalls: [] }]);
    expect(text).toBe('ok    a (2 pages)\n      warning: sites/a/pages/x/index.md: never served');
  });
});

describe('siteFolderProblem', () => {
  it('accepts a folder with a site.json', async () => {
    expect(await siteFolderProblem(join(root, 'sites'), 'demo')).toBeUndefined();
  });

  it('names the missing folder for an id that is not a site', async () => {
    expect(await siteFolderProblem(join(root, 'sites'), 'nope')).toBe(`no site folder ${join(root, 'sites', 'nope')}`);
  });

  it('refuses a folder without site.json, and a file where the folder should be', async () => {
    await mkdir(join(root, 'sites', 'bare'), { recursive: true });
    await put(join(root, 'sites', 'file-not-folder'), 'x');
    expect(await siteFolderProblem(join(root, 'sites'), 'bare')).toBe(`${join(root, 'sites', 'bare')} has no site.json, so it is not a site`);
    expect(await siteFolderProblem(join(root, 'sites'), 'file-not-folder')).toBe(`no site folder ${join(root, 'sites', 'file-not-folder')}`);
  });
});
