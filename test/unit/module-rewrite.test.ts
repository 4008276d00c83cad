import { describe, expect, it } from 'vitest';
import { ModuleRefusal, rewriteModule } from '../../astro-multi-tenant/server/components/module-rewrite.ts';

/**
 * The static check of a compiled component is made on what runs: module-rewrite.ts turns the
 * compiled module into a function body, and a function body is parsed with JavaScript's script
 * grammar, where `<!--` and a line-leading `-->` begin comments (ECMAScript Annex B). A module
 * parse alone sees the line between them as text inside a template literal.
 */
const HIDDEN_IMPORT = "let a = 1, b = 2;\na <!--b + `\nimport('node:fs').then((fs) => globalThis.leaked = fs)\n-->`;\nexport default 1;\n";

describe('the compiled module checked as the function it runs as', () => {
  it('refuses an import() that only a function body runs: hidden from the module grammar behind an HTML-like comment', () => {
    let refusal: unknown;
    try {
      rewriteModule(HIDDEN_IMPORT, '/site/components/X.astro');
    } catch (error) {
      refusal = error;
    }
    expect(refusal).toBeInstanceOf(ModuleRefusal);
    expect((refusal as ModuleRefusal).kind).toBe('dynamic-import');
    expect((refusal as ModuleRefusal).specifier).toBe('node:fs');
    expect((globalThis as { leaked?: unknown }).leaked).toBeUndefined();
  });

  it('still accepts what the compiler writes: imports, exports and a template literal holding a comparison', () => {
    const rewritten = rewriteModule("import { $$render } from 'astro/compiler-runtime';\nimport Badge from './Badge.astro';\nlet a = 1, b = 2;\nexport const x = a < !--b + `t`;\nexport default function C() { return $$render; }\n", '/site/components/X.astro');
    expect(rewritten.imports.map((i) => i.specifier)).toEqual(['astro/compiler-runtime', './Badge.astro']);
    const run = new Function('$$imports', rewritten.body) as (imports: unknown[]) => Record<string, unknown>;
    const exports = run([{ $$render: 'r' }, { default: 'B' }]);
    // 1 < (!1 + 't') = 1 < 'falset': false, as a module reads it.
    expect(exports.x).toBe(false);
    expect(typeof exports.default).toBe('function');
  });
});
