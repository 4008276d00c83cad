import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { copySites, get, removeDir, startServer, type RunningServer } from '../helpers/server.ts';

/**
 * The status page lists a site's component problems with file:line:column (issue 15), for sites
 * whose plan allows components; a site without the flag is never compiled, so none are listed.
 */
describe('component problems on the status page', () => {
  let server: RunningServer;
  let sitesDir: string;

  beforeAll(async () => {
    sitesDir = await copySites();
    for (const id of ['studio', 'basic']) {
      await mkdir(join(sitesDir, id, 'components'), { recursive: true });
      await mkdir(join(sitesDir, id, 'pages'), { recursive: true });
      await writeFile(join(sitesDir, id, 'site.json'), JSON.stringify({ name: id, domains: [`${id}.example`] }));
      await writeFile(join(sitesDir, id, 'pages', 'index.md'), '---\ntitle: Home\n---\n\nText.\n');
      await writeFile(join(sitesDir, id, 'components', 'Reader.astro'), `---\nconst note = 'reads a file';\nimport { readFileSync } from 'node:fs';\n---\n<p>{note}</p>\n`);
      await writeFile(join(sitesDir, id, 'components', 'Unclosed.astro'), `<section>\n  <p>open</section>\n`);
    }
    const plans = join(sitesDir, 'plans.json');
    await writeFile(plans, JSON.stringify({ plans: { studio: { components: true } }, sites: { studio: 'studio' } }));
    server = await startServer(sitesDir, { PLANS_FILE: plans });
  }, 60_000);

  afterAll(async () => {
    await server?.stop();
    await removeDir(sitesDir);
  });

  it("lists a site's forbidden import and compile error with file:line:column, and nothing of a site whose plan does not allow components", async () => {
    const html = await get(server.port, 'localhost', '/_platform/status');
    expect(html.status).toBe(200);
    expect(html.body).toContain('sites/studio/components/Reader.astro:3:31: imports &quot;node:fs&quot;, a Node.js built-in module');
    expect(html.body).toMatch(/sites\/studio\/components\/Unclosed\.astro:2:\d+: /);
    expect(html.body).not.toContain('sites/basic/components/');
    const json = JSON.parse((await get(server.port, 'localhost', '/_platform/status.json')).body) as { sites?: unknown };
    expect(JSON.stringify(json)).toContain('sites/studio/components/Reader.astro:3:31');
  });
});
