import { isBuiltin } from 'node:module';
import { posix } from 'node:path';
import { COMPONENT_NAME, type ComponentFile } from './component-file.ts';

/**
 * What a site component may import, decided from the import's text alone (no file system): the
 * rule of issue 15, checked on every import of the compiled module (module-rewrite.ts), so that
 * what is checked is exactly what would run.
 *
 * Allowed:
 * - from a site's `components/X.astro`: `./Other.astro`, another component of the same site;
 * - from a site's `layouts/x.astro`: `../components/Other.astro`;
 * - from anywhere: `@shared/<path>.astro`, a file below the platform's `shared-components/`;
 * - from a shared component: relative `.astro` paths that stay below `shared-components/`.
 *
 * Everything else is refused with a reason: Node built-ins (`node:fs`, `fs`), packages (bare or
 * scoped names), absolute paths and URLs (`/etc/x`, `file:`, `data:`, `http:`), anything that is
 * not an `.astro` file (`./data.json`, `./util.ts`), queries and fragments (`?raw`), escapes
 * (`../../other-site/components/X.astro`, `@shared/../x`), lower-case component names, and
 * characters a file name here never has (`%`, `\`, NUL, spaces). The compiler's own runtime
 * import is not decided here: module-rewrite.ts allows it only where the compiler puts it.
 */
export type ImportDecision = { ok: true; target: ComponentFile } | { ok: false; reason: string };

/** The prefix that names the platform's shared components from any component. */
export const SHARED_PREFIX = '@shared/';

const SEGMENT = /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/;
const SCHEME = /^[A-Za-z][A-Za-z0-9+.-]*:/;

/** The words every refusal ends with: what may be imported. */
export const IMPORT_RULE = `a site component may import only its own site's components ("./Name.astro"; from a layout "../components/Name.astro") and shared components ("${SHARED_PREFIX}Name.astro")`;

export function decideImport(importer: ComponentFile, specifier: string): ImportDecision {
  const refuse = (why: string): ImportDecision => ({ ok: false, reason: `imports "${printable(specifier)}", ${why}: ${IMPORT_RULE}` });
  if (specifier.length === 0 || specifier.length > 256) return refuse('which is not a component path');
  if (specifier.startsWith('node:') || isBuiltin(specifier)) return refuse('a Node.js built-in module');
  if (specifier.startsWith('/') || SCHEME.test(specifier)) return refuse('an absolute path, a URL or a virtual module');
  if (/[?#]/.test(specifier)) return refuse('with a query or fragment');
  if (/[^\x21-\x7e]|[%\\]/.test(specifier)) return refuse('with characters a component path never has');

  let root: 'site' | 'shared';
  let relative: string;
  if (specifier.startsWith(SHARED_PREFIX)) {
    root = 'shared';
    relative = specifier.slice(SHARED_PREFIX.length);
    if (relative.split('/').some((s) => !SEGMENT.test(s))) return refuse('which leaves the shared components folder');
  } else if (specifier.startsWith('./') || specifier.startsWith('../')) {
    root = importer.area;
    const joined = posix.join(posix.dirname(importer.path), specifier);
    if (joined.startsWith('../') || joined === '..' || posix.isAbsolute(joined)) {
      return refuse(importer.area === 'site' ? "which leaves the site's folder" : 'which leaves the shared components folder');
    }
    relative = joined;
  } else {
    return refuse('a package');
  }

  relative = posix.normalize(relative);
  if (!relative.endsWith('.astro')) return refuse('which is not an .astro component');
  if (relative.split('/').some((s) => !SEGMENT.test(s))) return refuse('which is not a component path');

  if (root === 'shared') return { ok: true, target: { area: 'shared', path: relative } };
  // A site's own files: only its components folder, one level, PascalCase names.
  const match = /^components\/([^/]+)\.astro$/.exec(relative);
  if (!match) return refuse(relative.startsWith('components/') ? 'which is not directly in the components folder' : "which is outside the site's components folder");
  if (!COMPONENT_NAME.test(match[1]!)) return refuse('whose name is not PascalCase');
  if (importer.area !== 'site') return refuse('a site file from a shared component');
  return { ok: true, target: { area: 'site', site: importer.site, path: relative } };
}

/** The specifier as shown in a message: control characters escaped, long ones cut. */
function printable(specifier: string): string {
  const shown = specifier.length > 120 ? `${specifier.slice(0, 120)}…` : specifier;
  return JSON.stringify(shown).slice(1, -1);
}
