import { SourceMap, stripTypeScriptTypes } from 'node:module';
import { transform } from '@astrojs/compiler-rs';
import { ComponentError } from './component-error.ts';
import { compilerFilename, displayPath, type ComponentFile } from './component-file.ts';
import { COMPILER_RUNTIME, ModuleRefusal, rewriteModule } from './module-rewrite.ts';

/**
 * One `.astro` file compiled for the host: Astro's own compiler (@astrojs/compiler-rs, the call
 * and options of astro/dist/core/compile/compile.js, so the output matches what `astro build`
 * makes of our shared components), TypeScript in the frontmatter stripped by that compiler (what
 * it leaves, such as namespaces, by Node's own transform), then rewritten into a function body
 * (module-rewrite.ts). Pure: the same text at the same path gives
 * the same result, which is what lets the disk cache share it between sites and workers.
 */
export interface CompiledComponent {
  /** Strict function body taking `$$imports` (module-rewrite.ts). */
  body: string;
  /** What `$$imports` holds, in order; line/column (1-based) point into the source `.astro` file. */
  imports: Array<{ specifier: string; kind: 'runtime' | 'component'; line: number | undefined; column: number | undefined }>;
  /** Scoped CSS of the file's `<style>` blocks, already scoped to `scope`. */
  css: string[];
  /** The compiler's scope hash (the `data-astro-cid-<scope>` attribute on the component's elements). */
  scope: string;
}

/** Options of Astro's own compile call that matter for server output (compile.js). */
const TRANSFORM = {
  sourcemap: 'external',
  internalURL: COMPILER_RUNTIME,
  compact: 'jsx',
  scopedStyleStrategy: 'attribute',
  resultScopedSlot: true,
  astroGlobalArgs: JSON.stringify(undefined),
} as const;

/**
 * Compiles `source`, the text of `file`. Throws ComponentError naming `file:line:column`:
 * `compile` for what the compiler refuses, `unsupported` for what the host cannot run (client
 * hydration, bundled `<script>`, `import()`, `import.meta`, re-exports), `forbidden-import` for
 * the compiler runtime imported by hand. Import specifiers are returned, not judged (import-rule.ts).
 */
export function compileComponent(source: string, file: ComponentFile): CompiledComponent {
  const where = displayPath(file);
  const filename = compilerFilename(file);
  let result;
  try {
    result = transform(source, { ...TRANSFORM, filename, normalizedFilename: filename });
  } catch (error) {
    throw new ComponentError('compile', { file: where }, `the Astro compiler failed: ${(error as Error).message}`, { cause: error });
  }
  const failure = result.diagnostics.find((d) => d.severity === 'error');
  if (failure) {
    const label = failure.labels[0];
    const hint = failure.hint ? ` (${failure.hint})` : '';
    // The compiler's lines are 1-based and its columns 0-based (characters): shown 1-based, as editors do.
    throw new ComponentError('compile', { file: where, line: label?.line, column: label === undefined ? undefined : label.column + 1 }, `${failure.text}${hint}`);
  }
  if (result.hydratedComponents.length > 0 || result.clientOnlyComponents.length > 0 || /\sclient:[a-z]/.test(source)) {
    throw new ComponentError('unsupported', { file: where, ...locate(source, /\sclient:[a-z]+/, 1) }, 'uses a client: directive; site components render on the server only (there is no browser bundle)');
  }
  if (result.scripts.length > 0) {
    throw new ComponentError('unsupported', { file: where, ...locate(source, /<script(?![^>]*\bis:inline\b)/i) }, 'has a <script> that Astro would bundle; site components have no browser bundle, so only <script is:inline> is supported');
  }

  let rewritten;
  try {
    rewritten = rewriteWithTypeScriptLeft(result.code, filename);
  } catch (error) {
    if (!(error instanceof ModuleRefusal)) throw error;
    const at = sourcePosition(source, result.map, error);
    const problem = error.kind === 'runtime-import' ? 'forbidden-import' : error.kind === 'syntax' ? 'compile' : 'unsupported';
    throw new ComponentError(problem, { file: where, ...at }, error.message, { specifier: error.specifier });
  }
  const used = new Set<number>();
  const imports = rewritten.imports.map((i) => {
    const at = i.kind === 'runtime' ? undefined : locateSpecifier(source, i.specifier, used);
    return { specifier: i.specifier, kind: i.kind, line: at?.line, column: at?.column };
  });
  return { body: rewritten.body, imports, css: result.css, scope: result.scope };
}

/**
 * rewriteModule, and when the compiled module does not parse, once more after Node's own
 * TypeScript transform: the Astro compiler strips types and enums but leaves what is not mere
 * syntax to erase (a `namespace` with values). Only then, because the first use of the transform
 * costs about half a second (and Node says it is experimental).
 */
function rewriteWithTypeScriptLeft(code: string, filename: string): ReturnType<typeof rewriteModule> {
  try {
    return rewriteModule(code, filename);
  } catch (error) {
    if (!(error instanceof ModuleRefusal) || error.kind !== 'syntax') throw error;
    let transformed: string;
    try {
      transformed = stripTypeScriptTypes(code, { mode: 'transform' });
    } catch {
      throw error;
    }
    return rewriteModule(transformed, filename);
  }
}

type Position = { line: number; column: number };

/** 1-based line and column of `offset` in `text`. */
function positionOf(text: string, offset: number): Position {
  let line = 1;
  let start = 0;
  for (let i = text.indexOf('\n'); i !== -1 && i < offset; i = text.indexOf('\n', i + 1)) {
    line++;
    start = i + 1;
  }
  return { line, column: offset - start + 1 };
}

function locate(source: string, pattern: RegExp, skip = 0): Partial<Position> {
  const match = pattern.exec(source);
  return match ? positionOf(source, match.index + skip) : {};
}

/**
 * Where the source imports `specifier`: the quoted text in the file (imports are copied from the
 * frontmatter as written, and the compiler hoists them). `used` keeps two imports of one specifier
 * apart. Undefined for an import the compiler made up.
 */
function locateSpecifier(source: string, specifier: string, used: Set<number>): Position | undefined {
  for (const quote of ['"', "'", '`']) {
    const needle = `${quote}${specifier}${quote}`;
    for (let at = source.indexOf(needle); at !== -1; at = source.indexOf(needle, at + 1)) {
      if (used.has(at)) continue;
      used.add(at);
      return positionOf(source, at + 1);
    }
  }
  return undefined;
}

/**
 * The source position of something found in the compiled code: the specifier as written when
 * there is one, else the source map's line, with the column of the construct on that line.
 */
function sourcePosition(source: string, map: string, refusal: ModuleRefusal): Partial<Position> {
  if (refusal.specifier !== undefined) {
    const at = locateSpecifier(source, refusal.specifier, new Set());
    if (at) return at;
  }
  let entry;
  try {
    const found = new SourceMap(JSON.parse(map) as ConstructorParameters<typeof SourceMap>[0]).findEntry(refusal.line - 1, refusal.column);
    entry = 'originalLine' in found ? found : undefined;
  } catch {
    entry = undefined;
  }
  if (!entry) return {};
  const lineText = source.split('\n')[entry.originalLine] ?? '';
  const needle = refusal.kind === 'import-meta' ? 'import.meta' : refusal.kind === 'dynamic-import' ? 'import(' : undefined;
  const column = needle !== undefined && lineText.includes(needle) ? lineText.indexOf(needle) + 1 : entry.originalColumn + 1;
  return { line: entry.originalLine + 1, column };
}
