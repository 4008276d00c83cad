import { readFile, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { formatIssue, type ContentIssue } from '../errors.ts';
import { buildHostIndex } from '../tenant/host-index.ts';
import { isValidSiteId } from '../tenant/resolve-host.ts';
import { parseSiteConfig, SITE_CONFIG_FILE, type Site } from './loader.ts';
import { findShadowedPages, listPageRoutes, parsePage } from './pages.ts';
import { routePath } from './sitemap.ts';
import type { SiteConfig } from './schema.ts';

export interface SiteReport {
  id: string;
  config: SiteConfig | undefined;
  pages: number;
  issues: ContentIssue[];
  /** Problems that do not stop the site from working (so do not fail the check), e.g. a page that is never served. */
  warnings: ContentIssue[];
}

/** Validates every folder under sitesDir exactly as the server would load it. */
export async function checkSites(sitesDir: string): Promise<SiteReport[]> {
  // Same rule as the server's registry: directories and symlinks to them are site folders.
  const entries = (await readdir(sitesDir, { withFileTypes: true })).filter((e) => (e.isDirectory() || e.isSymbolicLink()) && !e.name.startsWith('.'));
  const reports: SiteReport[] = [];
  for (const entry of entries.sort((a, b) => (a.name < b.name ? -1 : 1))) {
    reports.push(await checkSite(sitesDir, entry.name));
  }
  const index = buildHostIndex(reports.filter((r) => r.config).map((r) => ({ id: r.id, domains: r.config!.domains, aliases: r.config!.aliases })));
  for (const conflict of index.conflicts) {
    reports.find((r) => r.id === conflict.loser)?.issues.push({
      file: `sites/${conflict.loser}/${SITE_CONFIG_FILE}`,
      field: 'domains',
      reason: `host "${conflict.host}" is already claimed by site "${conflict.winner}"`,
    });
  }
  return reports;
}

export async function checkSite(sitesDir: string, id: string): Promise<SiteReport> {
  const file = `sites/${id}/${SITE_CONFIG_FILE}`;
  const report: SiteReport = { id, config: undefined, pages: 0, issues: [], warnings: [] };
  if (!isValidSiteId(id)) {
    report.issues.push({ file: `sites/${id}`, field: '', reason: 'folder name is not a valid site id (lowercase letters, digits and hyphens, 1-63 characters)' });
    return report;
  }
  let text: string;
  try {
    text = await readFile(join(sitesDir, id, SITE_CONFIG_FILE), 'utf8');
  } catch {
    report.issues.push({ file, field: '', reason: 'missing: every site folder needs a site.json' });
    return report;
  }
  const parsed = parseSiteConfig(text, file);
  if (!parsed.ok) {
    report.issues.push(...parsed.error.issues);
    return report;
  }
  report.config = parsed.config;
  const site: Site = { id, dir: join(sitesDir, id), config: parsed.config, cssFile: undefined, cssProblem: undefined, version: '' };
  const routes = await listPageRoutes(site);
  if (routes.length === 0) report.issues.push({ file: `sites/${id}/pages`, field: '', reason: 'no pages: add pages/index.md' });
  for (const route of routes) {
    report.pages++;
    const pageFile = `sites/${id}/pages/${route.file}`;
    const state = await parsePage(await readFile(join(sitesDir, id, 'pages', route.file), 'utf8'), pageFile, parsed.config.layout);
    if (state.kind === 'invalid') report.issues.push(...state.error.issues);
  }
  // A warning, not an error: the site works, but edits to the shadowed file never show.
  const pathOf = new Map(routes.map((r) => [r.file, routePath(r.segments)]));
  for (const { file, shadowedBy } of findShadowedPages(routes)) {
    report.warnings.push({
      file: `sites/${id}/pages/${file}`,
      field: '',
      reason: `never served: ${shadowedBy} answers ${pathOf.get(file)} instead; remove or rename one of them`,
    });
  }
  return report;
}

/**
 * Why `id` names no site under sitesDir, or undefined if it names one. For commands that take site
 * ids (`npm run css -- <id>`): a typo must not quietly produce output for a site that does not exist.
 */
export async function siteFolderProblem(sitesDir: string, id: string): Promise<string | undefined> {
  const dir = join(sitesDir, id);
  const isDir = await stat(dir).then((s) => s.isDirectory(), () => false);
  if (!isDir) return `no site folder ${dir}`;
  const hasConfig = await stat(join(dir, SITE_CONFIG_FILE)).then((s) => s.isFile(), () => false);
  if (!hasConfig) return `${dir} has no ${SITE_CONFIG_FILE}, so it is not a site`;
  return undefined;
}

export function formatReport(reports: SiteReport[]): string {
  const lines: string[] = [];
  for (const r of reports) {
    if (r.issues.length === 0) lines.push(`ok    ${r.id} (${r.pages} page${r.pages === 1 ? '' : 's'})`);
    else {
      lines.push(`FAIL  ${r.id}`);
      for (const issue of r.issues) lines.push(`      ${formatIssue(issue)}`);
    }
    for (const warning of r.warnings) lines.push(`      warning: ${formatIssue(warning)}`);
  }
  return lines.join('\n');
}
