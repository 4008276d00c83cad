import { describe, it, expect } from 'vitest';
import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';

const ROOT = resolve(import.meta.dirname, '../..');

describe('site components: memory stays bounded across edits', () => {
  // In a process of its own: --expose-gc, and nothing of the test runner holding objects.
  const child = () => {
    const run = spawnSync(resolve(ROOT, 'node_modules/.bin/node'), ['--expose-gc', resolve(ROOT, 'test/fixtures/components/collect-old-version.ts')], { cwd: ROOT, encoding: 'utf8', timeout: 90_000 });
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    return JSON.parse(run.stdout.trim().split('\n').pop()!) as { oldLoadedCollected: boolean; oldFactoryCollected: boolean; currentKept: boolean; heapGrowthBytes: number };
  };
  const result = (() => {
    let cached: ReturnType<typeof child> | undefined;
    return () => (cached ??= child());
  })();

  it("lets the old version of an edited component be garbage-collected: its LoadedComponent and its Astro factory are gone after GC, the new one is held", () => {
    expect(result()).toMatchObject({ oldLoadedCollected: true, oldFactoryCollected: true, currentKept: true });
  }, 90_000);

  it('keeps nothing of 200 old versions of 64 KiB each: the heap grows by less than 4 MiB (keeping them would be over 12.5 MiB)', () => {
    // vm.compileFunction, which keeps every script it compiles, grew 13.9 MB here; Function: 0.24 MB.
    expect(result().heapGrowthBytes).toBeLessThan(4 * 1024 * 1024);
  }, 90_000);
});
