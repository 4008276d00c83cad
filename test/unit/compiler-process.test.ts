import { describe, it, expect, afterEach } from 'vitest';
import { createIsolatedCompiler, type IsolatedCompiler } from '../../astro-multi-tenant/server/components/compiler-process.ts';
import { compileComponent } from '../../astro-multi-tenant/server/components/compile-component.ts';
import { ComponentError } from '../../astro-multi-tenant/server/components/component-error.ts';

const file = { area: 'site', site: 'acme', path: 'components/Deep.astro' } as const;
const nested = (depth: number) => `${'<div>'.repeat(depth)}${'</div>'.repeat(depth)}`;

let compiler: IsolatedCompiler;
afterEach(() => compiler?.close());

async function failure(promise: Promise<unknown>): Promise<ComponentError> {
  const error = await promise.then(() => undefined, (e: unknown) => e);
  expect(error).toBeInstanceOf(ComponentError);
  return error as ComponentError;
}

describe('compiling in a child process', () => {
  it('gives exactly what compiling in this process gives, errors included', async () => {
    compiler = createIsolatedCompiler();
    const source = `---\nimport Badge from './Badge.astro';\nconst { n } = Astro.props;\n---\n<p class="x">{n}<Badge /></p>\n<style>.x { color: red }</style>`;
    expect(await compiler.compile(file, source)).toEqual(compileComponent(source, file));
    const error = await failure(compiler.compile(file, '<div>\n<p></div>'));
    expect(error.message).toMatch(/^sites\/acme\/components\/Deep\.astro:2:\d+: Expected corresponding JSX closing tag for 'p'/);
    expect(error.problem).toBe('compile');
  });

  it('turns a crash of the native compiler (markup nested 20,000 deep: SIGSEGV) into an error for that file; this process lives on and the next file compiles', async () => {
    compiler = createIsolatedCompiler();
    const error = await failure(compiler.compile(file, nested(20_000)));
    expect(error.message).toMatch(/^sites\/acme\/components\/Deep\.astro: the Astro compiler crashed on this file \(SIGSEGV/);
    expect((await compiler.compile(file, '<p>after</p>')).body).toContain('<p>after</p>');
  });

  it('stops a compile over its time limit with an error for that file', async () => {
    compiler = createIsolatedCompiler({ timeoutMs: 1 });
    // 2,000 deep takes tens of milliseconds to compile (and a child to start), never one.
    const error = await failure(compiler.compile(file, nested(2000)));
    expect(error.message).toBe('sites/acme/components/Deep.astro: took more than 1 ms to compile');
  });
});

describe('compiling in turns', () => {
  it('takes sites in turn: one site’s pile of slow compiles holds another site’s compile back by one of them, not all', async () => {
    compiler = createIsolatedCompiler();
    // About 0.2 s each to compile (expressions nested 3,000 deep); the other site's file, a millisecond.
    const slow = `<p>{${'('.repeat(3000)}1${')'.repeat(3000)}}</p>`;
    await compiler.compile(file, '<p>warm</p>');
    const done: string[] = [];
    const pile = Array.from({ length: 6 }, (_, i) => compiler.compile({ area: 'site', site: 'pile', path: `components/Slow${i}.astro` }, `${slow}<i>${i}</i>`).then(() => done.push(`pile ${i}`)));
    const other = compiler.compile({ area: 'site', site: 'other', path: 'components/Quick.astro' }, '<p>quick</p>').then(() => done.push('other'));
    await Promise.all([...pile, other]);
    expect(done.indexOf('other')).toBeLessThanOrEqual(1);
    expect(done.filter((d) => d.startsWith('pile'))).toEqual(['pile 0', 'pile 1', 'pile 2', 'pile 3', 'pile 4', 'pile 5']);
  });
});
