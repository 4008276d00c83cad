import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdir, mkdtemp, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildStaleness, type BuildPart } from '../helpers/build-freshness.ts';

/** The integration tests' global setup rebuilds the server only when this says a build is stale. */
describe('buildStaleness', () => {
  let root: string;
  const part: BuildPart = { script: 'build', inputs: ['src', 'config.mjs', 'optional-folder'], outputs: ['dist/entry.mjs', 'css/manifest.json'] };
  const at = (path: string, seconds: number) => utimes(join(root, path), seconds, seconds);

  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'amt-freshness-'));
    for (const dir of ['src/components', 'dist', 'css']) await mkdir(join(root, dir), { recursive: true });
    for (const file of ['src/page.astro', 'src/components/Card.astro', 'config.mjs', 'dist/entry.mjs', 'css/manifest.json']) await writeFile(join(root, file), 'x');
    // Sources at t=1000 s, outputs built at t=2000 s and t=2100 s.
    for (const path of ['src', 'src/components', 'src/page.astro', 'src/components/Card.astro', 'config.mjs']) await at(path, 1000);
    await at('dist/entry.mjs', 2000);
    await at('css/manifest.json', 2100);
  });

  afterEach(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('is up to date when every output is newer than every input (a missing input is no change)', async () => {
    expect(await buildStaleness(root, part)).toEqual({ stale: false, reason: 'up to date' });
  });

  it('is stale when a file deep in an input folder was edited after the oldest output, and names it', async () => {
    await at('src/components/Card.astro', 2050);
    expect(await buildStaleness(root, part)).toEqual({ stale: true, reason: 'src/components/Card.astro is newer than dist/entry.mjs' });
  });

  it('is stale when an input file was edited after the build', async () => {
    await at('config.mjs', 3000);
    expect((await buildStaleness(root, part)).reason).toBe('config.mjs is newer than dist/entry.mjs');
  });

  it('is stale when a file was removed from an input folder (the folder changed)', async () => {
    await rm(join(root, 'src/page.astro'));
    const result = await buildStaleness(root, part);
    expect(result).toEqual({ stale: true, reason: 'src is newer than dist/entry.mjs' });
  });

  it.each(['dist/entry.mjs', 'css/manifest.json'])('is stale when the output %s is missing', async (output) => {
    await rm(join(root, output));
    expect(await buildStaleness(root, part)).toEqual({ stale: true, reason: `${output} is missing` });
  });

  it('is not fooled by one fresh output when another is old', async () => {
    await at('css/manifest.json', 5000);
    await at('src/page.astro', 2500);
    expect((await buildStaleness(root, part)).stale).toBe(true);
  });
});
