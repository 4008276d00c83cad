import { join } from 'node:path';
import { readContainedText } from './contained-file.ts';
import { splitFrontmatter } from './markdown.ts';
import { MAX_PAGE_BYTES, type PageRoute } from './pages.ts';
import { frontmatterSchema, type Frontmatter } from './schema.ts';
import type { Site } from './loader.ts';

/** A page's frontmatter, read without rendering its body, and when its file last changed (ms since the epoch). */
export interface PageFrontmatter {
  frontmatter: Frontmatter;
  modifiedMs: number;
}

/** Reads a route's frontmatter (the sitemap's source); injectable for tests. */
export type FrontmatterReader = (site: Site, route: PageRoute) => Promise<PageFrontmatter | null>;

/**
 * One page file's frontmatter, validated as the page loader validates it, with the Markdown body
 * never parsed: what the sitemap needs, at the cost of a read and a YAML parse, whatever the body
 * holds (docs/security.md: a site's Markdown cannot stall a worker). The file is read as pages are
 * (contained-file.ts): never through a link leading outside the site folder, never over
 * MAX_PAGE_BYTES. `null` for a file that is missing, refused, or whose frontmatter does not
 * validate: such a page is no page to list.
 */
export const readPageFrontmatter: FrontmatterReader = async (site, route) => {
  const read = await readContainedText(join(site.dir, 'pages', route.file), site.dir, { maxBytes: MAX_PAGE_BYTES });
  if (read.kind !== 'text') return null;
  const doc = splitFrontmatter(read.text);
  if (doc.yamlError) return null;
  const parsed = frontmatterSchema.safeParse(doc.data);
  return parsed.success ? { frontmatter: parsed.data, modifiedMs: read.stats.mtimeMs } : null;
};
