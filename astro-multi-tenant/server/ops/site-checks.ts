import type { ContentIssue } from '../errors.ts';
import { SITE_CONFIG_FILE, parseSiteConfig } from '../sites/loader.ts';
import { siteSourceOf, type SiteSource } from '../sites/site-source.ts';

/**
 * Validates site.json of the given sites straight from disk, without touching the site cache (so
 * an operator opening the status page does not evict the sites visitors are using). At most
 * `limit` sites are read per call, a few at a time.
 */
export async function checkSiteConfigs(sites: string | SiteSource, ids: string[], limit: number): Promise<Map<string, { ok: boolean; issues: ContentIssue[] }>> {
  const source = siteSourceOf(sites);
  const results = new Map<string, { ok: boolean; issues: ContentIssue[] }>();
  const queue = ids.slice(0, limit);
  let cursor = 0;
  const work = async () => {
    while (cursor < queue.length) {
      const id = queue[cursor++]!;
      const file = `sites/${id}/${SITE_CONFIG_FILE}`;
      try {
        const read = await source.readConfig(id);
        if (read === null) {
          results.set(id, { ok: false, issues: [{ file, field: '', reason: 'missing: the site has no site.json (removed since the last scan?)' }] });
          continue;
        }
        if (read.refused !== undefined) {
          // Refused unread (a link out of the site folder, too large): say why, not "invalid JSON".
          results.set(id, { ok: false, issues: [{ file, field: '', reason: read.refused }] });
          continue;
        }
        const parsed = parseSiteConfig(read.text, file);
        results.set(id, parsed.ok ? { ok: true, issues: [] } : { ok: false, issues: parsed.error.issues });
      } catch (error) {
        results.set(id, { ok: false, issues: [{ file, field: '', reason: `cannot be read: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}` }] });
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(16, queue.length) }, work));
  return results;
}
