import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdir, mkdtemp, readFile, realpath, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { buildStylesheet, defaultCssPaths, sitePageTexts } from '../../astro-multi-tenant/server/css/build-css.ts';

const ROOT = resolve(import.meta.dirname, '../..');

/**
 * A site's stylesheet is built from its own pages only: Tailwind never scans the pages folder
 * itself (it would follow a symlink anywhere), so class names in a file outside the site folder,
 * linked in as a page or as a folder, never reach the CSS.
 */
describe("a site's stylesheet build", () => {
  let root: string;
  let siteDir: string;

  beforeAll(async () => {
    root = await realpath(await mkdtemp(join(tmpdir(), 'amt-css-')));
    siteDir = join(root, 'sites', 'leaky');
    await mkdir(join(siteDir, 'pages', 'nested'), { recursive: true });
    await mkdir(join(root, 'outside', 'folder'), { recursive: true });
    await writeFile(join(root, 'outside', 'secret.md'), '<div class="bg-[#123457]">outside</div>\n');
    await writeFile(join(root, 'outside', 'folder', 'more.md'), '<div class="text-[#654322]">outside folder</div>\n');
    await writeFile(join(siteDir, 'pages', 'index.md'), '---\ntitle: Home\n---\n<div class="bg-[#abcdef]">own</div>\n');
    await writeFile(join(siteDir, 'pages', 'nested', 'page.md'), '<p class="text-[#fedcba]">own nested</p>\n');
    await symlink(join(root, 'outside', 'secret.md'), join(siteDir, 'pages', 'leak.md'));
    await symlink(join(root, 'outside', 'folder'), join(siteDir, 'pages', 'linked'));
    await symlink(join(siteDir, 'pages', 'index.md'), join(siteDir, 'pages', 'alias.md'));
    // The site's own components and layouts are scanned too; a component linked from outside is not.
    await mkdir(join(siteDir, 'components'), { recursive: true });
    await mkdir(join(siteDir, 'layouts'), { recursive: true });
    await writeFile(join(siteDir, 'components', 'Price.astro'), '<p class="text-[#13579b]">price</p>\n');
    await writeFile(join(siteDir, 'layouts', 'landing.astro'), '<main class="bg-[#2468ac]"><slot /></main>\n');
    await writeFile(join(root, 'outside', 'Stolen.astro'), '<p class="bg-[#97531f]">outside component</p>\n');
    await symlink(join(root, 'outside', 'Stolen.astro'), join(siteDir, 'components', 'Stolen.astro'));
  });

  afterAll(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('reads the site\'s own pages, and a link that stays inside, but nothing a link leads to outside', async () => {
    const texts = await sitePageTexts({ pagesDir: join(siteDir, 'pages'), realSiteDir: siteDir });
    const all = texts.join('\n');
    expect(all).toContain('bg-[#abcdef]');
    expect(all).toContain('text-[#fedcba]');
    expect(texts.filter((t) => t.includes('bg-[#abcdef]'))).toHaveLength(2);
    expect(all).not.toContain('#123457');
    expect(all).not.toContain('#654322');
  });

  it('writes CSS for the site\'s own classes and none from files outside its folder', async () => {
    const cssDir = join(root, 'css');
    const result = await buildStylesheet(defaultCssPaths(ROOT, cssDir), 'leaky', { pagesDir: join(siteDir, 'pages'), realSiteDir: siteDir });
    const css = await readFile(join(cssDir, 'leaky', result.file), 'utf8');
    expect(css).toMatch(/#abcdef/i);
    expect(css).toMatch(/#fedcba/i);
    expect(css).not.toMatch(/#123457/i);
    expect(css).not.toMatch(/#654322/i);
    // components/ and layouts/ (server/css/build-css.ts siteComponentTexts), never a link out.
    expect(css).toMatch(/#13579b/i);
    expect(css).toMatch(/#2468ac/i);
    expect(css).not.toMatch(/#97531f/i);
  });
});
