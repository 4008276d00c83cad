import type { ContentIssue } from '../errors.ts';
import type { ComponentIssue, ComponentLoader } from './component-loader.ts';
import { listSiteComponentFiles, tooManyFiles } from './site-component-files.ts';

type CheckResults = Map<string, { ok: boolean; issues: ContentIssue[] }>;

/**
 * Adds each site's component problems (compile errors, forbidden imports, misnamed files, with
 * `file:line:column`) to the status page's per-site checks, like plans/content-limits.ts adds
 * limit issues. Only sites whose plan allows components are checked: the others' component files
 * are never compiled (their pages that use them already answer 503 saying why). At most `perCall`
 * sites are checked per view; their components load through the content cache, so a component in
 * use costs a stat per file at most.
 */
export function createComponentChecks(options: {
  loader: ComponentLoader;
  /** The site's real folder (site-source.ts `realSiteDir`). */
  siteDir: (id: string) => Promise<string>;
  /** The site's plan has `"components": true`. */
  allowed: (id: string) => boolean;
  perCall?: number;
}): (results: CheckResults) => Promise<CheckResults> {
  const perCall = options.perCall ?? 200;
  return async function addComponentIssues(results) {
    let budget = perCall;
    for (const [id, result] of results) {
      if (!options.allowed(id)) continue;
      if (budget-- <= 0) break;
      let issues: ComponentIssue[];
      try {
        const dir = await options.siteDir(id);
        // Over the bound, none is compiled here either: the count is the issue.
        const file = `sites/${id}/components`;
        issues = (await listSiteComponentFiles(dir)).more ? [{ file, line: undefined, column: undefined, reason: tooManyFiles(), message: `${file}: ${tooManyFiles()}` }] : await options.loader.check({ id, dir });
      } catch (error) {
        // The folder went away since the scan, or cannot be listed: the config check says so.
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') continue;
        throw error;
      }
      if (issues.length > 0) results.set(id, { ok: false, issues: [...result.issues, ...issues.map(asContentIssue)] });
    }
    return results;
  };
}

/** `sites/a/components/X.astro:3:7` as the file, so formatIssue prints the log's words. */
export function asContentIssue(issue: ComponentIssue): ContentIssue {
  const at = issue.line === undefined ? '' : issue.column === undefined ? `:${issue.line}` : `:${issue.line}:${issue.column}`;
  return { file: `${issue.file}${at}`, field: '', reason: issue.reason };
}
