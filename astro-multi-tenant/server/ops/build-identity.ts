import { createHash } from 'node:crypto';
import { stat } from 'node:fs/promises';

/**
 * A short id that changes with every build: the Astro bundle's size and mtime and the shared base
 * stylesheet's hashed name. Page ETags include it, so a deploy changes them all.
 */
export async function buildIdentity(astroEntry: string, baseCssFile: string | undefined): Promise<string> {
  const s = await stat(astroEntry).catch(() => undefined);
  return createHash('sha256').update(`${s?.size}:${s?.mtimeMs}:${baseCssFile}`).digest('base64url').slice(0, 16);
}
