import { ComponentError } from './component-error.ts';
import { displayPath, type ComponentFile } from './component-file.ts';

/**
 * Evaluating compiled components without ES modules, so that an old version is garbage once
 * nothing references it (Node never unloads an ES module: re-importing every edit would leak).
 *
 * Each file's rewritten body (module-rewrite.ts) becomes one function (`moduleFunction`, made in
 * the main context). Its imports are passed in as values: the Astro compiler
 * runtime of the *caller* and the exports of the components it imports, evaluated first. What
 * holds an evaluation is the LoadedComponent (component-loader.ts) that made it; when the cache
 * drops that, the functions, their exports and every closure go with it.
 */

/**
 * The view's own `import * as runtime from 'astro/compiler-runtime'`. A component has to be made
 * by the same runtime instance as the page rendering it: our view is bundled by Vite, so its
 * Astro runtime is a copy of its own, and Astro tells render results apart partly by
 * `instanceof` (SlotString, HTMLString in astro/dist/runtime/server/render/), which fails
 * across copies. So the view passes its runtime, and each runtime gets its own evaluation.
 */
export type CompilerRuntime = object;

/** An Astro component factory (`createComponent(…)` result: a function with isAstroComponentFactory). */
export type AstroComponentFactory = ((...args: never[]) => unknown) & { isAstroComponentFactory?: boolean; moduleId?: string };

export interface ModuleUnit {
  file: ComponentFile;
  /** `(imports) => exports`. */
  run: (imports: unknown[]) => Record<string, unknown>;
  /** One per `$$imports` entry: the runtime, or the unit whose exports are passed. */
  deps: Array<'runtime' | ModuleUnit>;
}

/**
 * Makes the function of one file; a syntax error in it (it parsed once already) is a compile error.
 *
 * `Function`, not vm.compileFunction or vm.Script: Node keeps every script the vm module compiles
 * (about 1 KiB each plus its source text, measured on Node 24: 7 KiB per edit of a 3 KiB
 * component, never given back), which is the very leak this design exists to avoid; a function
 * made by `Function` is collected with everything it references. The `sourceURL` comment names
 * the file in stack traces. Where `import()` could reach the module loader from this code, the
 * static check (module-rewrite.ts) has already refused it: it runs on the exact code evaluated.
 */
export function moduleFunction(body: string, file: ComponentFile): ModuleUnit['run'] {
  try {
    // eslint-disable-next-line @typescript-eslint/no-implied-eval -- evaluating compiled components is the point
    return new Function('$$imports', `${body}\n//# sourceURL=component:${encodeURI(displayPath(file))}\n`) as ModuleUnit['run'];
  } catch (error) {
    throw new ComponentError('compile', { file: displayPath(file) }, `the compiled module does not run: ${(error as Error).message}`, { cause: error });
  }
}

// astro 7.3.4's compiler-runtime lacks createMetadata, which compiler-rs 0.4 still emits (version
// skew); the metadata only serves Astro's build-time CSS graph, so a stand-in that keeps it is enough.
const createMetadata = (filePathname: string, options: object) => ({ filePathname, ...options });
const completed = new WeakMap<CompilerRuntime, Record<string, unknown>>();

/** The runtime as the compiled code imports it: the caller's, with the functions this Astro lacks. */
export function runtimeImports(runtime: CompilerRuntime): Record<string, unknown> {
  let imports = completed.get(runtime);
  if (!imports) {
    imports = { createMetadata, ...(runtime as Record<string, unknown>) };
    completed.set(runtime, imports);
  }
  return imports;
}

/**
 * Evaluates `entry` and what it imports (each unit once) against `runtime`; returns the entry's
 * exports. Throws ComponentError (`evaluate`) naming the file whose module code threw.
 */
export function evaluate(entry: ModuleUnit, runtime: CompilerRuntime): Record<string, unknown> {
  const done = new Map<ModuleUnit, Record<string, unknown>>();
  const imports = runtimeImports(runtime);
  const run = (unit: ModuleUnit): Record<string, unknown> => {
    const known = done.get(unit);
    if (known) return known;
    const values = unit.deps.map((dep) => (dep === 'runtime' ? imports : run(dep)));
    let exports;
    try {
      exports = unit.run(values);
    } catch (error) {
      throw new ComponentError('evaluate', { file: displayPath(unit.file) }, `its module code threw: ${(error as Error)?.message ?? String(error)}`, { cause: error });
    }
    done.set(unit, exports);
    return exports;
  };
  return run(entry);
}
