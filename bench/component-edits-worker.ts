/**
 * One measuring process of `BENCH_ONLY=component-edits` (bench/component-edits.ts starts it with
 * --expose-gc and the workers' node flags; prints one JSON line). Also runnable alone:
 *   node --expose-gc bench/component-edits-worker.ts <work-dir> <edits> <loader|naive>
 *
 * `loader`: the host's way. A site component (props, a slot, a scoped style, importing another
 * site component and a shared one) is edited `edits` times; after each edit it is loaded through
 * the host's component loader (the content cache sees the new stat and reloads it, compiling
 * through a disk compile cache), made with the Astro runtime and rendered. After every 50 edits
 * the heap is collected twice and RSS and the heap are sampled.
 *
 * `naive`: the same edits, compiled the same way (Astro's compiler), but each version written as
 * an .mjs file and loaded with `import()`, as one would without the host's design: Node keeps
 * every ES module it ever imported, so this shows what the design avoids.
 *
 * Then the first compile of a component: 300 distinct components, each compiled once
 * (compile-component.ts: the Astro compiler, the import check and rewrite) and each loaded once
 * from cold (read, compile in the compiler child process through an empty disk cache, link, make),
 * timed one by one.
 */
import { mkdir, mkdtemp, realpath, utimes, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { experimental_AstroContainer } from 'astro/container';
import * as runtime from 'astro/compiler-runtime';
import { transform } from '@astrojs/compiler-rs';
import { createComponentLoader } from '../astro-multi-tenant/server/components/component-loader.ts';
import { compileComponent } from '../astro-multi-tenant/server/components/compile-component.ts';
import { componentCompilerId, createCompileCache } from '../astro-multi-tenant/server/components/compile-cache.ts';
import { createIsolatedCompiler } from '../astro-multi-tenant/server/components/compiler-process.ts';
import { createContentCache } from '../astro-multi-tenant/server/sites/content-cache.ts';

const [work, editsArg, mode] = process.argv.slice(2);
if (!work || !editsArg || (mode !== 'loader' && mode !== 'naive')) throw new Error('usage: component-edits-worker.ts <work-dir> <edits> <loader|naive>');
const edits = Number(editsArg);
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with --expose-gc');
const SHARED = resolve(import.meta.dirname, '../shared-components');

/** Version `v` of the edited component: same shape, different text, so every edit is a new compile. */
function counter(v: number): string {
  return `---
import Badge from './Badge.astro';
import Hero from '@shared/Hero.astro';
interface Props { plan: string; price: number; features?: string[] }
const { plan, price, features = [] } = Astro.props as Props;
const edit: number = ${v};
const yearly = (price * 12 * 0.9).toFixed(2);
---
<section class="pricing edit-${v}">
  <Hero hero={{ title: plan, subtitle: \`edit \${edit}\` }} />
  <p class="price">{price} € / month, {yearly} € / year</p>
  <ul>{features.map((f) => <li>{f}</li>)}</ul>
  <Badge text={\`v\${edit}\`} />
  <slot />
</section>
<style>
  .pricing { border: 1px solid #ddd; padding: ${v % 7}rem; }
  .price { font-size: 2rem; }
  li::before { content: "✓ "; }
</style>
`;
}
const BADGE = `---\nconst { text } = Astro.props;\n---\n<span class="badge">{text}</span>\n<style>.badge { color: gold; }</style>\n`;

async function sample(): Promise<{ rss: number; heapUsed: number }> {
  for (let i = 0; i < 2; i++) {
    await new Promise((r) => setImmediate(r));
    gc!();
  }
  const m = process.memoryUsage();
  return { rss: m.rss, heapUsed: m.heapUsed };
}

async function render(factory: unknown, v: number): Promise<void> {
  // A container per render: a container keeps every component it has rendered (a route per render).
  const container = await experimental_AstroContainer.create();
  const html = await container.renderToString(factory as never, { props: { plan: 'Pro', price: 12, features: ['a', 'b'] }, slots: { default: '<em>x</em>' } });
  if (!html.includes(`edit-${v}`) || !html.includes(`v${v}</span>`)) throw new Error(`edit ${v} did not render: ${html.slice(0, 300)}`);
}

const root = await realpath(await mkdtemp(join(work, `component-edits-${mode}-`)));
const site = { id: 'bench', dir: join(root, 'site') };
await mkdir(join(site.dir, 'components'), { recursive: true });
await writeFile(join(site.dir, 'components', 'Badge.astro'), BADGE);
const file = join(site.dir, 'components', 'Counter.astro');
const compileCache = createCompileCache({ dir: join(root, 'compile-cache'), maxBytes: 64 << 20, compilerId: componentCompilerId() });
const cache = createContentCache({ maxEntries: 1000, maxBytes: 64 << 20, checkIntervalMs: 0 });
const loader = createComponentLoader({ cache, sharedDir: SHARED, compile: compileCache.compile });
const naiveDir = join(root, 'naive');
await mkdir(naiveDir);

async function editOnce(v: number): Promise<void> {
  await writeFile(file, counter(v));
  // Distinct mtimes: the loader's check compares stat fingerprints.
  await utimes(file, new Date(1e12 + v * 1000), new Date(1e12 + v * 1000));
  if (mode === 'loader') {
    const loaded = await loader.component(site, 'Counter');
    if (!loaded) throw new Error('component missing');
    await render(loaded.factory(runtime), v);
    return;
  }
  // naive: compile each file the way Astro would and import() it as an ES module.
  const write = async (name: string, source: string) => {
    const out = transform(source, { filename: `/${name}`, sourcemap: 'external', internalURL: 'astro/compiler-runtime', compact: 'jsx', scopedStyleStrategy: 'attribute', resultScopedSlot: true });
    const code = out.code
      .replace(/^import "[^"]*\?astro&type=style[^"]*";$/gm, '')
      .replaceAll('createMetadata as $$createMetadata', 'createComponent as $$unused')
      .replace(/export const \$\$metadata = \$\$createMetadata\([\s\S]*?\n\}\);/, '')
      .replaceAll('"astro/compiler-runtime"', JSON.stringify(pathToFileURL(resolve('node_modules/astro/dist/runtime/compiler/index.js')).href))
      .replaceAll('"./Badge.astro"', `"./Badge.mjs"`)
      .replace(/import Hero from "@shared\/Hero\.astro";\n?|import \* as \$\$module\d+ from "[^"]*";\n?/g, '')
      .replace('<Hero', '<span');
    await writeFile(join(naiveDir, name), code.replace(/\$\$renderComponent\(\$\$result, "Hero", Hero, \{[\s\S]*?\}\)/, '""'));
  };
  if (v === 0) await write('Badge.mjs', BADGE);
  await write(`Counter-${v}.mjs`, counter(v));
  const module = (await import(pathToFileURL(join(naiveDir, `Counter-${v}.mjs`)).href)) as { default: unknown };
  await render(module.default, v);
}

// Warm-up: the first renders load Astro's and our code; not counted.
for (let v = 0; v < 20; v++) await editOnce(v);
const samples: Array<{ edit: number; rss: number; heapUsed: number }> = [{ edit: 0, ...(await sample()) }];
for (let v = 1; v <= edits; v++) {
  await editOnce(20 + v);
  if (v % 50 === 0) samples.push({ edit: v, ...(await sample()) });
}
await compileCache.settle();

// First compile of a component: distinct texts, each compiled once, then each loaded cold.
const compileMs: number[] = [];
const firstLoadMs: number[] = [];
if (mode === 'loader') {
  // As the server compiles: in its compiler child process (started before timing: once per server process).
  const isolated = createIsolatedCompiler();
  await isolated.compile({ area: 'site', site: 'bench', path: 'components/Warm.astro' }, '<p>warm</p>');
  const coldCache = createCompileCache({ dir: join(root, 'cold-compile-cache'), maxBytes: 64 << 20, compilerId: componentCompilerId(), compileSource: isolated.compile });
  const coldLoader = createComponentLoader({ cache: createContentCache({ maxEntries: 1000, maxBytes: 64 << 20, checkIntervalMs: 0 }), sharedDir: SHARED, compile: coldCache.compile });
  for (let i = 0; i < 300; i++) {
    const source = counter(100_000 + i);
    const started = performance.now();
    compileComponent(source, { area: 'site', site: 'bench', path: `components/C${i}.astro` });
    compileMs.push(performance.now() - started);
    await writeFile(join(site.dir, 'components', `First${i}.astro`), counter(200_000 + i));
    const t = performance.now();
    const loaded = await coldLoader.component(site, `First${i}`);
    loaded!.factory(runtime);
    firstLoadMs.push(performance.now() - t);
  }
  await coldCache.settle();
  isolated.close();
}

console.log(JSON.stringify({ mode, edits, samples, compileMs, firstLoadMs, compileCache: compileCache.stats }));
