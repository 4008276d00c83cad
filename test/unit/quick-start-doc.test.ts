import { describe, expect, it } from 'vitest';
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { servingLine } from '../../astro-multi-tenant/server/cli/serving-line.ts';
import { createSiteRegistry } from '../../astro-multi-tenant/server/tenant/registry.ts';

const ROOT = resolve(import.meta.dirname, '../..');

async function quickStart(): Promise<string> {
  const readme = await readFile(join(ROOT, 'README.md'), 'utf8');
  const start = readme.indexOf('## Quick start\n');
  expect(start).toBeGreaterThan(-1);
  return readme.slice(start, readme.indexOf('\n## ', start + 1));
}

describe('README quick start', () => {
  it('shows the line npm start prints for the sample sites on the defaults, word for word', async () => {
    const registry = createSiteRegistry({ sitesDir: join(ROOT, 'sites'), platformDomain: 'localhost', rescanIntervalMs: 0, follow: false });
    await registry.scan();
    const expected = servingLine({ siteIds: registry.siteIds, platformDomain: 'localhost', port: 4321, host: undefined, sitesDir: join(ROOT, 'sites') });
    expect(expected).toContain('serving 5 sites');
    expect((await quickStart()).split('\n')).toContain(expected);
  });

  it('installs in one apt-get line, without sudo, every system package CI installs', async () => {
    const section = await quickStart();
    const aptLines = section.split('\n').filter((l) => /\bapt-get install\b/.test(l));
    expect(aptLines).toHaveLength(1);
    expect(aptLines[0]).not.toMatch(/\bsudo\b/);
    const ci = await readFile(join(ROOT, '.ci/run'), 'utf8');
    const packages = [...ci.matchAll(/need\+=\(([\w-]+)\)/g)].map((m) => m[1]!);
    expect(packages.length).toBeGreaterThan(0);
    for (const name of packages) expect(aptLines[0], name).toMatch(new RegExp(`\\b${name}\\b`));
    // It says how to run it without being root.
    expect(section).toMatch(/as root, or prefix `apt-get` with `sudo`/);
  });

  it('says scripts run the project Node 24, and what the system node does with a .ts file', async () => {
    const section = await quickStart();
    expect(section).toContain('ERR_UNKNOWN_FILE_EXTENSION');
    expect(section).toMatch(/`npm run <script>`/);
    expect(section).toMatch(/`npx /);
    expect(section).toContain('EBADENGINE');
  });
});
