import { describe, it, expect } from 'vitest';
import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';

const ROOT = resolve(import.meta.dirname, '../..');

describe('site components: memory stays bounded across edits', () => {
  it("lets the old version of an edited component be garbage-collected: its LoadedComponent and its Astro factory are gone after GC, the new one is held", () => {
    // In a process of its own: --expose-gc, and nothing else of the test runner holding objects.
    const child = spawnSync(resolve(ROOT, 'node_modules/.bin/node'), ['--expose-gc', resolve(ROOT, 'test/fixtures/components/collect-old-version.ts')], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
    expect(child.stderr).toBe('');
    expect(child.status).toBe(0);
    expect(JSON.parse(child.stdout.trim().split('\n').pop()!)).toEqual({ oldLoadedCollected: true, oldFactoryCollected: true, currentKept: true });
  });
});
