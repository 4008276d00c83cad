import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createCacheFolder, isUnwritable, openIfPrivate } from '../sites/cache-folder.ts';
import { markdownPipelineId } from '../sites/markdown-cache.ts';
import { compilerFilename, type ComponentFile } from './component-file.ts';
import { compileComponent, type CompiledComponent } from './compile-component.ts';

/**
 * Compiled components on disk, shared by every worker of a machine and kept across restarts
 * (COMPONENT_CACHE_DIR), like the Markdown cache (sites/markdown-cache.ts).
 *
 * Content-addressed: the key is a hash of the compiler's identity (our compile code, the Astro
 * compiler's and Astro's versions), the name the compiler is given (`/site/components/X.astro`,
 * no site id) and the text. An edit is a new key, nothing is invalidated, and two sites with the
 * same file share an entry: the output is a pure function of those inputs, and which imports are
 * allowed is decided from the entry at every load, for the site that loads it.
 *
 * What is stored is code the server runs, so the folder must be this user's alone (mode 0700;
 * checked before use and before every new shard folder): a folder others
 * could write to is refused with a warning and every component is compiled in memory instead
 * (the folder, its atomic writes and its bound: sites/cache-folder.ts, shared with the Markdown cache).
 * An entry that is not a well-formed record of its own key is ignored and compiled afresh.
 * Only successful compiles are stored: a failing one costs a compile each time (well under a
 * millisecond for what the compiler refuses, up to the child's time limit for a timeout), which
 * the loader then keeps in memory until the file changes.
 */
export interface CompileCache {
  /** Compiles through the cache; throws ComponentError as compileComponent does. */
  compile(file: ComponentFile, source: string): Promise<CompiledComponent>;
  /** Waits for background writes and pruning (tests, shutdown). */
  settle(): Promise<void>;
  readonly stats: Readonly<{ hits: number; misses: number; writes: number; writeErrors: number; pruned: number }>;
}

export interface CompileCacheOptions {
  dir: string;
  /** Upper bound of the files' total size (bytes); the oldest-written go first past it. */
  maxBytes: number;
  /** Identity of the compiler (componentCompilerId()): part of every key. */
  compilerId: string;
  /** Compiles a miss; default: compileComponent in this process (compiler-process.ts isolates it). */
  compileSource?: (file: ComponentFile, source: string) => Promise<CompiledComponent>;
  onWarning?: (message: string, details: Record<string, unknown>) => void;
}

/** Our compile code and the versions of the packages that shape its output. */
export function componentCompilerId(): string {
  const ids = [import.meta.resolve('./compile-component.ts'), import.meta.resolve('./module-rewrite.ts')].map((url, i) =>
    markdownPipelineId(url, i === 0 ? ['@astrojs/compiler-rs', 'astro', '@babel/parser'] : []),
  );
  return createHash('sha256').update(ids.join('\0')).digest('hex').slice(0, 32);
}

export function compileCacheKey(compilerId: string, file: ComponentFile, source: string): string {
  return createHash('sha256').update(compilerId).update('\0').update(compilerFilename(file)).update('\0').update(source).digest('hex');
}

export function createCompileCache(options: CompileCacheOptions): CompileCache {
  const { dir } = options;
  const folder = createCacheFolder({
    dir,
    maxBytes: options.maxBytes,
    extension: '.json',
    onRefused: (reason) => options.onWarning?.(`component cache folder is not usable (${reason}); compiling in memory until restart`, { dir, reason }),
  });
  const stats = folder.withCounts({ hits: 0, misses: 0, writeErrors: 0 });
  let writable = true;
  const compileSource = options.compileSource ?? (async (file: ComponentFile, source: string) => compileComponent(source, file));

  async function read(key: string): Promise<CompiledComponent | undefined> {
    let text: string;
    try {
      text = await readFile(folder.pathOf(key), 'utf8');
    } catch {
      return undefined;
    }
    try {
      const record = JSON.parse(text) as { key?: unknown; compiled?: unknown };
      return record.key === key && isCompiled(record.compiled) ? record.compiled : undefined;
    } catch {
      return undefined;
    }
  }

  function write(key: string, compiled: CompiledComponent): void {
    const writing = folder.write(key, JSON.stringify({ key, compiled })).catch((error: NodeJS.ErrnoException) => {
      stats.writeErrors++;
      if (isUnwritable(error)) {
        // A folder we cannot write to will not get better by retrying on every compile.
        writable = false;
        options.onWarning?.('component cache folder is not writable; compiling in memory (set COMPONENT_CACHE_DIR)', { dir, code: error.code });
      }
    });
    folder.track(writing);
  }

  return {
    async compile(file, source) {
      if (!folder.usable) return compileSource(file, source);
      const key = compileCacheKey(options.compilerId, file, source);
      const cached = await read(key);
      if (cached) {
        stats.hits++;
        return cached;
      }
      stats.misses++;
      const compiled = await compileSource(file, source);
      if (writable) write(key, compiled);
      return compiled;
    },
    settle: () => folder.settle(),
    stats,
  };
}

/**
 * Checks the folder and opens the cache on it; a folder that is refused (not this user's alone)
 * gives no cache, with a warning naming the reason, and components are compiled in memory.
 */
export function openCompileCache(options: CompileCacheOptions): Promise<CompileCache | undefined> {
  return openIfPrivate(
    options.dir,
    () => createCompileCache(options),
    (reason) => options.onWarning?.('component cache folder refused; compiling every component in memory (set COMPONENT_CACHE_DIR to a private folder)', { dir: options.dir, reason }),
  );
}

function isCompiled(value: unknown): value is CompiledComponent {
  if (!value || typeof value !== 'object') return false;
  const c = value as Record<string, unknown>;
  return (
    typeof c.body === 'string' &&
    typeof c.scope === 'string' &&
    Array.isArray(c.css) &&
    c.css.every((s) => typeof s === 'string') &&
    Array.isArray(c.imports) &&
    c.imports.every((i) => i && typeof i === 'object' && typeof (i as { specifier?: unknown }).specifier === 'string' && ((i as { kind?: unknown }).kind === 'runtime' || (i as { kind?: unknown }).kind === 'component'))
  );
}
