import { parentPort } from 'node:worker_threads';
import { RenderedTooLarge, renderMarkdownHere } from './markdown-pipeline.ts';

/**
 * The render thread's entry (markdown-renderer.ts starts it with `new Worker`): renders one
 * Markdown text at a time and answers with the HTML or the reason it could not. Every answer
 * carries this thread's cumulative CPU time, so the parent can tell how much CPU the next job
 * uses by asking only while it runs.
 *
 * Protocol (structured clone): in `{ id, markdown }`; out `{ ready: true, cpuMicros }` once, when
 * the pipeline is loaded, then `{ id, html, cpuMicros }` or `{ id, failure, cpuMicros }`.
 */
export interface ThreadJob {
  id: number;
  markdown: string;
}

export type ThreadAnswer = { ready: true; cpuMicros: number } | { id: number; html: string; cpuMicros: number } | { id: number; failure: string; cpuMicros: number };

const cpuMicros = () => {
  const { user, system } = process.threadCpuUsage();
  return user + system;
};

/** Why a render threw, in words for a site owner; a deep nest overflows the parsers' recursion. */
export function failureReason(error: unknown): string {
  if (error instanceof RangeError && /call stack/i.test(error.message)) return 'is nested too deeply to render (blockquotes, lists, brackets or HTML elements)';
  if (error instanceof RenderedTooLarge) return error.message;
  return `could not be rendered (${error instanceof Error ? error.message.split('\n')[0] : String(error)})`;
}

if (parentPort) {
  const port = parentPort;
  // Loading and first use compile the pipeline: done before `ready`, so no job pays for it.
  await renderMarkdownHere('# warm\n\n*a* [b](c) <b>d</b>').catch(() => {});
  port.postMessage({ ready: true, cpuMicros: cpuMicros() } satisfies ThreadAnswer);
  port.on('message', async ({ id, markdown }: ThreadJob) => {
    let answer: ThreadAnswer;
    try {
      answer = { id, html: await renderMarkdownHere(markdown), cpuMicros: 0 };
    } catch (error) {
      answer = { id, failure: failureReason(error), cpuMicros: 0 };
    }
    answer.cpuMicros = cpuMicros();
    port.postMessage(answer);
  });
}
