import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * The hashed file name of the shared base stylesheet (`<cssDir>/_base/manifest.json`, written by
 * `npm run css`), or undefined when it has not been built: pages then render unstyled.
 */
export async function readBaseCssFile(cssDir: string): Promise<string | undefined> {
  return readFile(join(cssDir, '_base', 'manifest.json'), 'utf8')
    .then((text) => (JSON.parse(text) as { file?: unknown }).file)
    .then((file) => (typeof file === 'string' ? file : undefined))
    .catch(() => undefined);
}
