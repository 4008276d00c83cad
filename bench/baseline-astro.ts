import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import { parseSiteConfig } from '../astro-multi-tenant/server/sites/loader.ts';
import { parsePage } from '../astro-multi-tenant/server/sites/pages.ts';
import type { PageView, SiteView } from '../astro-multi-tenant/server/render/view.ts';
import { ROOT } from './settings.ts';
import { logTail, spawnLogged } from './processes.ts';

/** Exactly the props tenant-view.astro passes to the page layout (view.site, view.page, canonical, stylesheets). */
export interface BaselineProps {
  site: SiteView;
  page: PageView;
  canonical: string;
  stylesheets: string[];
}

/**
 * Builds the props the host gives PageLayout for `/` of one generated site, with the host's own
 * parsers (site.json schema, Markdown pipeline) and the same rules as app.ts (siteView(), the
 * canonical URL, the shared base stylesheet for a site whose CSS was never built).
 */
export async function hostPageProps(siteDir: string, id: string, origin: string): Promise<BaselineProps> {
  const parsed = parseSiteConfig(await readFile(join(siteDir, 'site.json'), 'utf8'), `sites/${id}/site.json`);
  if (!parsed.ok) throw new Error(`generated site ${id} is invalid: ${parsed.error.message}`);
  const c = parsed.config;
  const state = await parsePage(await readFile(join(siteDir, 'pages', 'index.md'), 'utf8'), `sites/${id}/pages/index.md`, c.layout);
  if (state.kind !== 'page') throw new Error(`generated page of ${id} is invalid`);
  const { frontmatter, html, layout } = state.page;
  if (layout !== 'page') throw new Error(`the baseline renders PageLayout, but the page uses the ${layout} layout`);
  const manifest = JSON.parse(await readFile(join(ROOT, 'astro-multi-tenant', 'site-css', '_base', 'manifest.json'), 'utf8')) as { file?: string };
  return {
    site: { id, name: c.name, description: c.description, locale: c.locale, theme: c.theme, nav: c.nav, footer: c.footer, origin },
    page: { title: frontmatter.title, description: frontmatter.description, layout, html, segments: state.page.segments, date: frontmatter.date, hero: frontmatter.hero, cards: frontmatter.cards },
    canonical: `${origin}/`,
    stylesheets: manifest.file ? [`/_platform/css/_base/${manifest.file}`] : [],
  };
}

const toPosix = (path: string) => path.split(sep).join('/');

/**
 * Writes a single-site Astro project (@astrojs/node, standalone) whose one SSR page renders the
 * shared PageLayout with `props`, and builds it with `astro build`. The project lives below
 * bench/.work/ so `astro` and `@astrojs/node` resolve from the repository's node_modules.
 * Returns the path of the built server entry.
 */
export async function buildBaseline(dir: string, props: BaselineProps, logFile: string): Promise<string> {
  const pagesDir = join(dir, 'src', 'pages');
  await mkdir(pagesDir, { recursive: true });
  const layout = toPosix(relative(pagesDir, join(ROOT, 'shared-components', 'layouts', 'PageLayout.astro')));
  await writeFile(join(dir, 'package.json'), `${JSON.stringify({ name: 'bench-astro-baseline', private: true, type: 'module' }, null, 2)}\n`);
  // The host's astro.config.mjs, except that the adapter runs its own server (standalone).
  await writeFile(
    join(dir, 'astro.config.mjs'),
    `import { defineConfig } from 'astro/config';
import node from '@astrojs/node';

export default defineConfig({
  output: 'server',
  adapter: node({ mode: 'standalone' }),
  build: { inlineStylesheets: 'never' },
  security: { checkOrigin: false },
  devToolbar: { enabled: false },
});
`,
  );
  await writeFile(join(dir, 'src', 'view.json'), `${JSON.stringify(props, null, 2)}\n`);
  await writeFile(
    join(pagesDir, 'index.astro'),
    `---
// Single-site baseline: the same layout and the same data as the multi-tenant host's page.
import PageLayout from '${layout}';
import view from '../view.json';

export const prerender = false;
---
<PageLayout site={view.site} page={view.page} canonical={view.canonical} stylesheets={view.stylesheets} />
`,
  );
  const build = spawnLogged({
    name: 'astro build (baseline)',
    command: process.execPath,
    args: [join(ROOT, 'node_modules', 'astro', 'bin', 'astro.mjs'), 'build', '--root', dir],
    cwd: dir,
    env: { ...process.env, ASTRO_TELEMETRY_DISABLED: '1' },
    logFile,
  });
  const timer = setTimeout(() => build.process.kill('SIGKILL'), 300_000);
  const code = await build.exited;
  clearTimeout(timer);
  if (code !== 0) throw new Error(`astro build of the baseline failed (exit ${code}):\n${logTail(build, 40)}`);
  return join(dir, 'dist', 'server', 'entry.mjs');
}
