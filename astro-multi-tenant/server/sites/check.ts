import { realpath } from 'node:fs/promises';
import { join } from 'node:path';
import { formatIssue, type ContentIssue } from '../errors.ts';
import { terminalSafe } from '../cli/terminal-text.ts';
import { buildHostIndex } from '../tenant/host-index.ts';
import { createFileClaimStore } from '../tenant/host-claims.ts';
import { isValidSiteId } from '../tenant/resolve-host.ts';
import { parseSiteConfig, SITE_CONFIG_FILE, type Site } from './loader.ts';
import { findShadowedPages, listPageRoutes, MAX_PAGE_BYTES, parsePage } from './pages.ts';
import { readContainedText, refusalReason } from './contained-file.ts';
import { routePath } from './sitemap.ts';
import { siteSourceOf, type SiteSource } from './site-source.ts';
import type { SiteConfig } from './schema.ts';
import { componentCalls } from './page-body.ts';
import type { ComponentCallSite } from './check-components.ts';

export interface SiteReport {
  id: string;
  config: SiteConfig | undefined;
  pages: number;
  issues: ContentIssue[];
  /** Problems that do not stop the site from working (so do not fail the check), e.g. a page that is never served. */
  warnings: ContentIssue[];
  /** Every site component call in the site's valid pages, for the plan and name checks (check-components.ts). */
  componentCalls: ComponentCallSite[];
}

/**
 * Validates every site folder exactly as the server would load it. Lists through the site source,
 * like the server, so symlinked site folders are checked too; entries whose name is not a valid
 * site id are reported rather than skipped.
 *
 * A host two sites claim is reported against the newcomer, as the server decides it: `owners` are
 * the server's ownership records (host → site that already serves it, tenant/host-claims.ts); a
 * record whose site no longer lists its host is ignored (the server releases it), and a host with
 * no record goes to the first claimant by id, as the server records it.
 */
export async function checkSites(sites: string | SiteSource, options: { owners?: ReadonlyMap<string, string> } = {}): Promise<SiteReport[]> {
  const source = siteSourceOf(sites);
  const reports: SiteReport[] = [];
  for (const id of await source.listEntries()) reports.push(await checkSite(source, id));
  const claimed = reports.filter((r) => r.config).map((r) => ({ id: r.id, domains: r.config!.domains, aliases: r.config!.aliases }));
  const lists = new Map(claimed.map((c) => [c.id, c]));
  const owners = options.owners ?? new Map<string, string>();
  const ownerOf = (host: string) => {
    const owner = owners.get(host);
    const site = owner === undefined ? undefined : lists.get(owner);
    return site && (site.domains.includes(host) || site.aliases.includes(host)) ? owner : undefined;
  };
  const index = buildHostIndex(claimed, { ownerOf });
  for (const conflict of index.conflicts) {
    const loser = lists.get(conflict.loser);
    reports.find((r) => r.id === conflict.loser)?.issues.push({
      file: `sites/${conflict.loser}/${SITE_CONFIG_FILE}`,
      field: loser && !loser.domains.includes(conflict.host) ? 'aliases' : 'domains',
      reason: `host "${conflict.host}" is already claimed by site "${conflict.winner}", which serves it: this claim is refused until that site drops it`,
    });
  }
  return reports;
}

/**
 * The ownership records the server keeps for a sites folder (tenant/host-claims.ts), for
 * `checkSites`; empty when there are none yet or STATE_DIR cannot be used (the server then refuses
 * to start, so there is nothing to agree with).
 */
export async function readHostOwners(stateDir: string, sitesDir: string): Promise<Map<string, string>> {
  return createFileClaimStore({ dir: stateDir, sitesDir }).load().catch(() => new Map<string, string>());
}

export async function checkSite(sites: string | SiteSource, id: string): Promise<SiteReport> {
  const source = siteSourceOf(sites);
  const file = `sites/${id}/${SITE_CONFIG_FILE}`;
  const report: SiteReport = { id, config: undefined, pages: 0, issues: [], warnings: [], componentCalls: [] };
  if (!isValidSiteId(id)) {
    report.issues.push({ file: `sites/${id}`, field: '', reason: 'folder name is not a valid site id (lowercase letters, digits and hyphens, 1-63 characters)' });
    return report;
  }
  const read = await source.readConfig(id).catch(() => null);
  if (read === null) {
    report.issues.push({ file, field: '', reason: 'missing: every site folder needs a site.json' });
    return report;
  }
  const { text } = read;
  if (read.refused !== undefined) {
    report.issues.push({ file, field: '', reason: read.refused });
    return report;
  }
  const parsed = parseSiteConfig(text, file);
  if (!parsed.ok) {
    report.issues.push(...parsed.error.issues);
    return report;
  }
  report.config = parsed.config;
  const dir = source.siteDir(id);
  const site: Site = { id, dir, config: parsed.config, cssFile: undefined, cssProblem: undefined, version: '' };
  const routes = await listPageRoutes(site);
  if (routes.length === 0) report.issues.push({ file: `sites/${id}/pages`, field: '', reason: 'no pages: add pages/index.md' });
  // Pages are read as the server reads them (contained-file.ts): the same size limit, checked
  // before reading, and never a file outside the site folder.
  const realDir = await realpath(dir);
  for (const route of routes) {
    report.pages++;
    const pageFile = `sites/${id}/pages/${route.file}`;
    const read = await readContainedText(join(dir, 'pages', route.file), realDir, { maxBytes: MAX_PAGE_BYTES });
    if (read.kind === 'missing') continue;
    if (read.kind === 'refused') {
      report.issues.push({ file: pageFile, field: '', reason: refusalReason(read) });
      continue;
    }
    const state = await parsePage(read.text, pageFile, parsed.config.layout);
    if (state.kind === 'invalid') report.issues.push(...state.error.issues);
    else if (state.kind === 'page') for (const call of componentCalls(state.page.segments)) report.componentCalls.push({ file: pageFile, name: call.component, line: call.line });
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
export function siteFolderProblem(sites: string | SiteSource, id: string): Promise<string | undefined> {
  return siteSourceOf(sites).siteProblem(id);
}

/**
 * The report `sites check` prints. Everything in it that came from a site folder (folder and file
 * names, field values, parser messages) goes through terminalSafe: one line per finding, and no
 * tenant text can send escape sequences to the operator's terminal.
 */
export function formatReport(reports: SiteReport[]): string {
  const lines: string[] = [];
  for (const r of reports) {
    const id = terminalSafe(r.id);
    if (r.issues.length === 0) lines.push(`ok    ${id} (${r.pages} page${r.pages === 1 ? '' : 's'})`);
    else {
      lines.push(`FAIL  ${id}`);
      for (const issue of r.issues) lines.push(`      ${terminalSafe(formatIssue(issue))}`);
    }
    for (const warning of r.warnings) lines.push(`      warning: ${terminalSafe(formatIssue(warning))}`);
  }
  return lines.join('\n');
}
