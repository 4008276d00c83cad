import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readFile, readdir, rename, stat, unlink, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { markdownPipelineId, prepareMarkdownCacheDir } from '../sites/markdown-cache.ts';
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
 * checked before use and before every new shard folder, prepareMarkdownCacheDir): a folder others
 * could write to is refused with a warning and every component is compiled in memory instead.
 * An entry that is not a well-formed record of its own key is ignored and compiled afresh.
 * Only successful compiles are stored: a failing one costs a compile (well under a millisecond).
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

const KEY_FILE = /^[a-f0-9]{64}\.json$/;
const TEMP_FILE = /\.tmp$/;
const STALE_TEMP_MS = 10 * 60_000;

export function createCompileCache(options: CompileCacheOptions): CompileCache {
  const { dir, maxBytes } = options;
  const stats = { hits: 0, misses: 0, writes: 0, writeErrors: 0, pruned: 0 };
  const pending = new Set<Promise<unknown>>();
  const madeDirs = new Set<string>();
  let usable = true;
  let knownBytes: number | undefined;
  let pruning: Promise<void> | undefined;

  const track = (promise: Promise<unknown>): void => {
    pending.add(promise);
    void promise.finally(() => pending.delete(promise)).catch(() => {});
  };

  const pathOf = (key: string) => join(dir, key.slice(0, 2), `${key}.json`);

  async function read(key: string): Promise<CompiledComponent | undefined> {
    let text: string;
    try {
      text = await readFile(pathOf(key), 'utf8');
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

  async function write(key: string, compiled: CompiledComponent): Promise<void> {
    const path = pathOf(key);
    const folder = dirname(path);
    if (!madeDirs.has(folder)) {
      // Checked again before each new shard: a cleaner may have removed the folder and someone else made it.
      const checked = await prepareMarkdownCacheDir(dir);
      if (!checked.ok) {
        usable = false;
        options.onWarning?.(`component cache folder is not usable (${checked.reason}); compiling in memory until restart`, { dir, reason: checked.reason });
        return;
      }
      await mkdir(folder, { recursive: true, mode: 0o700 });
      madeDirs.add(folder);
    }
    const text = JSON.stringify({ key, compiled });
    // Write-then-rename: a reader sees a whole entry or none, whatever the workers do at once.
    const temp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
    await writeFile(temp, text, { mode: 0o600 });
    await rename(temp, path).catch(async (error: unknown) => {
      await unlink(temp).catch(() => {});
      throw error;
    });
    stats.writes++;
    if (knownBytes !== undefined) knownBytes += Buffer.byteLength(text);
    if (knownBytes === undefined || knownBytes > maxBytes) prune();
  }

  /** Drops the oldest-written entries until the folder is under 80 % of its bound. */
  function prune(): void {
    if (pruning) return;
    pruning = (async () => {
      const files: Array<{ path: string; size: number; mtimeMs: number }> = [];
      for (const shard of await readdir(dir).catch(() => [] as string[])) {
        if (!/^[a-f0-9]{2}$/.test(shard)) continue;
        for (const name of await readdir(join(dir, shard)).catch(() => [] as string[])) {
          const path = join(dir, shard, name);
          const s = await stat(path).catch(() => undefined);
          if (!s?.isFile()) continue;
          if (TEMP_FILE.test(name)) {
            if (Date.now() - s.mtimeMs > STALE_TEMP_MS) await unlink(path).catch(() => {});
          } else if (KEY_FILE.test(name)) files.push({ path, size: s.size, mtimeMs: s.mtimeMs });
        }
      }
      let total = files.reduce((sum, f) => sum + f.size, 0);
      if (total > maxBytes) {
        files.sort((a, b) => a.mtimeMs - b.mtimeMs);
        for (const file of files) {
          if (total <= maxBytes * 0.8) break;
          await unlink(file.path).then(() => stats.pruned++, () => {});
          total -= file.size;
        }
      }
      knownBytes = total;
    })().finally(() => {
      pruning = undefined;
    });
    track(pruning);
  }

  return {
    async compile(file, source) {
      if (!usable) return compileComponent(source, file);
      const key = compileCacheKey(options.compilerId, file, source);
      const cached = await read(key);
      if (cached) {
        stats.hits++;
        return cached;
      }
      stats.misses++;
      const compiled = compileComponent(source, file);
      track(
        write(key, compiled).catch((error: NodeJS.ErrnoException) => {
          stats.writeErrors++;
          if (['EACCES', 'EROFS', 'ENOSPC', 'EPERM'].includes(error.code ?? '')) {
            usable = false;
            options.onWarning?.('component cache folder is not writable; compiling in memory (set COMPONENT_CACHE_DIR)', { dir, code: error.code });
          }
        }),
      );
      return compiled;
    },
    async settle() {
      while (pending.size > 0) await Promise.allSettled([...pending]);
    },
    stats,
  };
}

/**
 * Checks the folder and opens the cache on it; a folder that is refused (not this user's alone)
 * gives no cache, with a warning naming the reason, and components are compiled in memory.
 */
export async function openCompileCache(options: CompileCacheOptions): Promise<CompileCache | undefined> {
  const checked = await prepareMarkdownCacheDir(options.dir);
  if (checked.ok) return createCompileCache(options);
  options.onWarning?.('component cache folder refused; compiling every component in memory (set COMPONENT_CACHE_DIR to a private folder)', { dir: options.dir, reason: checked.reason });
  return undefined;
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
