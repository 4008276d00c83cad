import { posix } from 'node:path';
import type { LayoutName } from '../sites/schema.ts';

/**
 * Which `.astro` file a component is, independent of where folders are on disk: a file of one
 * site (`components/Pricing.astro`, `layouts/landing.astro`) or of the platform's shared
 * components (`Hero.astro`, `layouts/SiteShell.astro`, below `shared-components/`). Paths are
 * posix, relative to the area's root, normalised, never `..`.
 */
export type ComponentFile = { area: 'site'; site: string; path: string } | { area: 'shared'; path: string };

/** Site component names: PascalCase, so that `::Name{…}` in Markdown reads like the file. */
export const COMPONENT_NAME = /^[A-Z][A-Za-z0-9]{0,63}$/;

/**
 * Most component and layout files one site may have: every one is compiled and loaded to make
 * the site's component stylesheet (css/component-stylesheet.ts), so the site owner must not
 * decide how many there are. Past it, the site's pages that use components answer 503 and
 * `sites check` says why.
 */
export const MAX_SITE_COMPONENT_FILES = 256;

/** Layouts a site may replace: exactly the shared ones (schema.ts `layout`). */
export const LAYOUT_NAMES: readonly LayoutName[] = ['page', 'landing', 'article'];

export function isComponentName(name: string): boolean {
  return COMPONENT_NAME.test(name);
}

export function isLayoutName(name: string): name is LayoutName {
  return (LAYOUT_NAMES as readonly string[]).includes(name);
}

export function siteComponentFile(site: string, name: string): ComponentFile {
  return { area: 'site', site, path: `components/${name}.astro` };
}

export function siteLayoutFile(site: string, name: LayoutName): ComponentFile {
  return { area: 'site', site, path: `layouts/${name}.astro` };
}

/** How a site owner names the file in messages: `sites/acme/components/Pricing.astro`, `shared-components/Hero.astro`. */
export function displayPath(file: ComponentFile): string {
  return file.area === 'site' ? `sites/${file.site}/${file.path}` : `shared-components/${file.path}`;
}

/** A stable key of the file for caches and cycle checks. */
export function fileKey(file: ComponentFile): string {
  return file.area === 'site' ? `site\0${file.site}\0${file.path}` : `shared\0${file.path}`;
}

/**
 * The name the compiler is given for the file: it becomes the component's `moduleId` and the
 * base of its style imports. It names no site, so the same text at the same path compiles to the
 * same output for every site (the disk cache shares it), and no disk path leaks into output.
 */
export function compilerFilename(file: ComponentFile): string {
  return file.area === 'site' ? `/site/${file.path}` : `/shared-components/${file.path}`;
}

/** The file on disk: `siteDir` is the site's real folder, `sharedDir` the shared-components folder. */
export function diskPath(file: ComponentFile, dirs: { siteDir?: string; sharedDir: string }): string {
  if (file.area === 'shared') return posix.join(dirs.sharedDir, file.path);
  if (dirs.siteDir === undefined) throw new Error(`no folder given for site "${file.site}"`);
  return posix.join(dirs.siteDir, file.path);
}
