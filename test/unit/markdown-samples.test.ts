import { readdir, readFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { renderMarkdown, splitFrontmatter } from '../../astro-multi-tenant/server/sites/markdown.ts';
import { decodeBody } from '../../astro-multi-tenant/server/sites/page-body.ts';

const SITES = join(import.meta.dirname, '../../sites');

async function pageFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await pageFiles(path)));
    else if (entry.name.endsWith('.md')) out.push(path);
  }
  return out.sort();
}

/**
 * The sample sites' pages, rendered: pinned so that any change to the Markdown pipeline (a new
 * parser, a new way of running it) shows up as a diff of real pages, not only of the unit cases.
 */
describe('the sample pages render exactly as pinned', async () => {
  const files = (await Promise.all((await readdir(SITES)).map((site) => pageFiles(join(SITES, site, 'pages'))))).flat();

  it('finds the sample pages', () => {
    expect(files.length).toBeGreaterThanOrEqual(10);
  });

  for (const file of files) {
    it(relative(SITES, file), async () => {
      const { body } = splitFrontmatter(await readFile(file, 'utf8'));
      const rendered = await renderMarkdown(body);
      // A body calling site components is segments (page-body.ts): pinned decoded, so the snapshot stays text.
      expect(rendered.startsWith('\u0000') ? decodeBody(rendered) : rendered).toMatchSnapshot();
    });
  }
});
