import { join, resolve } from 'node:path';
import { loadConfig, APP_DIR } from '../config.ts';
import { buildStylesheet, defaultCssPaths } from '../css/build-css.ts';
import { isValidSiteId } from '../tenant/resolve-host.ts';
import { createFolderSiteSource } from '../sites/site-source.ts';

/**
 * `npm run css` builds the shared base stylesheet and every site's; `npm run css -- <site> [...]`
 * rebuilds just those sites. A failing site is reported and the others still build. An id that is
 * not valid or names no site folder exits 2 before anything is built.
 */
const config = loadConfig();
const paths = defaultCssPaths(resolve(APP_DIR, '..'), config.cssDir);
// The same listing as the server's: symlinked site folders are sites, so their CSS is built too.
const source = createFolderSiteSource(config.sitesDir);
const requested = process.argv.slice(2).filter((a) => a !== '--');

let ids: string[];
if (requested.length > 0) {
  const bad = requested.filter((id) => !isValidSiteId(id));
  if (bad.length) {
    console.error(`css: not a valid site id: ${bad.join(', ')}`);
    process.exit(2);
  }
  // Checked before building anything: a mistyped id used to "succeed", writing CSS for a site that
  // does not exist while the intended site kept its old stylesheet.
  const missing = [];
  for (const id of requested) {
    const problem = await source.siteProblem(id);
    if (problem) missing.push(`css: site "${id}" does not exist: ${problem}`);
  }
  if (missing.length) {
    console.error(missing.join('\n'));
    process.exit(2);
  }
  ids = requested;
} else {
  const base = await buildStylesheet(paths, '_base', undefined);
  console.log(`css: _base → ${base.file} (${(base.bytes / 1024).toFixed(1)} KiB)`);
  ids = await source.listSiteIds();
}

let failed = 0;
for (const id of ids) {
  try {
    const pagesDir = join(source.siteDir(id), 'pages');
    const result = await buildStylesheet(paths, id, { pagesDir, realSiteDir: await source.realSiteDir(id) });
    console.log(`css: ${id} → ${result.file} (${(result.bytes / 1024).toFixed(1)} KiB)`);
  } catch (error) {
    failed++;
    console.error(`css: ${id}: ${(error as Error).message}`);
  }
}
process.exit(failed ? 1 : 0);
