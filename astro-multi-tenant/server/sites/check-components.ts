import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { ContentIssue } from '../errors.ts';
import type { ComponentLoader } from '../components/component-loader.ts';
import { formatLocation } from '../components/component-error.ts';
import type { NamedPlan } from '../plans/plans-file.ts';
import { listSiteComponentFiles, tooManyFiles } from '../components/site-component-files.ts';

/** One `::Name{…}` call found in a page by `sites check` (sites/check.ts). */
export interface ComponentCallSite {
  /** `sites/<id>/pages/<path>.md` */
  file: string;
  name: string;
  /** Line in the page file. */
  line: number;
}

/**
 * `sites check`'s findings about a site's own components and layouts, as the server would answer:
 * - the plan does not allow them (`"components": true`), yet pages call components or the site
 *   has layouts/*.astro: one error per page and layout file, saying why (the server answers 503);
 * - a page calls a component the site does not have;
 * - a component or layout that does not compile, imports what it may not, or is misnamed
 *   (the loader's check, file:line:column);
 * - more component and layout files than MAX_SITE_COMPONENT_FILES (component-file.ts; then none is compiled).
 * `loader` undefined checks only the plan and the names (no compiling).
 */
export async function componentIssues(site: { id: string; dir: string }, calls: readonly ComponentCallSite[], plan: NamedPlan, loader: ComponentLoader | undefined): Promise<ContentIssue[]> {
  const issues: ContentIssue[] = [];
  const files = async (folder: string) => (await readdir(join(site.dir, folder)).catch(() => [] as string[])).filter((f) => f.endsWith('.astro')).sort();
  const components = new Set((await files('components')).map((f) => f.slice(0, -'.astro'.length)));
  const layouts = await files('layouts');
  if (!plan.limits.components) {
    const why = `the site's plan "${plan.name}" does not allow site components and layouts (an operator allows them with "components": true in the plan, PLANS_FILE); the server answers 503`;
    for (const [file, names] of groupByFile(calls)) issues.push({ file, field: 'body', reason: `calls the site component${names.length === 1 ? '' : 's'} ${names.map((n) => `"${n}"`).join(', ')}, but ${why}` });
    for (const layout of layouts) issues.push({ file: `sites/${site.id}/layouts/${layout}`, field: '', reason: `replaces a shared layout, but ${why}` });
    return issues;
  }
  for (const call of calls) {
    if (!components.has(call.name)) issues.push({ file: call.file, field: 'body', reason: `line ${call.line}: calls the component "${call.name}", but sites/${site.id}/components/${call.name}.astro does not exist` });
  }
  if ((await listSiteComponentFiles(site.dir)).more) {
    issues.push({ file: `sites/${site.id}/components`, field: '', reason: `${tooManyFiles()}; the server answers 503 for its pages that use components` });
    return issues;
  }
  for (const problem of (await loader?.check(site)) ?? []) {
    issues.push({ file: formatLocation(problem), field: '', reason: problem.reason });
  }
  return issues;
}

function groupByFile(calls: readonly ComponentCallSite[]): Map<string, string[]> {
  const byFile = new Map<string, string[]>();
  for (const call of calls) {
    const names = byFile.get(call.file) ?? [];
    if (!names.includes(call.name)) names.push(call.name);
    byFile.set(call.file, names);
  }
  return byFile;
}
