import { describe, it, expect, beforeEach, afterEach } from 'vitest';
import { mkdir, mkdtemp, readdir, realpath, rm, symlink, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { experimental_AstroContainer } from 'astro/container';
import * as runtime from 'astro/compiler-runtime';
import { createComponentLoader, type ComponentLoader, type ComponentSite } from '../../astro-multi-tenant/server/components/component-loader.ts';
import { ComponentError } from '../../astro-multi-tenant/server/components/component-error.ts';
import { createCompileCache, componentCompilerId } from '../../astro-multi-tenant/server/components/compile-cache.ts';
import { createContentCache } from '../../astro-multi-tenant/server/sites/content-cache.ts';

const SHARED = resolve(import.meta.dirname, '../../shared-components');

let root: string;
let site: ComponentSite;
beforeEach(async () => {
  root = await realpath(await mkdtemp(join(tmpdir(), 'amt-components-')));
  site = { id: 'acme', dir: join(root, 'acme') };
  await mkdir(join(site.dir, 'components'), { recursive: true });
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

async function put(relative: string, text: string, mtime?: Date): Promise<void> {
  const path = join(site.dir, relative);
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, text);
  if (mtime) await utimes(path, mtime, mtime);
}

function loader(options: { checkIntervalMs?: number; compile?: Parameters<typeof createComponentLoader>[0]['compile'] } = {}): ComponentLoader {
  const cache = createContentCache({ maxEntries: 1000, maxBytes: 64 << 20, checkIntervalMs: options.checkIntervalMs ?? 0 });
  return createComponentLoader({ cache, sharedDir: SHARED, compile: options.compile });
}

async function render(l: ComponentLoader, name: string, props: Record<string, unknown> = {}, slot?: string): Promise<string> {
  const loaded = await l.component(site, name);
  if (!loaded) throw new Error(`no component ${name}`);
  const container = await experimental_AstroContainer.create();
  return container.renderToString(loaded.factory(runtime) as never, { props, slots: slot === undefined ? {} : { default: slot } });
}

async function failure(promise: Promise<unknown>): Promise<ComponentError> {
  const error = await promise.then(() => undefined, (e: unknown) => e);
  expect(error).toBeInstanceOf(ComponentError);
  return error as ComponentError;
}

const PRICING = `---
import Badge from './Badge.astro';
interface Props { plan: string; price: number; popular?: boolean }
const { plan, price, popular = false } = Astro.props as Props;
const label: string = popular ? 'Most popular' : '';
---
<section class="pricing"><h2>{plan}</h2><p class="price">{price} €</p>{popular && <Badge text={label} />}<slot /></section>
<style>.pricing { border: 1px solid; } .price { font-size: 2rem; }</style>
`;
const BADGE = `---
const { text } = Astro.props;
---
<span class="badge">{text}</span>
<style>.badge { color: gold; }</style>
`;

describe('site components: compile and render', () => {
  it('renders a component with its props, its default slot, a component it imports and scoped styles', async () => {
    await put('components/Pricing.astro', PRICING);
    await put('components/Badge.astro', BADGE);
    const l = loader();
    const html = await render(l, 'Pricing', { plan: 'Pro', price: 12, popular: true }, '<em>billed yearly</em>');
    expect(html).toMatch(/^<section class="pricing" data-astro-cid-[a-z0-9]+><h2 data-astro-cid-[a-z0-9]+>Pro<\/h2>/);
    expect(html).toContain('12 €</p>');
    expect(html).toMatch(/<span class="badge" data-astro-cid-[a-z0-9]+>Most popular<\/span>/);
    expect(html).toContain('<em>billed yearly</em></section>');
    const loaded = (await l.component(site, 'Pricing'))!;
    expect(loaded.file).toBe('sites/acme/components/Pricing.astro');
    expect(loaded.css.map((c) => c.file)).toEqual(['sites/acme/components/Badge.astro', 'sites/acme/components/Pricing.astro']);
    const scope = /data-astro-cid-([a-z0-9]+)/.exec(html)![1];
    expect(loaded.css[1]!.code).toContain(`.pricing[data-astro-cid-${scope}]`);
    const css = await l.css(site);
    expect(css).toContain('.badge[data-astro-cid-');
    expect(css.match(/\.badge\[/g)).toHaveLength(1);
  });

  it('lets a component use a shared component through @shared/', async () => {
    await put('components/Banner.astro', `---\nimport Hero from '@shared/Hero.astro';\n---\n<Hero hero={{ title: 'Welcome', subtitle: 'to acme' }} />`);
    const html = await render(loader(), 'Banner');
    expect(html).toContain('Welcome');
    expect(html).toContain('to acme');
  });

  it('runs TypeScript frontmatter: types, generics, satisfies, enums, parameter properties and namespaces', async () => {
    await put('components/Typed.astro', `---
import type { Thing } from './Badge.astro';
interface Props { n: number; label?: string }
const { n, label = 'x' } = Astro.props as Props;
const twice = <T,>(v: T): [T, T] => [v, v];
const mode = { kind: 'typed' } as const satisfies Record<string, string>;
enum Level { High = 'high' }
namespace Units { export const suffix = 'px'; }
class Box { constructor(public size: number) {} }
let width!: number;
width = new Box(n).size;
---
<p>{twice(label).join('')} {mode.kind} {Level.High} {width}{Units.suffix}</p>`);
    expect(await render(loader(), 'Typed', { n: 4, label: 'ab' })).toBe('<p>abab typed high 4px</p>');
  });

  it('renders <Fragment> (the compiler imports Fragment from its runtime) and shared components that use it', async () => {
    await put('components/Raw.astro', `---\nconst { html } = Astro.props;\n---\n<Fragment set:html={html} /><Fragment><i>after</i></Fragment>`);
    expect(await render(loader(), 'Raw', { html: '<b>bold</b>' })).toBe('<b>bold</b><i>after</i>');
  });

  it('gives a site layout, and none when the site keeps the shared one', async () => {
    const l = loader();
    expect(await l.layout(site, 'landing')).toBeUndefined();
    await put('layouts/landing.astro', `---\nimport Badge from '../components/Badge.astro';\nconst { page } = Astro.props;\n---\n<main><Badge text={page.title} /><slot /></main>`);
    await put('components/Badge.astro', BADGE);
    const layout = (await l.layout(site, 'landing'))!;
    expect(layout.kind).toBe('layout');
    const container = await experimental_AstroContainer.create();
    const html = await container.renderToString(layout.factory(runtime) as never, { props: { page: { title: 'Hello' } } });
    expect(html).toMatch(/^<main><span class="badge" data-astro-cid-[a-z0-9]+>Hello<\/span><\/main>$/);
  });

  it('answers undefined for a component the site does not have, or a name that is not PascalCase', async () => {
    await put('components/Badge.astro', BADGE);
    const l = loader();
    expect(await l.component(site, 'Nope')).toBeUndefined();
    expect(await l.component(site, 'badge')).toBeUndefined();
    expect(await l.component(site, '../components/Badge')).toBeUndefined();
  });
});

describe('site components: errors name the file, line and column', () => {
  it('reports a compile error with file:line:column', async () => {
    await put('components/Broken.astro', `---\nconst a = 1;\n---\n<div>\n  <p>{a}</div>\n`);
    const error = await failure(loader().component(site, 'Broken'));
    expect(error.code).toBe('COMPONENT_INVALID');
    expect(error.status).toBe(503);
    expect(error.problem).toBe('compile');
    expect(error.message).toMatch(/^sites\/acme\/components\/Broken\.astro:5:\d+: Expected corresponding JSX closing tag for 'p'/);
    expect(error.line).toBe(5);
  });

  it('reports a syntax error in the frontmatter at its line and column', async () => {
    await put('components/Broken.astro', `---\nconst ok = 1;\nconst x = ;\n---\n<p>{ok}</p>`);
    const error = await failure(loader().component(site, 'Broken'));
    expect([error.line, error.column]).toEqual([3, 11]);
  });

  it.each([
    ['node:fs', `import { readFileSync } from 'node:fs';`],
    ['fs', `import * as fs from "fs";`],
    ['child_process', `import { execSync } from 'child_process';`],
    ['lodash', `import _ from 'lodash';`],
    ['../../other/components/Secret.astro', `import Secret from '../../other/components/Secret.astro';`],
    ['../site.json', `import config from '../site.json';`],
    ['@shared/../astro-multi-tenant/server/config.ts', `import { loadConfig } from '@shared/../astro-multi-tenant/server/config.ts';`],
    ['./Badge.astro?raw', `import raw from './Badge.astro?raw';`],
  ])('refuses a forbidden import of "%s", naming file, line, column and the specifier', async (specifier, statement) => {
    await put('components/Badge.astro', BADGE);
    await put('components/Evil.astro', `---\nconst before = 1;\n  ${statement}\n---\n<p>{before}</p>`);
    const error = await failure(loader().component(site, 'Evil'));
    expect(error.problem).toBe('forbidden-import');
    expect(error.specifier).toBe(specifier);
    expect(error.line).toBe(3);
    // The column of the specifier's first character, after its quote.
    expect(error.column).toBe(3 + statement.search(/['"]/) + 1);
    expect(error.message).toContain(`sites/acme/components/Evil.astro:3:${error.column}: imports "${specifier}"`);
  });

  it.each([
    ['import() of a built-in', `const fs = await import('node:fs');`, 'unsupported', 'uses import("node:fs")'],
    ['import() of a computed name', `const m = await import('node:' + 'fs');`, 'unsupported', 'uses import(…)'],
    ['import.meta', `const where = import.meta.url;`, 'unsupported', 'uses import.meta'],
    ['the compiler runtime by hand', `import { render } from 'astro/compiler-runtime';`, 'forbidden-import', 'which only the compiler may'],
    ['a re-export', `export { default as Other } from './Badge.astro';`, 'unsupported', 're-exports "./Badge.astro"'],
  ])('refuses %s with where it is', async (_what, statement, problem, words) => {
    await put('components/Badge.astro', BADGE);
    await put('components/Sneaky.astro', `---\n${statement}\n---\n<p>x</p>`);
    const error = await failure(loader().component(site, 'Sneaky'));
    expect(error.problem).toBe(problem);
    expect(error.message).toContain(words);
    expect(error.line).toBe(2);
  });

  it('refuses client-side hydration and bundled scripts, allows inline scripts', async () => {
    await put('components/Badge.astro', BADGE);
    await put('components/Hydrated.astro', `---\nimport Badge from './Badge.astro';\n---\n<Badge client:load text="x" />`);
    await put('components/Scripted.astro', `<p>x</p>\n<script>console.log('bundled')</script>`);
    await put('components/Inline.astro', `<p>x</p>\n<script is:inline>console.log('inline')</script>`);
    const l = loader();
    expect((await failure(l.component(site, 'Hydrated'))).message).toMatch(/Hydrated\.astro:4:\d+: uses a client: directive/);
    expect((await failure(l.component(site, 'Scripted'))).message).toMatch(/Scripted\.astro:2:1: has a <script> that Astro would bundle/);
    expect(await render(l, 'Inline')).toContain(`<script>console.log('inline')</script>`);
  });

  it('names the importing line for an import of a component that does not exist, and import cycles', async () => {
    await put('components/Lonely.astro', `---\nimport Ghost from './Ghost.astro';\n---\n<Ghost />`);
    await put('components/Ping.astro', `---\nimport Pong from './Pong.astro';\n---\n<Pong />`);
    await put('components/Pong.astro', `---\nimport Ping from './Ping.astro';\n---\n<Ping />`);
    const l = loader();
    const missing = await failure(l.component(site, 'Lonely'));
    expect(missing.message).toBe('sites/acme/components/Lonely.astro:2:20: imports "./Ghost.astro", but sites/acme/components/Ghost.astro does not exist');
    const cycle = await failure(l.component(site, 'Ping'));
    expect(cycle.problem).toBe('import-cycle');
    expect(cycle.message).toContain('components/Ping.astro → components/Pong.astro → components/Ping.astro');
  });

  it('never reads a component through a link out of the site folder', async () => {
    await writeFile(join(root, 'outside.astro'), '<p>outside secret</p>');
    await symlink(join(root, 'outside.astro'), join(site.dir, 'components', 'Leak.astro'));
    const error = await failure(loader().component(site, 'Leak'));
    expect(error.problem).toBe('file');
    expect(error.message).toContain('sites/acme/components/Leak.astro: is a link that leads outside the site folder');
  });

  it('lists every problem of a site for sites check, and nothing for a clean one', async () => {
    const l = loader();
    await put('components/Badge.astro', BADGE);
    expect(await l.check(site)).toEqual([]);
    await put('components/Evil.astro', `---\nimport fs from 'node:fs';\n---\n<p />`);
    await put('components/Broken.astro', `<div>`);
    await put('components/lowercase.astro', `<p />`);
    await put('layouts/home.astro', `<p />`);
    const messages = (await l.check(site)).map((i) => i.message);
    expect(messages).toEqual([
      expect.stringMatching(/^sites\/acme\/components\/lowercase\.astro: is not a component name: names are PascalCase/),
      expect.stringMatching(/^sites\/acme\/layouts\/home\.astro: replaces no layout: a site's layouts are page\.astro, landing\.astro, article\.astro/),
      expect.stringMatching(/^sites\/acme\/components\/Broken\.astro:1:\d+: /),
      expect.stringMatching(/^sites\/acme\/components\/Evil\.astro:2:17: imports "node:fs", a Node\.js built-in module/),
    ]);
  });
});

describe('site components: caching and edits', () => {
  it('shares compiled output through the disk cache: a second loader (another worker, a restart) compiles nothing', async () => {
    await put('components/Pricing.astro', PRICING);
    await put('components/Badge.astro', BADGE);
    const dir = join(root, 'compile-cache');
    const compilerId = componentCompilerId();
    const first = createCompileCache({ dir, maxBytes: 1 << 20, compilerId });
    const html = await render(loader({ compile: first.compile }), 'Pricing', { plan: 'A', price: 1 });
    await first.settle();
    expect(first.stats).toMatchObject({ misses: 2, hits: 0, writes: 2 });
    const second = createCompileCache({ dir, maxBytes: 1 << 20, compilerId });
    expect(await render(loader({ compile: second.compile }), 'Pricing', { plan: 'A', price: 1 })).toBe(html);
    expect(second.stats).toMatchObject({ misses: 0, hits: 2 });
    const shards = await readdir(dir);
    expect(shards.every((s) => /^[a-f0-9]{2}$/.test(s))).toBe(true);
  });

  it('ignores a cache entry that is not a well-formed record of its own key, and compiles instead', async () => {
    await put('components/Badge.astro', BADGE);
    const dir = join(root, 'compile-cache');
    const first = createCompileCache({ dir, maxBytes: 1 << 20, compilerId: 'c1' });
    await loader({ compile: first.compile }).component(site, 'Badge');
    await first.settle();
    const [shard] = await readdir(dir);
    const [name] = await readdir(join(dir, shard!));
    await writeFile(join(dir, shard!, name!), JSON.stringify({ key: 'f'.repeat(64), compiled: { body: 'return { default: 1 }', imports: [], css: [], scope: 'x' } }));
    const second = createCompileCache({ dir, maxBytes: 1 << 20, compilerId: 'c1' });
    expect(await render(loader({ compile: second.compile }), 'Badge', { text: 'still here' })).toContain('still here');
    expect(second.stats).toMatchObject({ hits: 0, misses: 1 });
    // Its write of the fresh entry runs in the background: done before the folder is removed.
    await second.settle();
  });

  it('picks up an edit of the component, and of a component it imports, at the next check', async () => {
    await put('components/Pricing.astro', PRICING, new Date(1_000_000));
    await put('components/Badge.astro', BADGE, new Date(1_000_000));
    let now = 0;
    const cache = createContentCache({ maxEntries: 100, maxBytes: 1 << 24, checkIntervalMs: 500, now: () => now });
    const l = createComponentLoader({ cache, sharedDir: SHARED });
    const props = { plan: 'Pro', price: 9, popular: true };
    const first = await l.component(site, 'Pricing');
    expect(await render(l, 'Pricing', props)).toContain('Most popular');

    await put('components/Pricing.astro', PRICING.replace('€', 'EUR'), new Date(2_000_000));
    now = 100;
    expect(await l.component(site, 'Pricing')).toBe(first);
    now = 600;
    expect(await render(l, 'Pricing', props)).toContain('9 EUR');

    await put('components/Badge.astro', BADGE.replace('<span class="badge">', '<strong class="badge">').replace('</span>', '</strong>'), new Date(3_000_000));
    now = 1200;
    expect(await render(l, 'Pricing', props)).toMatch(/<strong class="badge"[^>]*>Most popular<\/strong>/);
    const loads = cache.stats.reloads;
    now = 1800;
    await l.component(site, 'Pricing');
    expect(cache.stats.reloads).toBe(loads);
  });

  it("keeps a broken component's error until a file it read changes: one compile, not one per request; a missing import mends when the file appears", async () => {
    await put('components/Broken.astro', `<div>`, new Date(1_000_000));
    await put('components/Lonely.astro', `---\nimport Ghost from './Ghost.astro';\n---\n<Ghost />`, new Date(1_000_000));
    let now = 0;
    let compiles = 0;
    const cache = createContentCache({ maxEntries: 100, maxBytes: 1 << 24, checkIntervalMs: 500, now: () => now });
    const { compileComponent } = await import('../../astro-multi-tenant/server/components/compile-component.ts');
    const l = createComponentLoader({ cache, sharedDir: SHARED, compile: async (file, source) => (compiles++, compileComponent(source, file)) });
    for (let i = 0; i < 5; i++) {
      now += 200;
      expect((await failure(l.component(site, 'Broken'))).problem).toBe('compile');
    }
    expect(compiles).toBe(1);
    await put('components/Broken.astro', `<div>mended</div>`, new Date(2_000_000));
    now += 600;
    expect(await render(l, 'Broken')).toBe('<div>mended</div>');

    expect((await failure(l.component(site, 'Lonely'))).problem).toBe('missing-import');
    await put('components/Ghost.astro', `<p>boo</p>`);
    now += 600;
    expect(await render(l, 'Lonely')).toBe('<p>boo</p>');
  });

  it('sees a component added, and one removed, at the next check', async () => {
    let now = 0;
    const cache = createContentCache({ maxEntries: 100, maxBytes: 1 << 24, checkIntervalMs: 500, now: () => now });
    const l = createComponentLoader({ cache, sharedDir: SHARED });
    expect(await l.component(site, 'Badge')).toBeUndefined();
    await put('components/Badge.astro', BADGE);
    now = 600;
    expect(await l.component(site, 'Badge')).toBeDefined();
    await rm(join(site.dir, 'components', 'Badge.astro'));
    now = 1200;
    expect(await l.component(site, 'Badge')).toBeUndefined();
  });
});
