import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createPageComponents, siteComponentFailure } from '../../astro-multi-tenant/server/render/page-components.ts';
import type { ComponentLoader, LoadedComponent } from '../../astro-multi-tenant/server/components/component-loader.ts';
import { DEFAULT_PLAN, DEFAULT_PLAN_WITHOUT_FILE } from '../../astro-multi-tenant/server/plans/plans-file.ts';
import { ContentError } from '../../astro-multi-tenant/server/errors.ts';
import type { Page } from '../../astro-multi-tenant/server/sites/pages.ts';
import type { Site } from '../../astro-multi-tenant/server/sites/loader.ts';

const loaded = (name: string, kind: LoadedComponent['kind'] = 'component'): LoadedComponent => ({ name, kind, file: `sites/s/${kind === 'layout' ? 'layouts' : 'components'}/${name}.astro`, factory: () => (() => '') as never, css: [], version: `v-${name}` });

/** A loader that knows the components and layouts it is given, and counts what it is asked. */
function fakeLoader(components: string[], layouts: string[] = []) {
  const asked: string[] = [];
  const loader: ComponentLoader = {
    async component(_site, name) {
      asked.push(name);
      return components.includes(name) ? loaded(name) : undefined;
    },
    async layout(_site, name) {
      asked.push(`layout:${name}`);
      return layouts.includes(name) ? loaded(name, 'layout') : undefined;
    },
    async css() {
      return '';
    },
    async check() {
      return [];
    },
  };
  return { loader, asked };
}

function pageCalling(...names: string[]): Page {
  return {
    file: 'sites/s/pages/index.md',
    path: 'index.md',
    bytes: 10,
    frontmatter: { title: 'T' } as Page['frontmatter'],
    layout: 'page',
    html: names.length ? '' : '<p>x</p>',
    segments: names.length ? names.map((component, i) => ({ component, props: {}, line: 5 + i })) : [{ html: '<p>x</p>' }],
    components: [...new Set(names)].sort(),
    version: '',
    modifiedMs: 0,
  };
}

describe('a page’s site components and layout, resolved before the render', () => {
  let dir: string;
  let site: Site;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'amt-page-components-'));
    await mkdir(join(dir, 'layouts'));
    await writeFile(join(dir, 'layouts', 'landing.astro'), '<slot />');
    site = { id: 's', dir, config: {} as Site['config'], cssFile: undefined, cssProblem: undefined, version: '' };
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  const on = (plan: typeof DEFAULT_PLAN, loader: ComponentLoader | undefined) =>
    createPageComponents({ loader, stylesheets: undefined, planFor: () => ({ name: plan.components ? 'studio' : 'default', limits: plan }), checkIntervalMs: 500 });

  it('gives the loaded components and the site layout with their versions, on a plan that allows them', async () => {
    const { loader } = fakeLoader(['Price'], ['page']);
    const resolved = await on(DEFAULT_PLAN_WITHOUT_FILE, loader)(site, pageCalling('Price'));
    expect(Object.keys(resolved.components ?? {})).toEqual(['Price']);
    expect(resolved.siteLayout?.name).toBe('page');
    expect(resolved.version).toBe('v-page|v-Price|');
  });

  it('refuses a call on a plan without "components", naming the page, the line, the name and the plan, and never loads it', async () => {
    const { loader, asked } = fakeLoader(['Price']);
    const error = await on(DEFAULT_PLAN, loader)(site, pageCalling('Price')).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ContentError);
    expect((error as ContentError).issues).toEqual([
      { file: 'sites/s/pages/index.md', field: 'body', reason: expect.stringMatching(/^line 5: calls the site component "Price", but the site's plan "default" does not allow site components and layouts/) },
    ]);
    expect(asked).toEqual([]);
  });

  it('refuses a page of a layout the site replaces on a plan without "components", and serves the others', async () => {
    const resolve = on(DEFAULT_PLAN, fakeLoader([]).loader);
    const landing = { ...pageCalling(), layout: 'landing' as const };
    await expect(resolve(site, landing)).rejects.toThrow(/uses the site layout sites\/s\/layouts\/landing\.astro, but the site's plan "default"/);
    expect(await resolve(site, pageCalling())).toEqual({ version: '' });
  });

  it('refuses a call of a component the site does not have, naming its file', async () => {
    await expect(on(DEFAULT_PLAN_WITHOUT_FILE, fakeLoader(['Price']).loader)(site, pageCalling('Price', 'Nowhere'))).rejects.toThrow(
      /line 6: calls the component "Nowhere", but sites\/s\/components\/Nowhere\.astro does not exist/,
    );
  });

  it('says when the server loads no components at all', async () => {
    await expect(on(DEFAULT_PLAN_WITHOUT_FILE, undefined)(site, pageCalling('Price'))).rejects.toThrow(/this server loads no site components/);
  });
});

describe('a render failure traced to a site component', () => {
  const page = pageCalling('Boom');

  it('names the component file from its compiled frames, through the error’s causes', () => {
    const cause = new Error('render failed on purpose');
    cause.stack = 'Error: render failed on purpose\n    at eval (component:sites/s/components/Boom.astro:13:8)\n    at render (file:///dist/server/chunk.mjs:1:1)';
    const failure = siteComponentFailure(new Error('view "page" failed while rendering', { cause }), 's', page);
    expect(failure?.issues).toEqual([{ file: 'sites/s/components/Boom.astro', field: '', reason: 'threw while rendering sites/s/pages/index.md: render failed on purpose' }]);
  });

  it('leaves a failure of another site’s or the platform’s code alone', () => {
    const other = new Error('x');
    other.stack = 'Error: x\n    at eval (component:sites/other/components/Boom.astro:1:1)';
    expect(siteComponentFailure(other, 's', page)).toBeUndefined();
    expect(siteComponentFailure(new Error('plain failure'), 's', page)).toBeUndefined();
  });
});
