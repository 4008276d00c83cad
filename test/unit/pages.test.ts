import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtemp, mkdir, realpath, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createPageLoader, listPageRoutes, MAX_PAGE_BYTES, pageCandidates, parsePage } from '../../astro-multi-tenant/server/sites/pages.ts';
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
  site = { id: 'demo', dir: await realpath(dir), config: config({ name: 'Demo', layout: 'article' }), cssFile: undefined, cssProblem: undefined };
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

  it('refuses a page larger than 1 MiB before parsing it', async () => {
    const state = await parsePage('---\ntitle: Big\n---\n' + 'a'.repeat(MAX_PAGE_BYTES), 'big.md', 'page');
    expect(state.kind === 'invalid' && state.error.issues[0]?.reason).toBe('page is larger than 1 MiB');
  });
});

describe('listPageRoutes', () => {
  it('lists every Markdown page with its route, sorted by file', async () => {
    const routes = await listPageRoutes(site);
    expect(routes).toEqual([
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

  it('skips hidden files, non-Markdown files and every symlink', async () => {
    const files = (await listPageRoutes(site)).map((r) => r.file);
    expect(files).not.toContain('.hidden.md');
    expect(files).not.toContain('notes.txt');
    expect(files).not.toContain('leak.md');
    expect(files).not.toContain('about-us.md');
    expect(files.some((f) => f.startsWith('leakdir'))).toBe(false);
  });

  it('stops at the given limit', async () => {
    expect(await listPageRoutes(site, 3)).toHaveLength(3);
  });

  it('lists nothing for a site without a pages folder', async () => {
    const empty = await mkdtemp(join(root, 'empty-'));
    expect(await listPageRoutes({ ...site, dir: empty })).toEqual([]);
  });
});
