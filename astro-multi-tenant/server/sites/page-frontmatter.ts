import { join } from 'node:path';
import { readContainedPrefix } from './contained-file.ts';
import { MAX_FRONTMATTER_CHARS, splitFrontmatter } from './markdown.ts';
import { MAX_PAGE_BYTES, type PageRoute } from './pages.ts';
import { frontmatterSchema, type Frontmatter } from './schema.ts';
import type { Site } from './loader.ts';

/** A page's frontmatter, read without rendering its body, and when its file last changed (ms since the epoch). */
export interface PageFrontmatter {
  frontmatter: Frontmatter;
  modifiedMs: number;
}

/** Enough bytes for the longest frontmatter block allowed (4 bytes a character at most) and its delimiters. */
export const FRONTMATTER_PREFIX_BYTES = MAX_FRONTMATTER_CHARS * 4 + 64;

/** Reads a route's frontmatter (the sitemap's source); injectable for tests. */
export type FrontmatterReader = (site: Site, route: PageRoute) => Promise<PageFrontmatter | null>;

/**
 * One page file's frontmatter, validated as the page loader validates it, with the Markdown body
 * never parsed: what the sitemap needs, at the cost of a read and a YAML parse, whatever the body
 * holds (docs/security.md: a site's Markdown cannot stall a worker). The file is opened as pages are
 * (contained-file.ts): never through a link leading outside the site folder, never over
 * MAX_PAGE_BYTES, and only its first FRONTMATTER_PREFIX_BYTES are read (a frontmatter block longer
 * than MAX_FRONTMATTER_CHARS is refused anyway), so a sitemap of 1 MiB pages reads kilobytes. `null` for a file that is missing, refused, or whose frontmatter does not
 * validate: such a page is no page to list.
 */
export const readPageFrontmatter: FrontmatterReader = async (site, route) => {
  const read = await readContainedPrefix(join(site.dir, 'pages', route.file), site.dir, { maxBytes: MAX_PAGE_BYTES, prefixBytes: FRONTMATTER_PREFIX_BYTES });
  if (read.kind !== 'text') return null;
  const doc = splitFrontmatter(read.text);
  if (doc.yamlError) return null;
  const parsed = frontmatterSchema.safeParse(doc.data);
  return parsed.success ? { frontmatter: parsed.data, modifiedMs: read.stats.mtimeMs } : null;
};
