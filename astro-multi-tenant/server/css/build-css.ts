import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, realpath, rename, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { compile, optimize } from '@tailwindcss/node';
import { Scanner } from '@tailwindcss/oxide';
import { isWithin, readContainedText } from '../sites/contained-file.ts';
import { MAX_PAGE_BYTES } from '../sites/pages.ts';

export interface CssBuildPaths {
  /** Repository root: where `tailwindcss` resolves from. */
  root: string;
  sharedComponentsDir: string;
  cssDir: string;
}

export interface CssBuildResult {
  owner: string;
  file: string;
  bytes: number;
}

/** A site whose pages a stylesheet is built for: its pages folder, and the real site folder they must stay in. */
export interface SitePages {
  pagesDir: string;
  realSiteDir: string;
}

/**
 * Tailwind input for one stylesheet. `source(none)` switches off automatic detection so a build
 * scans exactly the shared components; a site's pages are not a Tailwind source at all (Tailwind
 * would follow their symlinks anywhere) but are read by us, contained, and handed over as text
 * (`sitePageTexts`): one tenant's class names never leak into another's stylesheet, and no file
 * outside the site folder is ever read.
 */
export function tailwindInput(paths: CssBuildPaths): string {
  const q = (p: string) => JSON.stringify(p.replaceAll('\\', '/'));
  return [
    '@import "tailwindcss" source(none);',
    `@import ${q(join(paths.sharedComponentsDir, 'styles/theme.css'))};`,
    `@source ${q(paths.sharedComponentsDir)};`,
  ].join('\n');
}

/**
 * The text of every `.md` page of a site, each read through a descriptor checked to be inside the
 * real site folder (sites/contained-file.ts) and at most MAX_PAGE_BYTES; a link out of the site,
 * a folder link out of it, or an oversized file is skipped. Bounded to `limit` files.
 */
export async function sitePageTexts(site: SitePages, limit = 50_000): Promise<string[]> {
  const texts: string[] = [];
  async function walk(dir: string): Promise<void> {
    let real: string;
    try {
      real = await realpath(dir);
    } catch {
      return;
    }
    if (!isWithin(site.realSiteDir, real)) return;
    const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
    for (const entry of entries) {
      if (texts.length >= limit || entry.name.startsWith('.')) continue;
      const path = join(dir, entry.name);
      if (entry.isDirectory() || (entry.isSymbolicLink() && !entry.name.endsWith('.md'))) await walk(path);
      else if (entry.name.endsWith('.md')) {
        const read = await readContainedText(path, site.realSiteDir, { maxBytes: MAX_PAGE_BYTES });
        if (read.kind === 'text') texts.push(read.text);
      }
    }
  }
  await walk(site.pagesDir);
  return texts;
}

/** Largest component or layout file scanned (bytes): the component loader's own limit. */
const MAX_COMPONENT_BYTES = 256 * 1024;

/**
 * The text of a site's own components (components/*.astro) and layouts (layouts/*.astro), for
 * its Tailwind build: their classes are the site's like its pages'. Read as pages are (contained
 * in the real site folder, size-bounded); only files directly in those folders, the only ones
 * the server loads. None when the site has neither folder.
 */
export async function siteComponentTexts(realSiteDir: string): Promise<string[]> {
  const texts: string[] = [];
  for (const folder of ['components', 'layouts']) {
    const dir = join(realSiteDir, folder);
    const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
    for (const entry of entries.sort((a, b) => (a.name < b.name ? -1 : 1))) {
      if (entry.name.startsWith('.') || !entry.name.endsWith('.astro') || entry.isDirectory()) continue;
      const read = await readContainedText(join(dir, entry.name), realSiteDir, { maxBytes: MAX_COMPONENT_BYTES });
      if (read.kind === 'text') texts.push(read.text);
    }
  }
  return texts;
}

interface ScannedText {
  content: string;
  extension: 'md' | 'astro';
}

async function compileCss(paths: CssBuildPaths, input: string, texts: readonly ScannedText[]): Promise<string> {
  const compiler = await compile(input, { base: paths.root, onDependency: () => {} });
  const scanner = new Scanner({ sources: compiler.sources });
  const candidates = [...scanner.scan(), ...scanner.scanFiles([...texts])];
  const css = compiler.build(candidates);
  return optimize(css, { minify: true }).code;
}

/**
 * Builds one stylesheet (owner = a site id, or `_base` for the shared fallback; a site's pages,
 * components and layouts are scanned for classes) into
 * cssDir/<owner>/site.<hash>.css and then points manifest.json at it. The manifest is replaced
 * atomically and written last, so a server never sees a name whose file is not complete; the
 * previous file is kept for pages still cached with its name.
 */
export async function buildStylesheet(paths: CssBuildPaths, owner: string, site: SitePages | undefined): Promise<CssBuildResult> {
  const texts: ScannedText[] = [];
  if (site) {
    for (const content of await sitePageTexts(site)) texts.push({ content, extension: 'md' });
    for (const content of await siteComponentTexts(site.realSiteDir)) texts.push({ content, extension: 'astro' });
  }
  const css = await compileCss(paths, tailwindInput(paths), texts);
  const hash = createHash('sha256').update(css).digest('hex').slice(0, 16);
  const file = `site.${hash}.css`;
  const dir = join(paths.cssDir, owner);
  await mkdir(dir, { recursive: true });
  const manifestPath = join(dir, 'manifest.json');
  const previous = await readFile(manifestPath, 'utf8').then((t) => (JSON.parse(t) as { file?: string }).file, () => undefined);
  await writeFile(join(dir, file), css);
  const tmp = join(dir, `.manifest.${process.pid}.tmp`);
  await writeFile(tmp, JSON.stringify({ file, builtAt: new Date().toISOString() }) + '\n');
  await rename(tmp, manifestPath);
  for (const name of await readdir(dir)) {
    if (/^site\.[a-f0-9]+\.css$/.test(name) && name !== file && name !== previous) await rm(join(dir, name), { force: true });
  }
  return { owner, file, bytes: Buffer.byteLength(css) };
}

export function defaultCssPaths(repoRoot: string, cssDir: string): CssBuildPaths {
  return { root: repoRoot, sharedComponentsDir: resolve(repoRoot, 'shared-components'), cssDir };
}
