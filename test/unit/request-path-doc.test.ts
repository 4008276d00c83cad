import { describe, it, expect } from 'vitest';
import { readFile, readdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';

const ROOT = resolve(import.meta.dirname, '../..');
const PIPELINE = join(ROOT, 'astro-multi-tenant/server/pipeline');

/** Stage file names in the order request-pipeline.ts runs them (each `xxxStage(` call names its file). */
async function stagesInCode(): Promise<string[]> {
  const source = await readFile(join(PIPELINE, 'request-pipeline.ts'), 'utf8');
  const imports = new Map([...source.matchAll(/import \{ (\w+Stage)[^}]*\} from '\.\/stages\/([\w-]+)\.ts'/g)].map((m) => [m[1]!, m[2]!]));
  const body = source.slice(source.indexOf('export function createRequestPipeline'));
  const calls = [...body.matchAll(/\b(\w+Stage)\(/g)].map((m) => m[1]!).filter((name) => imports.has(name));
  // The site stages are listed before the request stages in the source; the request runs the outer list first.
  const split = calls.indexOf('messageChecksStage');
  return [...calls.slice(split), ...calls.slice(0, split)].map((name) => imports.get(name)!);
}

async function stagesInReadme(): Promise<string[]> {
  const readme = await readFile(join(ROOT, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('## How a request is served'), readme.indexOf('## Layout'));
  const picture = section.slice(section.indexOf('```'), section.lastIndexOf('```'));
  return [...picture.matchAll(/^ {3}([a-z][a-z-]+) /gm)].map((m) => m[1]!);
}

describe('the README request-path picture', () => {
  it('names every stage the pipeline runs, in the order it runs them', async () => {
    const code = await stagesInCode();
    expect(code.length).toBeGreaterThan(10);
    expect(await stagesInReadme()).toEqual(code);
  });

  it('has a file in pipeline/stages/ for every stage it names, and no stage file goes unused', async () => {
    const files = (await readdir(join(PIPELINE, 'stages'))).map((f) => f.replace(/\.ts$/, '')).sort();
    expect([...new Set(await stagesInCode())].sort()).toEqual(files);
  });
});
