import { join } from 'node:path';
import { ContentError } from '../errors.ts';
import type { ComponentLoader, LoadedComponent } from '../components/component-loader.ts';
import type { ComponentStylesheets } from '../css/component-stylesheet.ts';
import type { NamedPlan } from '../plans/plans-file.ts';
import { fileIdentity } from '../sites/fs-fingerprint.ts';
import { componentCalls, type BodySegment } from '../sites/page-body.ts';
import type { Page } from '../sites/pages.ts';
import type { Site } from '../sites/loader.ts';
import { CSS_PREFIX } from './site-view.ts';

/**
 * What one page needs of its site's own components and layouts (issue 15), resolved by the
 * server before the render: the Astro side gets loaded components in the view and reads no file.
 */
export interface PageComponents {
  /** Every component the body calls, by name; undefined when it calls none. */
  components?: Record<string, LoadedComponent>;
  /** The site's own layouts/<page.layout>.astro; undefined: the shared layout. */
  siteLayout?: LoadedComponent;
  /** Identity of every file used (stat fingerprints) and of the component stylesheet: part of the page's ETag. '' when none. */
  version: string;
  /** The component stylesheet's href (css/component-stylesheet.ts), when components are used and have CSS. */
  stylesheet?: string;
}

export interface PageComponentsOptions {
  /** Undefined: this server loads no site component; a page that needs one answers 503 saying so. */
  loader: ComponentLoader | undefined;
  stylesheets: ComponentStylesheets | undefined;
  planFor: (siteId: string) => NamedPlan;
  /** How long (ms) a site layout file's absence on a site without components is believed: CONTENT_CHECK_MS. */
  checkIntervalMs: number;
  now?: () => number;
}

const NONE: PageComponents = Object.freeze({ version: '' });

/**
 * Resolves the page's components and layout.
 *
 * @throws ContentError PAGE_INVALID (503) when the site's plan does not allow components and the
 *   page calls one or the site replaces its layout, and when the body calls a component the site
 *   does not have; every message names the site's file, the line and the component.
 * @throws ComponentError COMPONENT_INVALID (503) when a component or layout the page uses does not
 *   compile or imports what it may not (file:line:column in the message).
 */
export function createPageComponents(options: PageComponentsOptions): (site: Site, page: Page) => Promise<PageComponents> {
  const now = options.now ?? Date.now;
  // Sites not allowed components: is there a layouts/<name>.astro they would use? One stat per
  // site and layout per check interval, never a compile (their code is not ours to run).
  const layoutSeen = new Map<string, { at: number; exists: boolean }>();
  async function hasLayoutFile(site: Site, name: string): Promise<boolean> {
    const key = `${site.id}\0${name}`;
    const known = layoutSeen.get(key);
    if (known && now() - known.at < options.checkIntervalMs) return known.exists;
    const exists = (await fileIdentity(join(site.dir, 'layouts', `${name}.astro`)).catch(() => null)) !== null;
    layoutSeen.delete(key);
    layoutSeen.set(key, { at: now(), exists });
    if (layoutSeen.size > 10_000) layoutSeen.delete(layoutSeen.keys().next().value!);
    return exists;
  }

  return async (site, page) => {
    const plan = options.planFor(site.id);
    const layoutFile = `sites/${site.id}/layouts/${page.layout}.astro`;
    if (!plan.limits.components || !options.loader) {
      const uses = page.components.length > 0 ? describeCalls(page) : (await hasLayoutFile(site, page.layout)) ? `uses the site layout ${layoutFile}` : undefined;
      if (uses === undefined) return NONE;
      const why = !options.loader ? 'this server loads no site components' : `the site's plan "${plan.name}" does not allow site components and layouts (an operator allows them with "components": true in the plan, PLANS_FILE)`;
      throw new ContentError('PAGE_INVALID', [{ file: page.file, field: page.components.length > 0 ? 'body' : 'layout', reason: `${uses}, but ${why}` }]);
    }
    const loader = options.loader;
    const componentSite = { id: site.id, dir: site.dir };
    const siteLayout = await loader.layout(componentSite, page.layout);
    let components: Record<string, LoadedComponent> | undefined;
    if (page.components.length > 0) {
      components = {};
      for (const name of page.components) {
        const loaded = await loader.component(componentSite, name);
        if (!loaded) {
          throw new ContentError('PAGE_INVALID', [{ file: page.file, field: 'body', reason: `line ${firstLine(page.segments, name)}: calls the component "${name}", but sites/${site.id}/components/${name}.astro does not exist` }]);
        }
        components[name] = loaded;
      }
    }
    if (!components && !siteLayout) return NONE;
    const css = await options.stylesheets?.current(componentSite);
    const versions = [siteLayout?.version ?? '', ...Object.values(components ?? {}).map((c) => c.version), css?.file ?? ''];
    return {
      ...(components ? { components } : {}),
      ...(siteLayout ? { siteLayout } : {}),
      version: versions.join('|'),
      ...(css ? { stylesheet: `${CSS_PREFIX}${site.id}/${css.file}` } : {}),
    };
  };
}

/**
 * A render that failed in one of the site's own components or layouts: the error for the page
 * (503, PAGE_INVALID naming that file and its words), or undefined when the failure is not
 * traceably the site's (then it stays a render failure, 500). Compiled site components run under
 * the name `component:sites/<id>/…` (components/module-function.ts), which their stack frames carry.
 */
export function siteComponentFailure(error: unknown, siteId: string, page: Page): ContentError | undefined {
  const prefix = `component:sites/${siteId}/`;
  for (let e: unknown = error, depth = 0; e instanceof Error && depth < 8; e = e.cause, depth++) {
    const at = e.stack?.indexOf(prefix) ?? -1;
    if (at < 0) continue;
    const file = /^component:(sites\/[^\s:()]+\.astro)/.exec(e.stack!.slice(at))?.[1];
    if (file) return new ContentError('PAGE_INVALID', [{ file, field: '', reason: `threw while rendering ${page.file}: ${e.message.split('\n')[0]}` }]);
  }
  return undefined;
}

function describeCalls(page: Page): string {
  const names = page.components.map((n) => `"${n}"`).join(', ');
  return `line ${firstLine(page.segments, page.components[0]!)}: calls the site component${page.components.length === 1 ? '' : 's'} ${names}`;
}

/** The line of the first call of `name` in the page file. */
function firstLine(segments: readonly BodySegment[], name: string): number {
  return componentCalls(segments).find((c) => c.component === name)?.line ?? 0;
}
