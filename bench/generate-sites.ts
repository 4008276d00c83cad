import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * The Markdown page every generated site has (pages/index.md): a typical content page, the same
 * on every site but for its last line (pageMarkdown), so no two sites share rendered Markdown.
 */
export const PAGE_MARKDOWN = `---
title: Welcome
description: A generated page for the benchmark, the same on every site.
---

Thanks for stopping by. This page is **the same on every one of the generated sites** but for its
last line, so every scenario of the benchmark renders the same content with the same layout.

## What we do

We make small things well. A few of them:

- Hand-planed cutting boards, oiled and *ready to use*
- Brass hooks, coat racks and [other hardware](/hardware)
- Repairs, sharpening and advice, free for anything we sold

> Buy once, keep it forever. If it breaks, bring it back and we fix it.

## Opening hours

| Day | Hours |
| --- | --- |
| Monday to Friday | 9:00 – 18:00 |
| Saturday | 10:00 – 16:00 |
| Sunday | closed |

## Getting here

1. Take the tram to *Market Square*.
2. Walk two blocks north, past the fountain.
3. We are the green door next to the bakery.

\`\`\`text
Workshop · 12 Long Street · open most days
\`\`\`

Questions? Write to [hello@example.com](mailto:hello@example.com) and we answer within a day.
`;

/** Site `index`'s page: its own last line makes its text (and any cache key derived from it) unique. */
export function pageMarkdown(index: number): string {
  return `${PAGE_MARKDOWN}\nThis is site number ${index}.\n`;
}

export function siteId(index: number): string {
  return `site-${String(index).padStart(5, '0')}`;
}

export function siteHost(index: number): string {
  return `${siteId(index)}.bench.test`;
}

/**
 * Writes `count` site folders (site-00000 …) into `dir`, each with a site.json naming one domain
 * and the same pages/index.md. Bounded concurrency keeps ten thousand folders to a few seconds.
 */
export async function generateSites(dir: string, count: number): Promise<void> {
  await mkdir(dir, { recursive: true });
  let next = 0;
  const worker = async () => {
    while (next < count) {
      const index = next++;
      const folder = join(dir, siteId(index));
      await mkdir(join(folder, 'pages'), { recursive: true });
      const config = { name: `Bench Site ${String(index).padStart(5, '0')}`, domains: [siteHost(index)] };
      await writeFile(join(folder, 'site.json'), `${JSON.stringify(config, null, 2)}\n`);
      await writeFile(join(folder, 'pages', 'index.md'), pageMarkdown(index));
    }
  };
  await Promise.all(Array.from({ length: 32 }, worker));
}
