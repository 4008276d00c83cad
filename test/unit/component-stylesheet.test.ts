import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createComponentStylesheets } from '../../astro-multi-tenant/server/css/component-stylesheet.ts';
import { listSiteComponentFiles } from '../../astro-multi-tenant/server/components/site-component-files.ts';
import { ComponentError, type ComponentLoader } from '../../astro-multi-tenant/server/components/component-loader.ts';

/**
 * A loader whose components' CSS is `css[name]` (under the scope `name`, from the file `name`:
 * the stylesheet shows `/* name *\/` before each); a name in `broken` throws as a compile error.
 * `loads` counts the loads.
 */
function fakeLoader(css: Record<string, string>, broken: Set<string>, loads = { count: 0 }): ComponentLoader {
  const load = async (name: string) => {
    loads.count++;
    if (broken.has(name)) throw new ComponentError('compile', { file: `sites/s/components/${name}.astro`, line: 1, column: 1 }, 'broken');
    return { name, kind: 'component' as const, file: name, factory: () => (() => '') as never, css: css[name] ? [{ scope: name, file: name, code: css[name] }] : [], version: name };
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
    expect(made?.css).toBe('/* landing */\n.hero{color:green}\n/* Badge */\n.badge{color:blue}\n/* Price */\n.price{color:red}');
    expect(await stylesheets.read(site(), made!.file)).toBe(made!.css);
    expect(await stylesheets.read(site(), 'components.0000000000000000.css')).toBeUndefined();
    expect(await stylesheets.read(site(), 'site.0000000000000000.css')).toBeUndefined();
  });

  it('leaves out a component that does not compile, so the others keep their styles', async () => {
    broken.add('Badge');
    clock += 500;
    const made = await stylesheets.current(site());
    expect(made?.css).toBe('/* landing */\n.hero{color:green}\n/* Price */\n.price{color:red}');
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

describe('the stylesheet of a site’s own components, against a site owner who writes too much', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'amt-component-css-bounds-'));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  async function siteWith(id: string, names: string[]): Promise<{ id: string; dir: string }> {
    await mkdir(join(dir, id, 'components'), { recursive: true });
    for (const name of names) await writeFile(join(dir, id, 'components', `${name}.astro`), '');
    return { id, dir: join(dir, id) };
  }
  const failure = (promise: Promise<unknown>) => promise.then(() => undefined, (e: unknown) => e as ComponentError);

  it('refuses a site with more component files than the limit, naming the limit, without loading any of them', async () => {
    const site = await siteWith('many', Array.from({ length: 300 }, (_, i) => `C${i}`));
    const loads = { count: 0 };
    const stylesheets = createComponentStylesheets({ loader: fakeLoader({ C1: '.a{}' }, new Set(), loads), checkIntervalMs: 500, now: () => 0 });
    const error = await failure(stylesheets.current(site));
    expect(error).toBeInstanceOf(ComponentError);
    expect(error?.message).toBe('sites/many/components: the site has more than 256 component and layout files, the most a site may have: the site’s component stylesheet is not made and its pages that use components answer 503'.replace('’', "'"));
    expect(loads.count).toBe(0);
    // Remembered until the next check: asking again lists nothing and loads nothing.
    expect(await failure(stylesheets.read(site, 'components.0000000000000000.css'))).toBe(error);
  });

  it('lists a site’s component files no further than the limit: past it, the names are cut short and flagged', async () => {
    const site = await siteWith('listed', Array.from({ length: 300 }, (_, i) => `L${i}`));
    const listed = await listSiteComponentFiles(site.dir, 10);
    expect(listed.more).toBe(true);
    expect(listed.components.length).toBe(11);
    expect(await listSiteComponentFiles(site.dir, 300)).toEqual({ components: Array.from({ length: 300 }, (_, i) => `L${i}`).sort(), layouts: [], more: false });
  });

  it('stops making a text past its byte limit, one component at a time, naming the limit and the file', async () => {
    const site = await siteWith('wide', ['A', 'B', 'C', 'D']);
    const loads = { count: 0 };
    const css = { A: 'a'.repeat(400), B: 'b'.repeat(400), C: 'c'.repeat(400), D: 'd'.repeat(400) };
    const stylesheets = createComponentStylesheets({ loader: fakeLoader(css, new Set(), loads), checkIntervalMs: 500, now: () => 0, maxBytes: 1024 });
    const error = await failure(stylesheets.current(site));
    expect(error?.message).toContain('sites/wide/components: the styles of its components and layouts come to more than 1 KiB (at C)');
    expect(loads.count).toBe(3);
  });

  it('keeps at most its byte bound of text over all sites: the least recently made site goes first, and is made again when asked', async () => {
    const loads = { count: 0 };
    const css = { A: 'a'.repeat(600) };
    let clock = 0;
    const stylesheets = createComponentStylesheets({ loader: fakeLoader(css, new Set(), loads), checkIntervalMs: 500, now: () => clock, maxHeldBytes: 1000 });
    const one = await siteWith('one', ['A']);
    const two = await siteWith('two', ['A']);
    await stylesheets.current(one);
    expect(loads.count).toBe(1);
    await stylesheets.current(one);
    expect(loads.count).toBe(1);
    await stylesheets.current(two);
    expect(loads.count).toBe(2);
    // Within the check interval, but one's text was dropped to keep two's under the bound.
    clock += 100;
    expect((await stylesheets.current(one))?.css).toContain('aaa');
    expect(loads.count).toBe(3);
  });
});
