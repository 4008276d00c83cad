import { cp, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { SAMPLE_SITES } from './server.ts';

/**
 * Adds site `id` to a test's sites folder: a copy of the sample bakery (pages, public files)
 * whose site.json has these fields instead (`domains`, `aliases`, `name`, an invalid `layout`…);
 * aliases default to none. A folder added while a server runs is picked up like any new site.
 */
export async function addSite(sitesDir: string, id: string, fields: Record<string, unknown>): Promise<void> {
  await cp(join(SAMPLE_SITES, 'bakery'), join(sitesDir, id), { recursive: true });
  const config = JSON.parse(await readFile(join(sitesDir, id, 'site.json'), 'utf8')) as Record<string, unknown>;
  await writeFile(join(sitesDir, id, 'site.json'), JSON.stringify({ ...config, aliases: [], ...fields }));
}
