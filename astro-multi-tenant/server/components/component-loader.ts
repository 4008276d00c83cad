import { createHash } from 'node:crypto';
import { readdir, realpath } from 'node:fs/promises';
import { contentFs } from '../sites/content-fs.ts';
import { join } from 'node:path';
import type { Stats } from 'node:fs';
import { LRUCache } from 'lru-cache';
import type { ContentCache } from '../sites/content-cache.ts';
import { readContainedText, refusalReason } from '../sites/contained-file.ts';
import { statsFingerprint } from '../sites/fs-fingerprint.ts';
import type { LayoutName } from '../sites/schema.ts';
import { ComponentError } from './component-error.ts';
import {
  COMPONENT_NAME,
  diskPath,
  displayPath,
  fileKey,
  isComponentName,
  isLayoutName,
  LAYOUT_NAMES,
  siteComponentFile,
  siteLayoutFile,
  type ComponentFile,
} from './component-file.ts';
import { compileComponent, type CompiledComponent } from './compile-component.ts';
import { decideImport } from './import-rule.ts';
import { evaluate, moduleFunction, type AstroComponentFactory, type CompilerRuntime, type ModuleUnit } from './module-function.ts';

export type { AstroComponentFactory, CompilerRuntime } from './module-function.ts';
export { ComponentError } from './component-error.ts';

/**
 * A site's own Astro components and layouts, compiled on first use and loaded per site (issue 15).
 *
 * For the view (render/page-response.ts, tenant-view.astro):
 *
 *     const loaded = await components.component(site, 'PricingTable'); // LoadedComponent | undefined
 *     // in the .astro view, with the view's own runtime:
 *     import * as runtime from 'astro/compiler-runtime';
 *     const PricingTable = loaded.factory(runtime);  // <PricingTable {...props}>…</PricingTable>
 *
 * Each component is loaded with everything it imports (its closure) as one entry of the shared
 * content cache (the LRU bounded by SITE_CACHE_MAX_ENTRIES / SITE_CACHE_MAX_MB, like the rest of a
 * site), revalidated by stat at most once per CONTENT_CHECK_MS: an edit of the component or of
 * anything it imports is live within that on every worker. Compiling goes through the disk cache
 * when one is given (compile-cache.ts), so workers and restarts share compiled output.
 */
export interface ComponentSite {
  id: string;
  /** The site's real (symlink-resolved) folder: every file read must lie below it. */
  dir: string;
}

/** One component (or layout), ready to render; immutable, replaced as a whole after an edit. */
export interface LoadedComponent {
  /** `PricingTable` for a component, `landing` for a layout. */
  name: string;
  kind: 'component' | 'layout';
  /** As a site owner names it: `sites/acme/components/PricingTable.astro`. */
  file: string;
  /**
   * The Astro component, made by `runtime` (the view's `import * as runtime from
   * 'astro/compiler-runtime'`), evaluated once per runtime and kept with this object. Throws
   * ComponentError (`evaluate`) when the component's module-level code throws.
   */
  factory(runtime: CompilerRuntime): AstroComponentFactory;
  /** Scoped CSS of this component and everything it imports, each scope once, imports first. */
  css: readonly ScopedCss[];
  /** Identity of every file it was built from (stat fingerprints): part of a page's ETag/version. */
  version: string;
}

export interface ScopedCss {
  /** The compiler's scope hash: elements carry `data-astro-cid-<scope>`. */
  scope: string;
  /** The file the `<style>` came from, as a site owner names it. */
  file: string;
  code: string;
}

/** One problem found by `check`: for `sites check` and the status page. */
export interface ComponentIssue {
  file: string;
  line: number | undefined;
  column: number | undefined;
  reason: string;
  /** `file:line:column: reason`, the same words as the log. */
  message: string;
}

export interface ComponentLoader {
  /**
   * The site's component `name` (`components/<name>.astro`), compiled and checked with all it
   * imports. Undefined when the site has no such file (or `name` is not PascalCase). Throws
   * ComponentError for a compile error, a forbidden or missing import, an import cycle, a file
   * refused (link out of the folder, over the size limit).
   */
  component(site: ComponentSite, name: string): Promise<LoadedComponent | undefined>;
  /** The site's own `layouts/<name>.astro`, or undefined when it uses the shared one. Throws as `component`. */
  layout(site: ComponentSite, name: LayoutName): Promise<LoadedComponent | undefined>;
  /**
   * The scoped CSS of the given components and layouts (each scope once) as one stylesheet
   * text; without `names`, of every component and layout the site has. Throws as `component`.
   */
  css(site: ComponentSite, names?: { components?: readonly string[]; layouts?: readonly LayoutName[] }): Promise<string>;
  /**
   * Every problem of the site's components and layouts (compile errors, forbidden imports, bad
   * file names), loading each; an empty list when all are usable or the site has none.
   */
  check(site: ComponentSite): Promise<ComponentIssue[]>;
}

export interface ComponentLoaderOptions {
  cache: ContentCache;
  /** The platform's shared-components folder (what `@shared/…` names). */
  sharedDir: string;
  /** Compiles through the disk cache; default: compile every time (compile-component.ts). */
  compile?: (file: ComponentFile, source: string) => Promise<CompiledComponent>;
  /** Largest component file read (bytes); default 256 KiB. */
  maxFileBytes?: number;
  /** Most files one component may pull in (itself included); default 64. */
  maxClosureFiles?: number;
  /** Called with the seconds each load from disk took (first uses and reloads after edits). */
  observeLoad?: (seconds: number) => void;
}

/** Content-cache key prefix of components (`invalidate(COMPONENT_CACHE_PREFIX + site, true)` drops a site's). */
export const COMPONENT_CACHE_PREFIX = 'component\0';

/** What the content cache holds per component: the loaded one, null for "no such file", or why it cannot be used. */
interface Held {
  loaded: LoadedComponent | null;
  error?: ComponentError;
  /** Real paths of every file the value was built from, the entry first. */
  paths: string[];
}

export function createComponentLoader(options: ComponentLoaderOptions): ComponentLoader {
  const { cache } = options;
  const maxFileBytes = options.maxFileBytes ?? 256 * 1024;
  const maxClosureFiles = options.maxClosureFiles ?? 64;
  const compileThrough = options.compile ?? (async (file: ComponentFile, source: string) => compileComponent(source, file));
  // The compiled output of recently loaded files, one version per file: a component's imports (a
  // shared Hero, a site's Badge) are loaded again with every component that imports them, and each
  // load of a new version of one file reloads the rest. Immutable data, shared by the loads that
  // use it; an edit replaces the file's entry, so old versions are not kept here.
  const recent = new LRUCache<string, { hash: string; compiled: CompiledComponent }>({
    maxSize: 2 * 1024 * 1024,
    maxEntrySize: 128 * 1024,
    sizeCalculation: ({ compiled: c }) => 1024 + 2 * (c.body.length + c.css.reduce((n, x) => n + x.length, 0) + c.imports.reduce((n, i) => n + i.specifier.length + 64, 0)),
  });
  async function compile(file: ComponentFile, source: string): Promise<CompiledComponent> {
    const key = fileKey(file);
    const hash = createHash('sha256').update(source).digest('base64');
    const known = recent.get(key);
    if (known?.hash === hash) return known.compiled;
    const compiled = await compileThrough(file, source);
    recent.set(key, { hash, compiled });
    return compiled;
  }
  let sharedRoot: Promise<string> | undefined;
  const sharedDir = () => (sharedRoot ??= realpath(options.sharedDir));

  /** Reads, compiles and links `entry` and its imports; null when the entry file does not exist. */
  async function loadClosure(site: ComponentSite, entry: ComponentFile, name: string, kind: LoadedComponent['kind']): Promise<{ held: Held; fingerprint: string; bytes: number }> {
    const shared = await sharedDir();
    const units = new Map<string, ModuleUnit>();
    const css: ScopedCss[] = [];
    const paths: string[] = [];
    const stamps: string[] = [];
    let bytes = 4096;

    async function visit(file: ComponentFile, chain: string[], from?: { file: ComponentFile; line?: number; column?: number; specifier: string }): Promise<ModuleUnit | null> {
      const key = fileKey(file);
      const done = units.get(key);
      if (done) return done;
      if (chain.includes(key)) {
        const cycle = [...chain.slice(chain.indexOf(key)), key].map((k) => k.split('\0').pop()).join(' → ');
        throw new ComponentError('import-cycle', { file: displayPath(from!.file), line: from!.line, column: from!.column }, `imports "${from!.specifier}", which imports it back (${cycle})`, { specifier: from!.specifier });
      }
      if (paths.length >= maxClosureFiles) {
        throw new ComponentError('unsupported', { file: displayPath(entry) }, `imports more than ${maxClosureFiles} component files in all`);
      }
      const root = file.area === 'site' ? site.dir : shared;
      const path = diskPath(file, { siteDir: site.dir, sharedDir: shared });
      const read = await readContainedText(path, root, { maxBytes: maxFileBytes });
      if (read.kind === 'missing') {
        if (!from) return null;
        // Part of the identity: the file appearing is an edit that can mend the importer.
        paths.push(path);
        stamps.push(MISSING);
        throw new ComponentError('missing-import', { file: displayPath(from.file), line: from.line, column: from.column }, `imports "${from.specifier}", but ${displayPath(file)} does not exist`, { specifier: from.specifier });
      }
      if (read.kind === 'refused') {
        // Never what a stat gives, so it is read again once per check until it can be.
        paths.push(path);
        stamps.push('refused');
        throw new ComponentError('file', { file: displayPath(file) }, refusalReason(read));
      }
      paths.push(path);
      stamps.push(stampOf(read.stats));
      const compiled = await compile(file, read.text);
      const deps: ModuleUnit['deps'] = [];
      for (const imported of compiled.imports) {
        if (imported.kind === 'runtime') {
          deps.push('runtime');
          continue;
        }
        const where = { file: displayPath(file), line: imported.line, column: imported.column };
        const decision = decideImport(file, imported.specifier);
        if (!decision.ok) throw new ComponentError('forbidden-import', where, decision.reason, { specifier: imported.specifier });
        const dep = await visit(decision.target, [...chain, key], { file, line: imported.line, column: imported.column, specifier: imported.specifier });
        deps.push(dep!);
      }
      compiled.css.forEach((code, i) => css.push({ scope: compiled.css.length > 1 ? `${compiled.scope}-${i}` : compiled.scope, file: displayPath(file), code }));
      // Its source kept by the function (twice for two-byte text), the function and its closures, its CSS.
      bytes += 2048 + compiled.body.length * 2 + compiled.css.reduce((n, code) => n + code.length * 2, 0);
      const unit: ModuleUnit = { file, run: moduleFunction(compiled.body, file), deps };
      units.set(key, unit);
      return unit;
    }

    let unit: ModuleUnit | null;
    try {
      unit = await visit(entry, []);
    } catch (error) {
      if (!(error instanceof ComponentError)) throw error;
      // Kept like a component, until one of the files read changes: a page using a broken
      // component costs its visitors a 503 from memory, not a compile each.
      return { held: { loaded: null, error, paths }, fingerprint: stamps.join('|'), bytes: 1024 + error.message.length * 2 };
    }
    if (!unit) return { held: { loaded: null, paths: [] }, fingerprint: MISSING, bytes: 64 };
    const version = stamps.join('|');
    const entryUnit = unit;
    const byRuntime = new WeakMap<CompilerRuntime, AstroComponentFactory | ComponentError>();
    const loaded: LoadedComponent = {
      name,
      kind,
      file: displayPath(entry),
      css: dedupe(css),
      version,
      factory(runtime) {
        let made = byRuntime.get(runtime);
        if (!made) {
          // A module that throws is remembered with this version: it would throw again.
          try {
            const exports = evaluate(entryUnit, runtime);
            if (typeof exports.default !== 'function') throw new ComponentError('evaluate', { file: displayPath(entry) }, 'has no default export (not an Astro component)');
            made = exports.default as AstroComponentFactory;
          } catch (error) {
            made = error instanceof ComponentError ? error : new ComponentError('evaluate', { file: displayPath(entry) }, String(error));
          }
          byRuntime.set(runtime, made);
        }
        if (made instanceof ComponentError) throw made;
        return made;
      },
    };
    return { held: { loaded, paths }, fingerprint: version, bytes: bytes + version.length * 2 };
  }

  async function get(site: ComponentSite, file: ComponentFile, name: string, kind: LoadedComponent['kind']): Promise<LoadedComponent | undefined> {
    const loadHeld = async () => {
      const started = performance.now();
      try {
        const { held, fingerprint, bytes } = await loadClosure(site, file, name, kind);
        return { value: held, bytes, fingerprint };
      } finally {
        options.observeLoad?.((performance.now() - started) / 1000);
      }
    };
    const held = await cache.get<Held>(`${COMPONENT_CACHE_PREFIX}${site.id}\0${site.dir}\0${file.path}`, {
      async fingerprint(previous) {
        const paths = previous?.paths.length ? previous.paths : [diskPath(file, { siteDir: site.dir, sharedDir: options.sharedDir })];
        const stamps = await Promise.all(paths.map((p) => contentFs.statIfPresent(p).then((s) => (s === undefined ? '-' : stampOf(s)), () => '-')));
        // No entry file: nothing to load (undefined); a file appearing shows at the next check.
        if (stamps[0] === '-') return previous?.paths.length ? stamps.join('|') : MISSING;
        return stamps.join('|');
      },
      load: loadHeld,
      // Not held at all (a cold site's layout lookup, a component's first use): the load is the
      // fingerprint, since the closure's identity comes from the stats of the descriptors it
      // reads (MISSING when the entry file is not there: one failed open, no stat before it).
      loadCold: loadHeld,
    });
    if (held?.error) throw held.error;
    return held?.loaded ?? undefined;
  }

  const loader: ComponentLoader = {
    async component(site, name) {
      if (!isComponentName(name)) return undefined;
      return get(site, siteComponentFile(site.id, name), name, 'component');
    },
    async layout(site, name) {
      if (!isLayoutName(name)) return undefined;
      return get(site, siteLayoutFile(site.id, name), name, 'layout');
    },
    async css(site, names) {
      const listed = names ?? (await siteFiles(site.dir));
      const loaded: LoadedComponent[] = [];
      for (const name of listed.layouts ?? []) {
        const layout = await loader.layout(site, name);
        if (layout) loaded.push(layout);
      }
      for (const name of listed.components ?? []) {
        const component = await loader.component(site, name);
        if (component) loaded.push(component);
      }
      return dedupe(loaded.flatMap((l) => l.css))
        .map((c) => `/* ${c.file} */\n${c.code}`)
        .join('\n');
    },
    async check(site) {
      const issues: ComponentIssue[] = [];
      const listed = await siteFiles(site.dir, (file, reason) => issues.push(issueOf(new ComponentError('file', { file: `sites/${site.id}/${file}` }, reason))));
      const attempts = [...listed.components.map((n) => () => loader.component(site, n)), ...listed.layouts.map((n) => () => loader.layout(site, n))];
      for (const attempt of attempts) {
        try {
          await attempt();
        } catch (error) {
          if (!(error instanceof ComponentError)) throw error;
          issues.push(issueOf(error));
        }
      }
      return issues;
    },
  };
  return loader;
}

const MISSING = '-';

function stampOf(stats: Stats): string {
  return statsFingerprint(stats);
}

function issueOf(error: ComponentError): ComponentIssue {
  return { file: error.file, line: error.line, column: error.column, reason: error.reason, message: error.message };
}

function dedupe(css: readonly ScopedCss[]): ScopedCss[] {
  const seen = new Set<string>();
  return css.filter((c) => !seen.has(c.scope) && (seen.add(c.scope), true));
}

/**
 * The component and layout names a site folder has; files that cannot be components (a
 * lower-case `.astro` in components/, a layout that replaces nothing) are reported to `misnamed`.
 */
async function siteFiles(siteDir: string, misnamed?: (file: string, reason: string) => void): Promise<{ components: string[]; layouts: LayoutName[] }> {
  const list = async (folder: string) => (await readdir(join(siteDir, folder)).catch(() => [] as string[])).filter((f) => f.endsWith('.astro')).sort();
  const components: string[] = [];
  for (const f of await list('components')) {
    const name = f.slice(0, -'.astro'.length);
    if (COMPONENT_NAME.test(name)) components.push(name);
    else misnamed?.(`components/${f}`, `is not a component name: names are PascalCase (a capital letter, then letters and digits), as in ::${pascal(name)}{…}`);
  }
  const layouts: LayoutName[] = [];
  for (const f of await list('layouts')) {
    const name = f.slice(0, -'.astro'.length);
    if (isLayoutName(name)) layouts.push(name);
    else misnamed?.(`layouts/${f}`, `replaces no layout: a site's layouts are ${LAYOUT_NAMES.map((l) => `${l}.astro`).join(', ')}`);
  }
  return { components, layouts };
}

function pascal(name: string): string {
  const words = name.split(/[^A-Za-z0-9]+/).filter(Boolean);
  const joined = words.map((w) => w[0]!.toUpperCase() + w.slice(1)).join('');
  return /^[A-Z]/.test(joined) ? joined : 'Name';
}
