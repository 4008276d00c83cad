import { PlatformError } from '../errors.ts';

/**
 * Why a site component or layout cannot be used, with where: the file as a site owner names it
 * (`sites/<id>/components/Pricing.astro`, `shared-components/…`) and, when known, the 1-based line
 * and column in that file. Pages that use the component answer 503 (`COMPONENT_INVALID`); the
 * message is for the log, the status page and `sites check`, never for a visitor.
 */
export type ComponentProblem =
  /** The Astro compiler refused the file (syntax, unclosed tag): its own words. */
  | 'compile'
  /** An import the rule forbids (import-rule.ts); `specifier` is the text imported. */
  | 'forbidden-import'
  /** An allowed import naming a component file that does not exist (or is refused: a link out, too large). */
  | 'missing-import'
  /** A component importing itself through others. */
  | 'import-cycle'
  /** Something the host cannot run: client-side hydration, bundled scripts, `import.meta`, re-exports. */
  | 'unsupported'
  /** The file itself cannot be read: a link out of the folder, not a regular file, too large. */
  | 'file'
  /** Evaluating the compiled module threw (module-level code of the component). */
  | 'evaluate';

export interface ComponentLocation {
  /** `sites/<id>/components/Name.astro`, `sites/<id>/layouts/page.astro` or `shared-components/<path>`. */
  file: string;
  /** 1-based, when known. */
  line?: number;
  /** 1-based, when known. */
  column?: number;
}

export class ComponentError extends PlatformError {
  declare readonly code: 'COMPONENT_INVALID';
  readonly problem: ComponentProblem;
  readonly file: string;
  readonly line: number | undefined;
  readonly column: number | undefined;
  /** The import specifier, for import problems. */
  readonly specifier: string | undefined;
  /** The reason alone, without the location (the message is `file:line:column: reason`). */
  readonly reason: string;

  constructor(problem: ComponentProblem, where: ComponentLocation, reason: string, options: { specifier?: string; cause?: unknown } = {}) {
    super('COMPONENT_INVALID', `${formatLocation(where)}: ${reason}`, where.file, { cause: options.cause });
    this.name = 'ComponentError';
    this.problem = problem;
    this.file = where.file;
    this.line = where.line;
    this.column = where.column;
    this.specifier = options.specifier;
    this.reason = reason;
  }
}

/** `file:line:column`, or as much of it as is known. */
export function formatLocation(where: ComponentLocation): string {
  if (where.line === undefined) return where.file;
  return where.column === undefined ? `${where.file}:${where.line}` : `${where.file}:${where.line}:${where.column}`;
}
