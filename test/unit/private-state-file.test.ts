import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import * as fs from 'node:fs/promises';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openPrivateStateFile, type StateFs } from '../../astro-multi-tenant/server/tenant/private-state-file.ts';
import { PlatformError } from '../../astro-multi-tenant/server/errors.ts';

let root: string;
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'amt-statefile-'));
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

interface Records {
  format: 1;
  hosts: Record<string, string>;
}
const open = (dir: string, stateFs?: StateFs) =>
  openPrivateStateFile<Records>({
    dir,
    fs: stateFs,
    name: 'records.json',
    label: 'test records',
    empty: () => ({ format: 1, hosts: {} }),
    parse: (json) => ((json as Records | null)?.format === 1 ? (json as Records) : undefined),
  });

describe('a private state file', () => {
  it('flushes the new records to disk before they replace the old ones, so a machine crash leaves the old file or the new one, never an empty one', async () => {
    const calls: string[] = [];
    const recording = new Proxy(fs, {
      get(target, name: string) {
        const real = (target as unknown as Record<string, unknown>)[name];
        if (typeof real !== 'function') return real;
        return async (...args: unknown[]) => {
          const result = await (real as (...a: unknown[]) => Promise<unknown>).apply(target, args);
          if (name === 'open') {
            const handle = result as fs.FileHandle;
            return new Proxy(handle, {
              get(h, method: string) {
                const fn = (h as unknown as Record<string, unknown>)[method];
                if (typeof fn !== 'function') return fn;
                return (...a: unknown[]) => {
                  if (method === 'sync' || method === 'datasync') calls.push(`sync ${String(args[0]).endsWith('.tmp') ? 'temp' : 'folder'}`);
                  return (fn as (...x: unknown[]) => unknown).apply(h, a);
                };
              },
            });
          }
          if (name === 'rename') calls.push('rename');
          return result;
        };
      },
    }) as unknown as StateFs;
    const file = open(join(root, 'state'), recording);
    await file.update((r) => {
      r.hosts['shop.test'] = 'shop';
      return { changed: true, result: undefined };
    });
    expect(calls).toEqual(['sync temp', 'rename', 'sync folder']);
    expect((await open(join(root, 'state')).read()).hosts).toEqual({ 'shop.test': 'shop' });
  });

  it('refuses a file cut short (a crash before the flush) with an error naming the file and what to do, not a bare JSON syntax error', async () => {
    const file = open(join(root, 'state'));
    await file.update(() => ({ changed: true, result: undefined }));
    await writeFile(join(root, 'state', 'records.json'), '{"format":1,"hosts":{"shop.te', { mode: 0o600 });
    const error = await open(join(root, 'state')).read().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PlatformError);
    expect((error as PlatformError).code).toBe('CONFIG_INVALID');
    expect((error as Error).message).toMatch(/^STATE_DIR: .*records\.json is not valid JSON \(.+\): the test records file was cut short or damaged; move it aside and the records start empty$/);
  });
});
