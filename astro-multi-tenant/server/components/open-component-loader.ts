import type { ContentCache } from '../sites/content-cache.ts';
import { componentCompilerId, openCompileCache, type CompileCache } from './compile-cache.ts';
import { createComponentLoader, type ComponentLoader } from './component-loader.ts';
import { createIsolatedCompiler } from './compiler-process.ts';

/**
 * The component loader as main.ts (and `sites check`) wire it: on the shared content cache,
 * compiling through the disk cache in `cacheDir` (COMPONENT_CACHE_DIR; undefined = off, or
 * refused: compiled every time), a miss compiled in a child process (compiler-process.ts: a
 * crash of the native compiler is that file's error, not the server's end). `close` stops the child.
 */
export async function openComponentLoader(options: {
  cache: ContentCache;
  sharedDir: string;
  cacheDir: string | undefined;
  cacheBytes: number;
  onWarning?: (message: string, details: Record<string, unknown>) => void;
  observeLoad?: (seconds: number) => void;
}): Promise<{ loader: ComponentLoader; compileCache: CompileCache | undefined; close: () => void }> {
  const isolated = createIsolatedCompiler();
  const compileCache = options.cacheDir
    ? await openCompileCache({ dir: options.cacheDir, maxBytes: options.cacheBytes, compilerId: componentCompilerId(), compileSource: isolated.compile, onWarning: options.onWarning })
    : undefined;
  const loader = createComponentLoader({ cache: options.cache, sharedDir: options.sharedDir, compile: compileCache?.compile ?? isolated.compile, observeLoad: options.observeLoad });
  return { loader, compileCache, close: isolated.close };
}
