import { opendir } from 'node:fs/promises';
import { join } from 'node:path';
import type { LayoutName } from '../sites/schema.ts';
import { isComponentName, isLayoutName, MAX_SITE_COMPONENT_FILES } from './component-file.ts';

/**
 * The site's component and layout names, by file name in their folders (misnamed files are not
 * components), sorted. The folders are read entry by entry and no further than `max` names in
 * all: past it, `more` is true and the names are not complete (a folder of a million files costs
 * no more than one of 257).
 */
export async function listSiteComponentFiles(siteDir: string, max = MAX_SITE_COMPONENT_FILES): Promise<{ components: string[]; layouts: LayoutName[]; more: boolean }> {
  const components: string[] = [];
  const layouts: LayoutName[] = [];
  const full = () => components.length + layouts.length > max;
  const scan = async (folder: string, keep: (name: string) => void) => {
    let dir;
    try {
      dir = await opendir(join(siteDir, folder), { bufferSize: 64 });
    } catch {
      return;
    }
    // Leaving the loop early closes the folder.
    for await (const entry of dir) {
      if (!entry.name.endsWith('.astro')) continue;
      keep(entry.name.slice(0, -'.astro'.length));
      if (full()) break;
    }
  };
  await scan('layouts', (name) => isLayoutName(name) && layouts.push(name));
  if (!full()) await scan('components', (name) => isComponentName(name) && components.push(name));
  return { components: components.sort(), layouts: layouts.sort(), more: full() };
}

/** The words for a site over MAX_SITE_COMPONENT_FILES (the server's log and `sites check`). */
export function tooManyFiles(max = MAX_SITE_COMPONENT_FILES): string {
  return `the site has more than ${max} component and layout files, the most a site may have`;
}
