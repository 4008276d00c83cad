import { lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { ContentIssue } from '../errors.ts';
import type { NamedPlan } from './plans-file.ts';

/** What a site's folder holds, against the size and count limits of a plan. */
export interface ContentUsage {
  /** Page files (pages/**\/*.md, dot-names skipped like the server does). */
  pages: number;
  /** The largest page file, bytes, and which one (relative to pages/). */
  largestPage: { file: string; bytes: number } | undefined;
  /** Page files over maxPageBytes, relative to pages/. */
  pagesOverLimit: Array<{ file: string; bytes: number }>;
  /** Bytes of regular files under public/ (links are not followed: the server never serves through one that leaves the folder). */
  publicBytes: number;
  /** The walk stopped early: the counts are at least these. */
  truncated: boolean;
  /**
   * With `maxPages` given and more pages than that: the last page file (relative to pages/) that
   * is within the count, in path order (JavaScript string order, as `listPageRoutes` sorts). Pages
   * whose path sorts after it are beyond the plan's count.
   */
  lastPageWithin?: string;
}

/** Entries looked at per folder walk at most, so a pathological tree cannot stall the caller. */
const WALK_LIMIT = 200_000;

/**
 * Calls `visit` for every regular file below `dir` (dot-names skipped, links not followed). With
 * `sizes` false, `bytes` is 0 and no file is stat'ed: the listing's own entry types (d_type, what
 * lstat would say of the kind) tell files from the rest.
 */
async function walk(dir: string, visit: (path: string, relative: string, bytes: number) => void, budget: { left: number }, prefix = '', sizes = true): Promise<void> {
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch {
    return;
  }
  for (const entry of entries) {
    if (budget.left-- <= 0) return;
    if (entry.name.startsWith('.')) continue;
    const path = join(dir, entry.name);
    const relative = prefix ? `${prefix}/${entry.name}` : entry.name;
    if (entry.isDirectory()) await walk(path, visit, budget, relative, sizes);
    else if (entry.isFile() && !sizes) visit(path, relative, 0);
    else if (entry.isFile()) {
      const s = await lstat(path).catch(() => undefined);
      if (s?.isFile()) visit(path, relative, s.size);
    }
  }
}

/**
 * Measures a site folder (pages/ and public/) with stat only, never reading a file. Bounded by
 * WALK_LIMIT entries per folder. With `maxPages`, also finds `lastPageWithin` (the page names are
 * held only for the duration of the walk).
 *
 * `pageSizes: false` counts and names the pages from the folder listings alone, without a stat per
 * page file: `largestPage` and `pagesOverLimit` then stay empty. For the content gate, which
 * checks a page's size on the descriptor it is read from and needs only the count, the names and
 * public/'s total: one listing per folder instead of one stat per page.
 */
export async function measureContent(siteDir: string, maxPageBytes: number, maxPages?: number, options: { pageSizes?: boolean } = {}): Promise<ContentUsage> {
  const pageSizes = options.pageSizes ?? true;
  const usage: ContentUsage = { pages: 0, largestPage: undefined, pagesOverLimit: [], publicBytes: 0, truncated: false };
  const names: string[] = [];
  const pagesBudget = { left: WALK_LIMIT };
  await walk(join(siteDir, 'pages'), (_path, file, bytes) => {
    if (!file.endsWith('.md')) return;
    usage.pages++;
    if (maxPages !== undefined) names.push(file);
    if (!pageSizes) return;
    if (!usage.largestPage || bytes > usage.largestPage.bytes) usage.largestPage = { file, bytes };
    if (bytes > maxPageBytes) usage.pagesOverLimit.push({ file, bytes });
  }, pagesBudget, '', pageSizes);
  const publicBudget = { left: WALK_LIMIT };
  await walk(join(siteDir, 'public'), (_path, _file, bytes) => (usage.publicBytes += bytes), publicBudget);
  usage.truncated = pagesBudget.left < 0 || publicBudget.left < 0;
  if (maxPages !== undefined && names.length > maxPages) usage.lastPageWithin = names.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))[maxPages - 1];
  return usage;
}

/**
 * The plan's size and count limits a site folder breaks, as content issues (file, field, reason)
 * like a validation error, so `sites check` and the status page report them the same way. The
 * field names the plan limit (`plan.maxPages`), the reason the numbers and the plan.
 */
export function contentLimitIssues(siteId: string, usage: ContentUsage, plan: NamedPlan): ContentIssue[] {
  const { limits } = plan;
  const issues: ContentIssue[] = [];
  const on = `(plan "${plan.name}")`;
  if (usage.pages > limits.maxPages) issues.push({ file: `sites/${siteId}/pages`, field: 'plan.maxPages', reason: `${usage.pages} pages, over the limit of ${limits.maxPages} ${on}` });
  for (const page of usage.pagesOverLimit.slice(0, 20)) {
    issues.push({ file: `sites/${siteId}/pages/${page.file}`, field: 'plan.maxPageBytes', reason: `${page.bytes} bytes, over the limit of ${limits.maxPageBytes} ${on}` });
  }
  if (usage.pagesOverLimit.length > 20) issues.push({ file: `sites/${siteId}/pages`, field: 'plan.maxPageBytes', reason: `${usage.pagesOverLimit.length - 20} more pages over ${limits.maxPageBytes} bytes ${on}` });
  if (usage.publicBytes > limits.maxPublicBytes) issues.push({ file: `sites/${siteId}/public`, field: 'plan.maxPublicBytes', reason: `${usage.publicBytes} bytes, over the limit of ${limits.maxPublicBytes} ${on}` });
  return issues;
}

/**
 * The status page's view of size and count limits: adds each checked site's limit issues to its
 * validation result (so a site over its plan shows "invalid" with the file, field and reason, like
 * a site.json error). Folder walks are cached for `ttlMs` per site and at most `perCall` sites are
 * measured per status view, so opening the page never walks ten thousand folders at once.
 */
export function createContentLimitChecks(options: {
  siteDir: (id: string) => string;
  planFor: (id: string) => NamedPlan;
  ttlMs?: number;
  perCall?: number;
  now?: () => number;
}) {
  const ttlMs = options.ttlMs ?? 60_000;
  const perCall = options.perCall ?? 200;
  const now = options.now ?? Date.now;
  const measured = new Map<string, { at: number; maxPageBytes: number; usage: ContentUsage }>();
  return async function addLimitIssues(results: Map<string, { ok: boolean; issues: ContentIssue[] }>): Promise<Map<string, { ok: boolean; issues: ContentIssue[] }>> {
    let budget = perCall;
    for (const [id, result] of results) {
      const plan = options.planFor(id);
      let entry = measured.get(id);
      if (!entry || now() - entry.at > ttlMs || entry.maxPageBytes !== plan.limits.maxPageBytes) {
        if (budget-- <= 0) {
          if (!entry) continue;
        } else {
          entry = { at: now(), maxPageBytes: plan.limits.maxPageBytes, usage: await measureContent(options.siteDir(id), plan.limits.maxPageBytes) };
          measured.set(id, entry);
        }
      }
      const issues = contentLimitIssues(id, entry.usage, plan);
      if (issues.length > 0) results.set(id, { ok: false, issues: [...result.issues, ...issues] });
    }
    // Sites no longer asked about are forgotten.
    for (const id of measured.keys()) if (!results.has(id)) measured.delete(id);
    return results;
  };
}
