import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { compile, optimize } from '@tailwindcss/node';
import { Scanner } from '@tailwindcss/oxide';

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

/**
 * Tailwind input for one stylesheet. `source(none)` switches off automatic detection so a site's
 * build scans exactly the shared components plus that site's own pages: one tenant's class names
 * never leak into (or bloat) another's stylesheet.
 */
export function tailwindInput(paths: CssBuildPaths, sitePagesDir: string | undefined): string {
  const q = (p: string) => JSON.stringify(p.replaceAll('\\', '/'));
  return [
    '@import "tailwindcss" source(none);',
    `@import ${q(join(paths.sharedComponentsDir, 'styles/theme.css'))};`,
    `@source ${q(paths.sharedComponentsDir)};`,
    sitePagesDir ? `@source ${q(sitePagesDir)};` : '',
  ].join('\n');
}

async function compileCss(paths: CssBuildPaths, input: string): Promise<string> {
  const compiler = await compile(input, { base: paths.root, onDependency: () => {} });
  const scanner = new Scanner({ sources: compiler.sources });
  const css = compiler.build(scanner.scan());
  return optimize(css, { minify: true }).code;
}

/**
 * Builds one stylesheet (owner = a site id, or `_base` for the shared fallback) into
 * cssDir/<owner>/site.<hash>.css and then points manifest.json at it. The manifest is replaced
 * atomically and written last, so a server never sees a name whose file is not complete; the
 * previous file is kept for pages still cached with its name.
 */
export async function buildStylesheet(paths: CssBuildPaths, owner: string, sitePagesDir: string | undefined): Promise<CssBuildResult> {
  const css = await compileCss(paths, tailwindInput(paths, sitePagesDir));
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
