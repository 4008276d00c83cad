/**
 * The child process of compiler-process.ts: compiles what it is sent, one file at a time, and
 * answers with the result or the ComponentError's fields. Exits when its parent goes away.
 */
import { ComponentError } from './component-error.ts';
import { compileComponent } from './compile-component.ts';
import type { CompileReply, CompileRequest } from './compiler-process.ts';

process.on('disconnect', () => process.exit(0));
process.on('message', (message: CompileRequest) => {
  let reply: CompileReply;
  try {
    reply = { id: message.id, ok: true, compiled: compileComponent(message.source, message.file) };
  } catch (error) {
    reply =
      error instanceof ComponentError
        ? { id: message.id, ok: false, error: { problem: error.problem, file: error.file, line: error.line, column: error.column, reason: error.reason, specifier: error.specifier } }
        : { id: message.id, ok: false, error: { problem: 'compile', file: '', reason: `the compiler failed: ${(error as Error)?.message ?? String(error)}` } };
  }
  process.send!(reply);
});
