import type { ContentCache } from '../sites/content-cache.ts';
import { componentCompilerId, openCompileCache, type CompileCache } from './compile-cache.ts';
import { createComponentLoader, type ComponentLoader } from './component-loader.ts';

/**
 * The component loader as main.ts wires it: on the shared content cache, compiling through the
 * disk cache in `cacheDir` (COMPONENT_CACHE_DIR; undefined = off, or refused: compiled in memory).
 */
export async function openComponentLoader(options: {
  cache: ContentCache;
  sharedDir: string;
  cacheDir: string | undefined;
  cacheBytes: number;
  onWarning?: (message: string, details: Record<string, unknown>) => void;
  observeLoad?: (seconds: number) => void;
}): Promise<{ loader: ComponentLoader; compileCache: CompileCache | undefined }> {
  const compileCache = options.cacheDir
    ? await openCompileCache({ dir: options.cacheDir, maxBytes: options.cacheBytes, compilerId: componentCompilerId(), onWarning: options.onWarning })
    : undefined;
  const loader = createComponentLoader({ cache: options.cache, sharedDir: options.sharedDir, compile: compileCache?.compile, observeLoad: options.observeLoad });
  return { loader, compileCache };
}
