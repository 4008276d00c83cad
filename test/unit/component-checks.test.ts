import { describe, it, expect, beforeEach, afterEach } from 'vitest';
import { mkdir, mkdtemp, realpath, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createComponentChecks } from '../../astro-multi-tenant/server/components/component-checks.ts';
import { createComponentLoader } from '../../astro-multi-tenant/server/components/component-loader.ts';
import { createContentCache } from '../../astro-multi-tenant/server/sites/content-cache.ts';
import { formatIssue, type ContentIssue } from '../../astro-multi-tenant/server/errors.ts';
import { componentIssues } from '../../astro-multi-tenant/server/sites/check-components.ts';
import { DEFAULT_PLAN_WITHOUT_FILE } from '../../astro-multi-tenant/server/plans/plans-file.ts';
import { compileComponent } from '../../astro-multi-tenant/server/components/compile-component.ts';

let root: string;
beforeEach(async () => {
  root = await realpath(await mkdtemp(join(tmpdir(), 'amt-component-checks-')));
  for (const id of ['allowed', 'not-allowed', 'clean']) await mkdir(join(root, id, 'components'), { recursive: true });
  await writeFile(join(root, 'allowed', 'components', 'Evil.astro'), `---\nimport fs from 'node:fs';\n---\n<p />`);
  await writeFile(join(root, 'not-allowed', 'components', 'Evil.astro'), `---\nimport fs from 'node:fs';\n---\n<p />`);
  await writeFile(join(root, 'clean', 'components', 'Fine.astro'), `<p>fine</p>`);
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('component problems on the status page', () => {
  it('adds the file:line:column of a component problem to sites whose plan allows components, and compiles nothing of the others', async () => {
    const compiled: string[] = [];
    const loader = createComponentLoader({
      cache: createContentCache({ maxEntries: 100, maxBytes: 1 << 24, checkIntervalMs: 0 }),
      sharedDir: resolve(import.meta.dirname, '../../shared-components'),
      compile: async (file, source) => {
        compiled.push(file.area === 'site' ? file.site : 'shared');
        const { compileComponent } = await import('../../astro-multi-tenant/server/components/compile-component.ts');
        return compileComponent(source, file);
      },
    });
    const check = createComponentChecks({ loader, siteDir: async (id) => join(root, id), allowed: (id) => id !== 'not-allowed' });
    const ok = { ok: true, issues: [] as ContentIssue[] };
    const results = await check(new Map([['allowed', ok], ['not-allowed', ok], ['clean', ok]]));
    expect(results.get('allowed')!.ok).toBe(false);
    expect(results.get('allowed')!.issues.map(formatIssue)).toEqual([expect.stringMatching(/^sites\/allowed\/components\/Evil\.astro:2:17: imports "node:fs", a Node\.js built-in module/)]);
    expect(results.get('not-allowed')).toEqual(ok);
    expect(results.get('clean')).toEqual(ok);
    expect(compiled).not.toContain('not-allowed');
  });
});

describe('a site with more component files than a site may have (256)', () => {
  function countingLoader(compiled: string[]) {
    return createComponentLoader({
      cache: createContentCache({ maxEntries: 1000, maxBytes: 1 << 26, checkIntervalMs: 0 }),
      sharedDir: resolve(import.meta.dirname, '../../shared-components'),
      compile: async (file, source) => {
        compiled.push(file.path);
        return compileComponent(source, file);
      },
    });
  }
  beforeEach(async () => {
    for (let i = 0; i < 300; i++) await writeFile(join(root, 'allowed', 'components', `Many${i}.astro`), `<p>${i}</p>`);
  });

  it('is reported on the status page with the count, and none of its files is compiled', async () => {
    const compiled: string[] = [];
    const check = createComponentChecks({ loader: countingLoader(compiled), siteDir: async (id) => join(root, id), allowed: () => true });
    const results = await check(new Map([['allowed', { ok: true, issues: [] as ContentIssue[] }]]));
    expect(results.get('allowed')!.issues.map(formatIssue)).toEqual(['sites/allowed/components: the site has more than 256 component and layout files, the most a site may have']);
    expect(compiled).toEqual([]);
  });

  it('is reported by sites check with the count, and none of its files is compiled', async () => {
    const compiled: string[] = [];
    const issues = await componentIssues({ id: 'allowed', dir: join(root, 'allowed') }, [], { name: 'studio', limits: DEFAULT_PLAN_WITHOUT_FILE }, countingLoader(compiled));
    expect(issues.map(formatIssue)).toEqual(['sites/allowed/components: the site has more than 256 component and layout files, the most a site may have; the server answers 503 for its pages that use components']);
    expect(compiled).toEqual([]);
  });
});
