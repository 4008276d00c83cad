import { createHash } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { ComponentLoader, ComponentSite } from '../components/component-loader.ts';
import { isComponentName, isLayoutName } from '../components/component-file.ts';
import type { LayoutName } from '../sites/schema.ts';

/**
 * The scoped `<style>` of a site's own components and layouts (issue 15) as one hashed stylesheet,
 * `/_platform/css/<site>/components.<hash>.css`, served by the css stage like the site's Tailwind
 * stylesheet (immutable: a new text is a new name).
 *
 * Not written by `npm run css`: a component edit is live within CONTENT_CHECK_MS like a page, so
 * the text is made by the server from the loaded components (components/component-loader.ts), and
 * it holds every usable component and layout of the site, not only a page's: any worker can then
 * make the same text from the same files and answer for a name another worker put in a page. A
 * component that does not compile is left out (its pages answer 503 anyway), so one broken file
 * never unstyles the others.
 */
export interface ComponentStylesheets {
  /** The stylesheet's file name now (`components.<16 hex>.css`), or undefined when the site's components have no CSS. */
  current(site: ComponentSite): Promise<ComponentCss | undefined>;
  /** The text of `file` when it is the site's current stylesheet or the one before it; undefined otherwise. */
  read(site: ComponentSite, file: string): Promise<string | undefined>;
}

export interface ComponentCss {
  file: string;
  css: string;
}

/** The only component stylesheet names served. */
export const COMPONENT_STYLESHEET = /^components\.[0-9a-f]{16}\.css$/;

export interface ComponentStylesheetOptions {
  loader: ComponentLoader;
  /** A site's text is made again at most this often (ms): CONTENT_CHECK_MS, the loader's own re-check. */
  checkIntervalMs: number;
  /** Sites whose texts are kept (least recently made go first); default 1000. */
  maxSites?: number;
  now?: () => number;
}

interface Held {
  at: number;
  current: ComponentCss | undefined;
  previous: ComponentCss | undefined;
  making: Promise<ComponentCss | undefined> | undefined;
}

export function createComponentStylesheets(options: ComponentStylesheetOptions): ComponentStylesheets {
  const now = options.now ?? Date.now;
  const maxSites = options.maxSites ?? 1000;
  const held = new Map<string, Held>();

  async function make(site: ComponentSite): Promise<ComponentCss | undefined> {
    const names = await usableFiles(options.loader, site);
    if (names.components.length === 0 && names.layouts.length === 0) return undefined;
    const css = await options.loader.css(site, names);
    if (css.trim() === '') return undefined;
    return { file: `components.${createHash('sha256').update(css).digest('hex').slice(0, 16)}.css`, css };
  }

  async function current(site: ComponentSite): Promise<ComponentCss | undefined> {
    let entry = held.get(site.id);
    if (entry && now() - entry.at < options.checkIntervalMs) return entry.current;
    if (entry?.making) return entry.making;
    if (!entry) {
      entry = { at: 0, current: undefined, previous: undefined, making: undefined };
      held.set(site.id, entry);
      if (held.size > maxSites) held.delete(held.keys().next().value!);
    }
    const e = entry;
    e.making = make(site)
      .then((made) => {
        if (made?.file !== e.current?.file) {
          e.previous = e.current;
          e.current = made;
        }
        e.at = now();
        return made;
      })
      .finally(() => {
        e.making = undefined;
      });
    return e.making;
  }

  return {
    current,
    async read(site, file) {
      if (!COMPONENT_STYLESHEET.test(file)) return undefined;
      const made = await current(site);
      if (made?.file === file) return made.css;
      const previous = held.get(site.id)?.previous;
      return previous?.file === file ? previous.css : undefined;
    },
  };
}

/** The site's components and layouts that load (a broken one is left out), by file name in their folders. */
async function usableFiles(loader: ComponentLoader, site: ComponentSite): Promise<{ components: string[]; layouts: LayoutName[] }> {
  const names = async (folder: string) =>
    (await readdir(join(site.dir, folder)).catch(() => [] as string[]))
      .filter((f) => f.endsWith('.astro'))
      .map((f) => f.slice(0, -'.astro'.length))
      .sort();
  const loads = async (load: () => Promise<unknown>) => load().then((loaded) => loaded !== undefined, () => false);
  const components: string[] = [];
  for (const name of (await names('components')).filter(isComponentName)) if (await loads(() => loader.component(site, name))) components.push(name);
  const layouts: LayoutName[] = [];
  for (const name of (await names('layouts')).filter(isLayoutName)) if (await loads(() => loader.layout(site, name))) layouts.push(name);
  return { components, layouts };
}
