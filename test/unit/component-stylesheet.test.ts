import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createComponentStylesheets } from '../../astro-multi-tenant/server/css/component-stylesheet.ts';
import { ComponentError, type ComponentLoader } from '../../astro-multi-tenant/server/components/component-loader.ts';

/**
 * A loader whose components' CSS is `css[name]`; a name in `broken` throws as a compile error.
 * `css()` joins the CSS of the names it is given, as the real loader does.
 */
function fakeLoader(css: Record<string, string>, broken: Set<string>): ComponentLoader {
  const load = async (name: string) => {
    if (broken.has(name)) throw new ComponentError('compile', { file: `sites/s/components/${name}.astro`, line: 1, column: 1 }, 'broken');
    return { name, kind: 'component' as const, file: name, factory: () => (() => '') as never, css: [], version: name };
  };
  return {
    component: (_site, name) => load(name),
    layout: (_site, name) => load(name),
    async css(_site, names) {
      return [...(names?.components ?? []), ...(names?.layouts ?? [])].map((n) => css[n] ?? '').join('\n');
    },
    async check() {
      return [];
    },
  };
}

describe('the stylesheet of a site’s own components', () => {
  let dir: string;
  const css: Record<string, string> = { Price: '.price{color:red}', Badge: '.badge{color:blue}', landing: '.hero{color:green}' };
  const broken = new Set<string>();
  let clock = 0;
  const stylesheets = createComponentStylesheets({ loader: fakeLoader(css, broken), checkIntervalMs: 500, now: () => clock });
  const site = () => ({ id: 's', dir });

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'amt-component-css-'));
    await mkdir(join(dir, 'components'));
    await mkdir(join(dir, 'layouts'));
    for (const name of ['Price', 'Badge', 'lowercase']) await writeFile(join(dir, 'components', `${name}.astro`), '');
    await writeFile(join(dir, 'layouts', 'landing.astro'), '');
    await writeFile(join(dir, 'layouts', 'unknown.astro'), '');
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('holds every component and layout of the site under a name hashed from its text', async () => {
    const made = await stylesheets.current(site());
    expect(made?.file).toMatch(/^components\.[0-9a-f]{16}\.css$/);
    expect(made?.css).toBe('.badge{color:blue}\n.price{color:red}\n.hero{color:green}');
    expect(await stylesheets.read(site(), made!.file)).toBe(made!.css);
    expect(await stylesheets.read(site(), 'components.0000000000000000.css')).toBeUndefined();
    expect(await stylesheets.read(site(), 'site.0000000000000000.css')).toBeUndefined();
  });

  it('leaves out a component that does not compile, so the others keep their styles', async () => {
    broken.add('Badge');
    clock += 500;
    const made = await stylesheets.current(site());
    expect(made?.css).toBe('.price{color:red}\n.hero{color:green}');
    broken.clear();
  });

  it('makes the text again only after the check interval, and still answers for the name before', async () => {
    const before = await stylesheets.current(site());
    css.Price = '.price{color:purple}';
    clock += 100;
    expect((await stylesheets.current(site()))?.file).toBe(before?.file);
    clock += 500;
    const after = await stylesheets.current(site());
    expect(after?.file).not.toBe(before?.file);
    expect(after?.css).toContain('purple');
    expect(await stylesheets.read(site(), before!.file)).toBe(before!.css);
  });
});
