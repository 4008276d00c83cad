import { createHash } from 'node:crypto';
import { ContentError } from '../errors.ts';
import { Worker } from 'node:worker_threads';
import type { ThreadAnswer, ThreadJob } from './markdown-thread.ts';

/**
 * Markdown is rendered off the event loop, on a small pool of render threads, each render held to
 * a CPU budget (docs/security.md: a site's Markdown cannot stall a worker).
 *
 * Why threads and not a cheaper bound: the pipeline is not linear on every hostile input. The
 * earlier micromark parser took 5.5 s for 10 KB of `a]` and 16.7 s for 180 KB of `[a](b `;
 * markdown-it is linear on those shapes, but raw HTML still goes through parse5 (32 KB of
 * misnested `<a><b><i>` takes about a second) and 10 KB of nested `<div>` or emphasis overflows
 * the stack of the tree's recursive steps. No input-shape budget can be shown to cover every such
 * shape, and a synchronous parse cannot be interrupted on the thread that runs it except by `vm`'s
 * timeout, whose watchdog thread costs 0.4 ms (p50) to 8 ms (p99) per call on a loaded 2-core
 * machine, more than a render. A thread can
 * be stopped at any instruction (`worker.terminate()`), costs ~30 µs per message round trip, and
 * its memory is bounded by its own heap limit. A thread is started on the first render and stopped
 * after `idleMs` without work, so a process whose pages all come from the Markdown cache holds none.
 *
 * The budget is the thread's own CPU time (`worker.cpuUsage()`), not wall time, so a legitimate
 * page is not refused because the machine is busy; a wall-clock backstop (`wallFactor`) stops a
 * render that cannot get the CPU at all, and that refusal is not remembered. A refusal that the
 * text itself causes (over the CPU budget, over the heap limit, nested too deeply) is remembered
 * by the text's hash: asking again costs a hash, not another render.
 */
export interface MarkdownRendererOptions {
  /**
   * CPU time (ms) one render may use on its thread before it is stopped and the text refused:
   * `cpuBaseMs + cpuMsPerKiB × KiB of text`. A linear budget is the promise a linear parser would
   * make; ordinary prose needs about 1–8 µs per byte with this pipeline (1 on an idle core, 8 on
   * this 2-core VM at load 16), i.e. up to 8 ms per KiB.
   */
  cpuBaseMs: number;
  cpuMsPerKiB: number;
  /** A render still running after `wallFactor ×` its CPU budget of wall time is stopped (a starved machine); not remembered. */
  wallFactor: number;
  /** How often (ms) a running render's CPU time is checked. */
  checkEveryMs: number;
  /** Old-generation heap limit of each render thread (MiB): a text needing more is refused (stopped at 75 % of it, see HEAP_STOP_FRACTION). */
  heapMb: number;
  /** Render threads at most; more are started only while every one is busy. */
  maxThreads: number;
  /** A thread without work for this long (ms) is stopped, giving its memory back. */
  idleMs: number;
  /** How many refused texts are remembered (by hash), most recent first. */
  rememberRefusals: number;
  /** The thread's entry module (markdown-thread.ts). */
  threadUrl: URL;
}

export const DEFAULT_RENDERER_OPTIONS: MarkdownRendererOptions = {
  cpuBaseMs: 1000,
  cpuMsPerKiB: 8,
  wallFactor: 10,
  checkEveryMs: 25,
  heapMb: 256,
  maxThreads: 2,
  idleMs: 5 * 60_000,
  rememberRefusals: 10_000,
  threadUrl: new URL('./markdown-thread.ts', import.meta.url),
};

/**
 * A text that was not rendered. `reason` completes "the Markdown …" for a site owner; `lasting`
 * is true when the text itself is the cause (the same text is refused again, so the refusal may
 * be remembered by its hash, on disk too), false when it was the machine (a backstop, a thread
 * that died for another reason): asking again may succeed.
 */
export class MarkdownRefused extends Error {
  readonly reason: string;
  readonly lasting: boolean;

  constructor(reason: string, lasting: boolean) {
    super(`Markdown ${reason}`);
    this.name = 'MarkdownRefused';
    this.reason = reason;
    this.lasting = lasting;
  }
}

export interface MarkdownRenderer {
  /**
   * Sanitised HTML of `markdown`; rejects with MarkdownRefused when the render is cut off or fails.
   * `owner` (a site id) decides whose turn it is when renders wait for a thread. `onRunning` is
   * called when the text is handed to a thread (not while it waits for one): what may take a
   * process down from then on (markdown-cache.ts journals it).
   */
  render(markdown: string, owner?: string, onRunning?: () => void): Promise<string>;
  /** Stops every thread; renders in flight are refused (not lasting). */
  close(): Promise<void>;
  readonly stats: Readonly<{ renders: number; refused: number; remembered: number; threadsStarted: number; threads: number }>;
}

/** The CPU budget (ms) of one text: linear in its length. */
export function cpuBudgetMs(options: Pick<MarkdownRendererOptions, 'cpuBaseMs' | 'cpuMsPerKiB'>, markdown: string): number {
  return Math.round(options.cpuBaseMs + (options.cpuMsPerKiB * markdown.length) / 1024);
}

interface Job {
  id: number;
  /** Whose page this is (a site id): the queue takes owners in turn. */
  owner: string;
  markdown: string;
  hash: string;
  budgetMs: number;
  onRunning?: () => void;
  /** Stopped once for memory already: the next stop is the text's own doing (see outOfMemory). */
  retriedForMemory?: boolean;
  resolve: (html: string) => void;
  reject: (error: MarkdownRefused) => void;
}

interface Slot {
  worker: Worker;
  ready: boolean;
  job: Job | undefined;
  /** The thread's cumulative CPU (µs) when its current job was posted. */
  cpuAtStart: number;
  /** Its cumulative CPU as last reported. */
  cpuReported: number;
  startedAt: number;
  idleTimer: NodeJS.Timeout | undefined;
  checking: boolean;
}

const textHash = (markdown: string) => createHash('sha256').update(markdown).digest('base64');

export function createMarkdownRenderer(overrides: Partial<MarkdownRendererOptions> = {}): MarkdownRenderer {
  const options = { ...DEFAULT_RENDERER_OPTIONS, ...overrides };
  const slots = new Set<Slot>();
  // Waiting renders by owner (a site), in turn: the owner served last goes to the back, and an
  // owner with a render already running waits while any other owner has work. So one site's burst
  // of expensive pages takes at most one thread while others are waiting, never all of them.
  const queues = new Map<string, Job[]>();
  let queued = 0;
  function enqueue(job: Job, first = false): void {
    const waiting = queues.get(job.owner);
    if (waiting) {
      if (first) waiting.unshift(job);
      else waiting.push(job);
    } else queues.set(job.owner, [job]);
    queued++;
  }

  /**
   * A render stopped for memory (the watchdog at HEAP_STOP_FRACTION, or the heap limit). A
   * thread's heap also holds what earlier renders left for the collector, so one stop may be the
   * thread's history, not the text: the text is tried once more, first in line, on a new thread
   * (the stopped one is gone), and refused (lasting) only if it is stopped there too.
   */
  function outOfMemory(job: Job): void {
    const reason = `needs more than ${options.heapMb} MiB of memory to render`;
    if (job.retriedForMemory) {
      refuse(job, reason, true);
      return;
    }
    job.retriedForMemory = true;
    enqueue(job, true);
  }
  function takeNext(): Job | undefined {
    const running = new Set<string>();
    for (const slot of slots) if (slot.job) running.add(slot.job.owner);
    let pick: string | undefined;
    for (const owner of queues.keys()) {
      if (!running.has(owner)) {
        pick = owner;
        break;
      }
    }
    pick ??= queues.keys().next().value;
    if (pick === undefined) return undefined;
    const waiting = queues.get(pick)!;
    const job = waiting.shift()!;
    queued--;
    queues.delete(pick);
    if (waiting.length > 0) queues.set(pick, waiting);
    return job;
  }
  // Insertion-ordered: re-inserting on a hit keeps the most recent refusals.
  const refusals = new Map<string, string>();
  const stats = { renders: 0, refused: 0, remembered: 0, threadsStarted: 0, threads: 0 };
  let nextId = 1;
  let watchdog: NodeJS.Timeout | undefined;
  let closed = false;

  function remember(hash: string, reason: string): void {
    refusals.delete(hash);
    refusals.set(hash, reason);
    if (refusals.size > options.rememberRefusals) refusals.delete(refusals.keys().next().value!);
  }

  function spawn(): Slot {
    const worker = new Worker(options.threadUrl, { resourceLimits: { maxOldGenerationSizeMb: options.heapMb } });
    const slot: Slot = { worker, ready: false, job: undefined, cpuAtStart: 0, cpuReported: 0, startedAt: 0, idleTimer: undefined, checking: false };
    slots.add(slot);
    stats.threadsStarted++;
    stats.threads = slots.size;
    worker.on('message', (answer: ThreadAnswer) => {
      slot.cpuReported = answer.cpuMicros;
      if ('ready' in answer) {
        slot.ready = true;
      } else if (slot.job?.id === answer.id) {
        const job = slot.job;
        slot.job = undefined;
        if ('html' in answer) {
          stats.renders++;
          job.resolve(answer.html);
        } else refuse(job, answer.failure, true);
      }
      dispatch();
    });
    // An uncaught error in the thread, including ERR_WORKER_OUT_OF_MEMORY at the heap limit.
    worker.on('error', (error: NodeJS.ErrnoException) => {
      const job = slot.job;
      retire(slot);
      if (job) {
        if (error.code === 'ERR_WORKER_OUT_OF_MEMORY') outOfMemory(job);
        else refuse(job, `could not be rendered (render thread failed: ${error.message})`, false);
      }
      dispatch();
    });
    worker.on('exit', () => {
      const job = slot.job;
      retire(slot);
      if (job) refuse(job, 'could not be rendered (render thread stopped)', false);
      dispatch();
    });
    return slot;
  }

  /** Forgets a slot whose thread is gone or being stopped; its job, if any, is the caller's. */
  function retire(slot: Slot): void {
    if (!slots.delete(slot)) return;
    slot.job = undefined;
    clearTimeout(slot.idleTimer);
    stats.threads = slots.size;
    void slot.worker.terminate().catch(() => {});
  }

  function refuse(job: Job, reason: string, lasting: boolean): void {
    stats.refused++;
    if (lasting) remember(job.hash, reason);
    job.reject(new MarkdownRefused(reason, lasting));
  }

  function dispatch(): void {
    for (const slot of slots) {
      if (queued === 0) break;
      if (slot.ready && slot.job === undefined) start(slot, takeNext()!);
    }
    // Threads still loading will take the head of the queue when ready; start another only for
    // work beyond them.
    let loading = [...slots].filter((s) => !s.ready).length;
    while (queued > loading && slots.size < options.maxThreads && !closed) {
      spawn();
      loading++;
    }
    for (const slot of slots) {
      const idle = slot.ready && slot.job === undefined;
      // An idle thread does not keep the process alive (a CLI, a test, a draining server).
      if (idle) slot.worker.unref();
      else slot.worker.ref();
      if (idle && slot.idleTimer === undefined) {
        slot.idleTimer = setTimeout(() => retire(slot), options.idleMs);
        slot.idleTimer.unref();
      }
    }
    const busy = [...slots].some((s) => s.job !== undefined);
    if (busy && watchdog === undefined) {
      watchdog = setInterval(check, options.checkEveryMs);
      watchdog.unref();
    } else if (!busy && watchdog !== undefined) {
      clearInterval(watchdog);
      watchdog = undefined;
    }
  }

  function start(slot: Slot, job: Job): void {
    clearTimeout(slot.idleTimer);
    slot.idleTimer = undefined;
    slot.job = job;
    slot.cpuAtStart = slot.cpuReported;
    slot.startedAt = performance.now();
    try {
      job.onRunning?.();
    } catch {
      // a journal that cannot be written does not stop the render
    }
    slot.worker.postMessage({ id: job.id, markdown: job.markdown } satisfies ThreadJob);
  }

  const MIB = 1024 * 1024;
/**
 * Share of `heapMb` a render's heap may reach before the watchdog stops it (checked every
 * `checkEveryMs`): the rest is headroom for what it allocates between two checks.
 */
const HEAP_STOP_FRACTION = 0.75;

/** Stops renders over their CPU budget, near their heap limit, or past the wall-clock backstop. */
  function check(): void {
    for (const slot of slots) {
      const job = slot.job;
      if (job === undefined || slot.checking) continue;
      const wallLimitMs = job.budgetMs * options.wallFactor;
      if (performance.now() - slot.startedAt > wallLimitMs) {
        stop(slot, job, `took longer than ${wallLimitMs} ms to render on a busy machine`, false);
        continue;
      }
      slot.checking = true;
      Promise.all([slot.worker.cpuUsage(), slot.worker.getHeapStatistics()])
        .then(([{ user, system }, heap]) => {
          if (slot.job !== job) return;
          if (user + system - slot.cpuAtStart > job.budgetMs * 1000) {
            stop(slot, job, `takes more than ${job.budgetMs} ms of CPU to render, the limit for its size (${options.cpuBaseMs} ms + ${options.cpuMsPerKiB} ms per KiB)`, true);
          } else if (heap.used_heap_size > options.heapMb * MIB * HEAP_STOP_FRACTION) {
            // Stopped from here, short of the limit: a thread that reaches it is normally
            // terminated with ERR_WORKER_OUT_OF_MEMORY, but V8 can instead abort the whole process.
            retire(slot);
            outOfMemory(job);
            dispatch();
          }
        })
        .catch(() => {})
        .finally(() => {
          slot.checking = false;
        });
    }
  }

  function stop(slot: Slot, job: Job, reason: string, lasting: boolean): void {
    retire(slot);
    refuse(job, reason, lasting);
    dispatch();
  }

  return {
    render(markdown, owner = '', onRunning) {
      if (closed) return Promise.reject(new MarkdownRefused('could not be rendered (the server is stopping)', false));
      const hash = textHash(markdown);
      const known = refusals.get(hash);
      if (known !== undefined) {
        stats.remembered++;
        remember(hash, known);
        return Promise.reject(new MarkdownRefused(known, true));
      }
      return new Promise<string>((resolve, reject) => {
        enqueue({ id: nextId++, owner, markdown, hash, budgetMs: cpuBudgetMs(options, markdown), onRunning, resolve, reject });
        dispatch();
      });
    },
    async close() {
      closed = true;
      const waiting = [...queues.values()].flat();
      queues.clear();
      queued = 0;
      for (const job of waiting) job.reject(new MarkdownRefused('could not be rendered (the server is stopping)', false));
      const stopping = [...slots].map((slot) => {
        const job = slot.job;
        retire(slot);
        if (job) refuse(job, 'could not be rendered (the server is stopping)', false);
        return slot.worker.terminate();
      });
      clearInterval(watchdog);
      watchdog = undefined;
      await Promise.allSettled(stopping);
    },
    stats,
  };
}

/**
 * A page body through `render`, with a refusal turned into the page's error, naming the file:
 * `PAGE_INVALID` (503, and listed by `sites check`), field `body`. A lasting refusal is returned,
 * so the page loader keeps it like any invalid page until the file changes; a passing one (the
 * machine, not the text) is thrown, so the next request tries again.
 */
export async function renderPageBody(render: (markdown: string) => Promise<string>, body: string, file: string): Promise<{ html: string } | { error: ContentError }> {
  try {
    return { html: await render(body) };
  } catch (error) {
    if (!(error instanceof MarkdownRefused)) throw error;
    const refusal = new ContentError('PAGE_INVALID', [{ file, field: 'body', reason: `the Markdown ${error.reason}` }]);
    if (!error.lasting) throw refusal;
    return { error: refusal };
  }
}
