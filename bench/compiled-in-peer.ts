import { readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import type { BaselineProps } from './baseline-astro.ts';
import { ROOT } from './settings.ts';
import { logTail, spawnLogged, type Child } from './processes.ts';

/**
 * The compiled-in peer (issue 12): what a user would build instead of this host. One Astro SSR app
 * (@astrojs/node standalone) with every site compiled in: a content collection over all sites'
 * `pages/index.md` and another over their `site.json`, both read by Astro's glob loader at build
 * time (Markdown rendered then, into the content data store), and one SSR page that picks the
 * entry by Host and renders the same `PageLayout` with the same props the host builds.
 *
 * The props differ per site only in what the generated sites differ in (id, name, origin, the
 * page's HTML): everything else is taken from `template`, the host's own props for one generated
 * site (hostPageProps), so defaults (theme, locale, nav) are the host's. Markdown goes through
 * Astro's pipeline with syntax highlighting and smartypants off, i.e. remark + GFM like the host,
 * but without the host's sanitiser: a compiled-in app trusts its authors.
 */
export interface PeerBuild {
  entry: string;
  dir: string;
  /** Wall seconds of `astro build`. */
  buildSeconds: number;
  /** Peak RSS of the build (VmHWM of the astro process, bytes), when /proc has it. */
  buildPeakRssBytes: number | undefined;
}

const toPosix = (path: string) => path.split(sep).join('/');

/** Writes the peer project into `dir` (below bench/.work, so astro resolves from the repository). */
export async function writePeerProject(dir: string, sitesDir: string, template: BaselineProps): Promise<void> {
  const pagesDir = join(dir, 'src', 'pages');
  await mkdir(pagesDir, { recursive: true });
  const layout = toPosix(relative(pagesDir, join(ROOT, 'shared-components', 'layouts', 'PageLayout.astro')));
  await writeFile(join(dir, 'package.json'), `${JSON.stringify({ name: 'bench-compiled-in-peer', private: true, type: 'module' }, null, 2)}\n`);
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
  markdown: { syntaxHighlight: false, smartypants: false },
});
`,
  );
  await writeFile(
    join(dir, 'src', 'content.config.ts'),
    `import { defineCollection } from 'astro:content';
import { glob } from 'astro/loaders';

const base = ${JSON.stringify(sitesDir)};
// One entry per site, keyed by its folder name (the site id).
const bySite = ({ entry }: { entry: string }) => entry.split('/')[0]!;

export const collections = {
  pages: defineCollection({ loader: glob({ pattern: '*/pages/index.md', base, generateId: bySite, retainBody: false }) }),
  sites: defineCollection({ loader: glob({ pattern: '*/site.json', base, generateId: bySite }) }),
};
`,
  );
  await writeFile(join(dir, 'src', 'view.json'), `${JSON.stringify(template, null, 2)}\n`);
  await writeFile(
    join(pagesDir, 'index.astro'),
    `---
// Every site compiled in: the Host picks the entries, the layout and props are the host's.
import { getEntry } from 'astro:content';
import PageLayout from '${layout}';
import template from '../view.json';

export const prerender = false;

const host = (Astro.request.headers.get('host') ?? '').replace(/:\\d+$/, '').toLowerCase();
const id = host.split('.')[0] ?? '';
const site = await getEntry('sites', id);
const page = await getEntry('pages', id);
if (!site || !page) return new Response('Not found', { status: 404 });
const origin = \`http://\${host}\`;
const view = {
  site: { ...template.site, id, name: site.data.name, origin },
  page: { ...template.page, title: page.data.title, description: page.data.description, html: page.rendered?.html ?? '' },
};
---
<PageLayout site={view.site} page={view.page} canonical={\`\${origin}/\`} stylesheets={template.stylesheets} />
`,
  );
}

/** `astro build` of the peer; its wall time and peak memory. */
export async function buildPeer(dir: string, logFile: string): Promise<PeerBuild> {
  const started = performance.now();
  const build = spawnLogged({
    name: 'astro build (compiled-in peer)',
    command: process.execPath,
    args: [join(ROOT, 'node_modules', 'astro', 'bin', 'astro.mjs'), 'build', '--root', dir],
    cwd: dir,
    env: { ...process.env, ASTRO_TELEMETRY_DISABLED: '1' },
    logFile,
  });
  let peak: number | undefined;
  const sampler = setInterval(() => {
    const hwm = vmHwm(build.pid);
    if (hwm !== undefined) peak = Math.max(peak ?? 0, hwm);
  }, 100);
  const timer = setTimeout(() => build.process.kill('SIGKILL'), 900_000);
  const code = await build.exited;
  clearTimeout(timer);
  clearInterval(sampler);
  if (code !== 0) throw new Error(`astro build of the compiled-in peer failed (exit ${code}):\n${logTail(build, 40)}`);
  return { entry: join(dir, 'dist', 'server', 'entry.mjs'), dir, buildSeconds: (performance.now() - started) / 1000, buildPeakRssBytes: peak };
}

/** Peak resident set (VmHWM) of a process, bytes. */
function vmHwm(pid: number): number | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = /^VmHWM:\s+(\d+) kB/m.exec(text)?.[1];
    return kb ? Number(kb) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** Starts the built peer on `port`. */
export function startPeer(build: PeerBuild, port: number, logFile: string, env: Record<string, string | undefined>, nodeArgs: string[] = []): Child {
  return spawnLogged({
    name: 'compiled-in-peer',
    command: process.execPath,
    args: [...nodeArgs, build.entry],
    cwd: build.dir,
    env: { ...env, HOST: '127.0.0.1', PORT: String(port), ASTRO_TELEMETRY_DISABLED: '1' },
    logFile,
  });
}
