import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { ComponentError, type ComponentProblem } from './component-error.ts';
import { displayPath, type ComponentFile } from './component-file.ts';
import type { CompiledComponent } from './compile-component.ts';

/**
 * Compiles components in a child process of its own, so that the Astro compiler cannot take the
 * server down. @astrojs/compiler-rs is native code: markup nested a few thousand deep
 * (`<div>` × 5000, about 25 KB) overflows its stack and the process dies of SIGSEGV, which no
 * try/catch and no worker thread can contain; and its time grows faster than the nesting
 * (40 ms at 2,000 deep). In a child, a crash or a compile over `timeoutMs` is that file's
 * ComponentError (the loader keeps it until the file changes), and the next compile gets a new
 * child. Compiles are rare (first use of a version on a machine; the disk cache serves the rest)
 * and take a millisecond or two, so one child per server process compiles one file at a time,
 * and goes away after `idleMs` without work.
 *
 * Waiting compiles take sites in turn (each site's own in order, the shared components as one
 * more "site"): a file can be made to compile for the whole time limit (240 KB of `<p>x</p>`
 * takes 11 s), so a site with many such files would otherwise hold every other site's first
 * compiles behind all of its own. With turns, another site waits for at most one compile per
 * site that has compiles waiting.
 */
export interface IsolatedCompiler {
  compile(file: ComponentFile, source: string): Promise<CompiledComponent>;
  /** Stops the child (tests, shutdown); a later compile starts a new one. */
  close(): void;
}

export interface CompileRequest {
  id: number;
  file: ComponentFile;
  source: string;
}

export type CompileReply =
  | { id: number; ok: true; compiled: CompiledComponent }
  | { id: number; ok: false; error: { problem: ComponentProblem; file: string; line?: number; column?: number; reason: string; specifier?: string } };

const CHILD = fileURLToPath(new URL('./compiler-child.ts', import.meta.url));

export function createIsolatedCompiler(options: { timeoutMs?: number; idleMs?: number } = {}): IsolatedCompiler {
  const timeoutMs = options.timeoutMs ?? 5000;
  const idleMs = options.idleMs ?? 30_000;
  let child: ChildProcess | undefined;
  let nextId = 1;
  let idleTimer: NodeJS.Timeout | undefined;
  // One compile at a time: what a crash or a timeout is blamed on is never in doubt. Waiting
  // compiles are queued per site; the Map's order is the order of turns.
  const waiting = new Map<string, Array<() => Promise<void>>>();
  let running = false;

  async function pump(): Promise<void> {
    if (running) return;
    running = true;
    try {
      while (waiting.size > 0) {
        const [owner, jobs] = waiting.entries().next().value!;
        const job = jobs.shift()!;
        waiting.delete(owner);
        await job();
        // Back in line behind every site that has a compile waiting now, those that came during this one included.
        if (jobs.length > 0) {
          const since = waiting.get(owner);
          waiting.set(owner, since ? [...jobs, ...since] : jobs);
        }
      }
    } finally {
      running = false;
    }
  }

  function stop(): void {
    clearTimeout(idleTimer);
    child?.kill('SIGKILL');
    child = undefined;
  }

  function start(): ChildProcess {
    // Its own small heap, none of the server's flags; stdout/stderr are the server's, for its rare words.
    // --no-warnings: Node's TypeScript transform (compile-component.ts) says it is experimental on stderr.
    const started = fork(CHILD, [], { execArgv: ['--max-old-space-size=256', '--no-warnings'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'], serialization: 'advanced' });
    started.on('error', () => {});
    return started;
  }

  function compileNow(file: ComponentFile, source: string): Promise<CompiledComponent> {
    clearTimeout(idleTimer);
    const worker = (child ??= start());
    const id = nextId++;
    const where = { file: displayPath(file) };
    worker.ref();
    return new Promise<CompiledComponent>((resolve, reject) => {
      const finish = () => {
        clearTimeout(timer);
        worker.off('message', onMessage);
        worker.off('exit', onExit);
        worker.unref();
        idleTimer = setTimeout(stop, idleMs);
        idleTimer.unref();
      };
      const onMessage = (reply: CompileReply) => {
        if (reply.id !== id) return;
        finish();
        if (reply.ok) resolve(reply.compiled);
        else reject(new ComponentError(reply.error.problem, { file: reply.error.file || where.file, line: reply.error.line, column: reply.error.column }, reply.error.reason, { specifier: reply.error.specifier }));
      };
      const onExit = (code: number | null, signal: NodeJS.Signals | null) => {
        finish();
        if (child === worker) child = undefined;
        reject(new ComponentError('compile', where, `the Astro compiler crashed on this file (${signal ?? `exit code ${code}`}); markup or expressions nested thousands deep do that`));
      };
      const timer = setTimeout(() => {
        finish();
        if (child === worker) child = undefined;
        worker.kill('SIGKILL');
        reject(new ComponentError('compile', where, `took more than ${timeoutMs} ms to compile`));
      }, timeoutMs);
      worker.on('message', onMessage);
      worker.on('exit', onExit);
      worker.send({ id, file, source } satisfies CompileRequest);
    });
  }

  return {
    compile(file, source) {
      return new Promise<CompiledComponent>((resolve, reject) => {
        const owner = file.area === 'site' ? `site\0${file.site}` : 'shared';
        const jobs = waiting.get(owner) ?? [];
        jobs.push(() => compileNow(file, source).then(resolve, reject));
        waiting.set(owner, jobs);
        void pump();
      });
    },
    close: stop,
  };
}
