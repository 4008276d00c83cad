import { createHash } from 'node:crypto';
import { ComponentError, type ComponentLoader, type ComponentSite, type LoadedComponent } from '../components/component-loader.ts';
import { MAX_SITE_COMPONENT_FILES } from '../components/component-file.ts';
import { listSiteComponentFiles, tooManyFiles } from '../components/site-component-files.ts';

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
 *
 * Bounded, because a site owner decides how many files there are and how much CSS they hold (the
 * compiler's scoping makes a 256 KiB `<style>` of short rules about 3 MB of text): at most
 * `maxFiles` components and layouts per site, counted (reading the folders no further) before any is loaded; at most `maxBytes` of
 * text per site, counted as it is made, one component at a time (never all of them held at once);
 * and at most `maxHeldBytes` of text over all sites, the least recently made going first. Past
 * either per-site bound the site's pages that use components answer 503 (ComponentError, the
 * limit named in the log), like a component that does not compile.
 */
export interface ComponentStylesheets {
  /**
   * The stylesheet's file name now (`components.<16 hex>.css`), or undefined when the site's
   * components have no CSS. @throws ComponentError (`unsupported`) when the site is over `maxFiles` or `maxBytes`.
   */
  current(site: ComponentSite): Promise<ComponentCss | undefined>;
  /** The text of `file` when it is the site's current stylesheet or the one before it; undefined otherwise. Throws as `current`. */
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
  /** Most component and layout files one site may have; default MAX_SITE_COMPONENT_FILES (256). */
  maxFiles?: number;
  /** Longest stylesheet text of one site (characters); default 2 MiB. */
  maxBytes?: number;
  /** Most text kept over all sites (characters, current and previous texts); default 64 MiB. */
  maxHeldBytes?: number;
  now?: () => number;
}

interface Held {
  at: number;
  current: ComponentCss | undefined;
  previous: ComponentCss | undefined;
  making: Promise<ComponentCss | undefined> | undefined;
  /** Why the text could not be made at `at` (over a bound): answered until the next check. */
  failed?: unknown;
}

export function createComponentStylesheets(options: ComponentStylesheetOptions): ComponentStylesheets {
  const now = options.now ?? Date.now;
  const maxSites = options.maxSites ?? 1000;
  const held = new Map<string, Held>();

  const maxFiles = options.maxFiles ?? MAX_SITE_COMPONENT_FILES;
  const maxBytes = options.maxBytes ?? 2 * 1024 * 1024;
  const maxHeldBytes = options.maxHeldBytes ?? 64 * 1024 * 1024;
  let heldBytes = 0;
  const sizeOf = (e: Held) => (e.current?.css.length ?? 0) + (e.previous?.css.length ?? 0);

  async function make(site: ComponentSite): Promise<ComponentCss | undefined> {
    const listed = await listSiteComponentFiles(site.dir, maxFiles);
    const tooMuch = (what: string) => new ComponentError('unsupported', { file: `sites/${site.id}/components` }, `${what}: the site's component stylesheet is not made and its pages that use components answer 503`);
    if (listed.more) throw tooMuch(tooManyFiles(maxFiles));
    // Layouts first, then components, each scope once: what any worker makes of the same files.
    const loads = [...listed.layouts.map((name) => () => options.loader.layout(site, name)), ...listed.components.map((name) => () => options.loader.component(site, name))];
    const seen = new Set<string>();
    const parts: string[] = [];
    let size = 0;
    for (const load of loads) {
      // One that does not load is left out (its pages answer 503 anyway).
      const loaded: LoadedComponent | undefined = await load().catch(() => undefined);
      for (const c of loaded?.css ?? []) {
        if (seen.has(c.scope)) continue;
        seen.add(c.scope);
        const part = `/* ${c.file} */\n${c.code}`;
        size += part.length + 1;
        if (size > maxBytes) throw tooMuch(`the styles of its components and layouts come to more than ${Math.round(maxBytes / 1024)} KiB (at ${c.file})`);
        parts.push(part);
      }
    }
    const css = parts.join('\n');
    if (css.trim() === '') return undefined;
    return { file: `components.${createHash('sha256').update(css).digest('hex').slice(0, 16)}.css`, css };
  }

  /** Drops the least recently made sites' texts while more than maxHeldBytes is kept. */
  function bound(): void {
    for (const [id, e] of held) {
      if (heldBytes <= maxHeldBytes && held.size <= maxSites) return;
      if (e.making) continue;
      heldBytes -= sizeOf(e);
      held.delete(id);
    }
  }

  async function current(site: ComponentSite): Promise<ComponentCss | undefined> {
    let entry = held.get(site.id);
    if (entry && now() - entry.at < options.checkIntervalMs) {
      if (entry.failed !== undefined) throw entry.failed;
      return entry.current;
    }
    if (entry?.making) return entry.making;
    if (!entry) {
      entry = { at: 0, current: undefined, previous: undefined, making: undefined };
      held.set(site.id, entry);
    }
    const e = entry;
    e.making = make(site)
      .then(
        (made) => {
          if (made?.file !== e.current?.file) {
            heldBytes -= sizeOf(e);
            e.previous = e.current;
            e.current = made;
            heldBytes += sizeOf(e);
          }
          e.failed = undefined;
          return made;
        },
        (error: unknown) => {
          e.failed = error;
          throw error;
        },
      )
      .finally(() => {
        e.at = now();
        e.making = undefined;
        // Most recently made last, so the bound drops the oldest.
        held.delete(site.id);
        held.set(site.id, e);
        bound();
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
