import { parse } from '@babel/parser';
import type { Node, Statement } from '@babel/types';

/**
 * Turns one compiled component (an ES module from @astrojs/compiler-rs) into the body of a plain
 * function `($$imports) => exports`, so that it can be evaluated with vm.compileFunction and
 * dropped like any function once nothing references it: Node keeps every ES module it ever
 * imported, which would make every edit of a component a leak (issue 15).
 *
 * - `import X from "s"`, `import { a as b } from "s"`, `import * as ns from "s"` become
 *   `const X = $$imports[i].default;` … where `i` indexes `imports`, in order of first use;
 * - `export const x = …`, `export function f`, `export { a as b }`, `export default e` lose their
 *   `export` and the body ends with `return { default, x, f, b }`;
 * - the compiler's own style imports (`<file>?astro&type=style&index=N&lang.css`) are dropped: the
 *   CSS comes back separately;
 * - the compiler runtime (`astro/compiler-runtime`) is allowed only as the compiler emits it: the
 *   module's first statement, binding only `$$`-names and `Fragment`.
 *
 * Refused (a `ModuleRefusal` with the compiled position): dynamic `import()`, `import.meta`,
 * re-exports (`export … from`), the runtime imported anywhere else. Which specifiers are allowed
 * is not decided here (import-rule.ts): every import is returned with where it is.
 */
export interface ModuleImport {
  specifier: string;
  /** `runtime`: the compiler's own runtime import; `component`: anything else, to be checked. */
  kind: 'runtime' | 'component';
  /** 1-based line and 0-based column of the specifier in the compiled code. */
  line: number;
  column: number;
}

export interface RewrittenModule {
  /** A strict function body taking `$$imports` (one value per entry of `imports`). */
  body: string;
  imports: ModuleImport[];
}

export class ModuleRefusal extends Error {
  readonly kind: 'dynamic-import' | 'import-meta' | 're-export' | 'runtime-import' | 'syntax';
  readonly specifier: string | undefined;
  /** 1-based line and 0-based column in the compiled code. */
  readonly line: number;
  readonly column: number;

  constructor(kind: ModuleRefusal['kind'], message: string, at: { line: number; column: number }, specifier?: string) {
    super(message);
    this.name = 'ModuleRefusal';
    this.kind = kind;
    this.line = at.line;
    this.column = at.column;
    this.specifier = specifier;
  }
}

export const COMPILER_RUNTIME = 'astro/compiler-runtime';
const IMPORTS = '$$imports';
const DEFAULT_LOCAL = '$$default';

interface Edit {
  start: number;
  end: number;
  text: string;
}

/** `compilerFilename`: the filename the compiler was given (its style imports start with it). */
export function rewriteModule(code: string, compilerFilename: string): RewrittenModule {
  let program;
  try {
    program = parse(code, { sourceType: 'module', createImportExpressions: true }).program;
  } catch (error) {
    const loc = (error as { loc?: { line: number; column: number } }).loc ?? { line: 1, column: 0 };
    throw new ModuleRefusal('syntax', `the compiled module does not parse: ${(error as Error).message}`, loc);
  }
  refuseDynamicImports(program);

  const imports: ModuleImport[] = [];
  const indexOf = new Map<string, number>();
  const edits: Edit[] = [];
  const exported: Array<[name: string, local: string]> = [];
  const stylePrefix = `${compilerFilename}?astro&type=style&index=`;

  const importIndex = (specifier: string, kind: ModuleImport['kind'], at: { line: number; column: number }): number => {
    let index = indexOf.get(specifier);
    if (index === undefined) {
      index = imports.push({ specifier, kind, line: at.line, column: at.column }) - 1;
      indexOf.set(specifier, index);
    }
    return index;
  };

  program.body.forEach((statement: Statement, position: number) => {
    switch (statement.type) {
      case 'ImportDeclaration': {
        const specifier = statement.source.value;
        const at = statement.source.loc!.start;
        if (specifier.startsWith(stylePrefix) && statement.specifiers.length === 0) {
          edits.push({ start: statement.start!, end: statement.end!, text: '' });
          return;
        }
        let kind: ModuleImport['kind'] = 'component';
        if (specifier === COMPILER_RUNTIME) {
          // The compiler binds its helpers as `$$name`, and `Fragment` as itself when a template uses <Fragment>.
          const asCompiled =
            position === 0 &&
            statement.specifiers.every((s) => s.type === 'ImportSpecifier' && (s.local.name.startsWith('$$') || (s.local.name === 'Fragment' && s.imported.type === 'Identifier' && s.imported.name === 'Fragment')));
          if (!asCompiled) throw new ModuleRefusal('runtime-import', `imports "${COMPILER_RUNTIME}", which only the compiler may`, at, specifier);
          kind = 'runtime';
        }
        const index = importIndex(specifier, kind, at);
        const bindings = statement.specifiers.map((s) => {
          if (s.type === 'ImportDefaultSpecifier') return `const ${s.local.name} = ${IMPORTS}[${index}].default;`;
          if (s.type === 'ImportNamespaceSpecifier') return `const ${s.local.name} = ${IMPORTS}[${index}];`;
          const imported = s.imported.type === 'Identifier' ? s.imported.name : s.imported.value;
          return `const ${s.local.name} = ${IMPORTS}[${index}][${JSON.stringify(imported)}];`;
        });
        edits.push({ start: statement.start!, end: statement.end!, text: bindings.join(' ') });
        return;
      }
      case 'ExportAllDeclaration':
        throw new ModuleRefusal('re-export', `re-exports "${statement.source.value}" (export … from is not supported in components)`, statement.source.loc!.start, statement.source.value);
      case 'ExportNamedDeclaration': {
        if (statement.source) {
          throw new ModuleRefusal('re-export', `re-exports "${statement.source.value}" (export … from is not supported in components)`, statement.source.loc!.start, statement.source.value);
        }
        if (statement.declaration) {
          edits.push({ start: statement.start!, end: statement.declaration.start!, text: '' });
          for (const name of declaredNames(statement.declaration)) exported.push([name, name]);
          return;
        }
        edits.push({ start: statement.start!, end: statement.end!, text: '' });
        for (const s of statement.specifiers) {
          if (s.type !== 'ExportSpecifier') continue;
          const name = s.exported.type === 'Identifier' ? s.exported.name : s.exported.value;
          exported.push([name, s.local.name]);
        }
        return;
      }
      case 'ExportDefaultDeclaration': {
        const declaration = statement.declaration;
        if ((declaration.type === 'FunctionDeclaration' || declaration.type === 'ClassDeclaration') && declaration.id) {
          edits.push({ start: statement.start!, end: declaration.start!, text: '' });
          exported.push(['default', declaration.id.name]);
        } else {
          edits.push({ start: statement.start!, end: declaration.start!, text: `const ${DEFAULT_LOCAL} = ` });
          exported.push(['default', DEFAULT_LOCAL]);
        }
        return;
      }
      default:
        return;
    }
  });

  let body = '';
  let cursor = 0;
  for (const edit of edits.sort((a, b) => a.start - b.start)) {
    body += code.slice(cursor, edit.start) + edit.text;
    cursor = edit.end;
  }
  body += code.slice(cursor);
  const returned = exported.map(([name, local]) => `${JSON.stringify(name)}: ${local}`).join(', ');
  const functionBody = `"use strict";\n${body}\nreturn { ${returned} };\n`;
  refuseAsRun(functionBody);
  return { body: functionBody, imports };
}

/**
 * The body checked once more as what it becomes: a function body, which JavaScript parses with
 * the script grammar, not the module one. The two differ: in a script `<!--` and a `-->` at the
 * start of a line begin comments (ECMAScript Annex B), in a module they are operators, so text the
 * module parse saw inside a template literal can be code when run (`a <!--b + \`⏎import('node:fs')⏎-->\``).
 * The Astro compiler reprints the code it emits, which removes such text today; this check does
 * not rely on it.
 */
function refuseAsRun(functionBody: string): void {
  let program;
  try {
    program = parse(functionBody, { sourceType: 'script', allowReturnOutsideFunction: true, strictMode: true }).program;
  } catch (error) {
    const loc = (error as { loc?: { line: number; column: number } }).loc ?? { line: 1, column: 0 };
    throw new ModuleRefusal('syntax', `the compiled module does not parse as the function it runs as: ${(error as Error).message}`, loc);
  }
  refuseDynamicImports(program);
}

/** Names a declaration binds: `const { a, b: [c] } = …` binds a and c. */
function declaredNames(declaration: Node): string[] {
  if (declaration.type === 'FunctionDeclaration' || declaration.type === 'ClassDeclaration') return declaration.id ? [declaration.id.name] : [];
  if (declaration.type !== 'VariableDeclaration') return [];
  const names: string[] = [];
  const visit = (pattern: Node | null | undefined): void => {
    if (!pattern) return;
    if (pattern.type === 'Identifier') names.push(pattern.name);
    else if (pattern.type === 'ObjectPattern') for (const p of pattern.properties) visit(p.type === 'RestElement' ? p.argument : p.value);
    else if (pattern.type === 'ArrayPattern') for (const e of pattern.elements) visit(e);
    else if (pattern.type === 'AssignmentPattern') visit(pattern.left);
    else if (pattern.type === 'RestElement') visit(pattern.argument);
  };
  for (const d of declaration.declarations) visit(d.id);
  return names;
}

/** Throws on the first `import(…)` or `import.meta` anywhere in the module. */
function refuseDynamicImports(root: Node): void {
  const stack: unknown[] = [root];
  while (stack.length > 0) {
    const node = stack.pop();
    if (Array.isArray(node)) {
      for (const child of node) stack.push(child);
      continue;
    }
    if (!node || typeof node !== 'object' || typeof (node as Node).type !== 'string') continue;
    const n = node as Node;
    if (n.type === 'ImportExpression' || (n.type === 'CallExpression' && n.callee.type === 'Import')) {
      const source = n.type === 'ImportExpression' ? n.source : n.arguments[0];
      const specifier = source?.type === 'StringLiteral' ? source.value : undefined;
      throw new ModuleRefusal('dynamic-import', `uses import(${specifier === undefined ? '…' : JSON.stringify(specifier)}): components may not load modules at run time`, n.loc!.start, specifier);
    }
    if (n.type === 'MetaProperty' && n.meta.name === 'import') {
      throw new ModuleRefusal('import-meta', 'uses import.meta, which components do not have', n.loc!.start);
    }
    for (const key of Object.keys(n)) {
      if (key === 'loc' || key === 'start' || key === 'end' || key === 'leadingComments' || key === 'trailingComments' || key === 'innerComments' || key === 'extra') continue;
      const value = (n as unknown as Record<string, unknown>)[key];
      if (value && typeof value === 'object') stack.push(value);
    }
  }
}
