import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createCacheFolder, isUnwritable, openIfPrivate, prepareCacheFolder } from './cache-folder.ts';
import { createRenderJournal } from './render-journal.ts';
import { MarkdownRefused } from './markdown-renderer.ts';

/**
 * Rendered Markdown on disk, shared by every worker on a machine and kept across restarts.
 *
 * Rendering Markdown (markdown-it, the tree, raw HTML, the sanitiser) was most of a cold page load
 * with the earlier micromark pipeline (about 1.5–3 ms and 2 MB of short-lived objects per page;
 * ~0.3 ms now), and a render thread hop besides. After a reload or a restart every
 * worker starts cold while almost no page has changed; with this cache a cold page is one
 * `readFile` of its HTML.
 *
 * Content-addressed: the key is a hash of the pipeline's identity and the Markdown text, so the
 * same text always maps to the same sanitised HTML (the pipeline is a pure function of the text),
 * an edit is a new key (nothing to invalidate), and a new build or dependency version is a new
 * key space. Two sites with the same text share an entry, which is safe for the same reason.
 */
export interface MarkdownCache {
  /**
   * Renders through the cache: a hit reads a file, a miss renders and writes it in the background.
   * Rejects with MarkdownRefused for a text whose render was refused, now or remembered on disk.
   */
  render(markdown: string, owner?: string): Promise<string>;
  /** Waits for background writes and pruning (tests, shutdown). */
  settle(): Promise<void>;
  /** `refusals`: hits that were a remembered refusal (counted in `hits` too). */
  readonly stats: Readonly<{ hits: number; misses: number; writes: number; writeErrors: number; pruned: number; refusals: number }>;
}

export interface MarkdownCacheOptions {
  dir: string;
  /** Upper bound of the files' total size; the oldest-written files go first past it. */
  maxBytes: number;
  /** `owner` (a site id) is passed through: the renderer takes owners in turn. */
  /** The renderer (markdown-renderer.ts); it calls `onRunning` when the text reaches a render thread. */
  render: (markdown: string, owner?: string, onRunning?: () => void) => Promise<string>;
  /** Identity of the renderer (code + dependency versions): part of every key. */
  pipelineId: string;
  onWarning?: (message: string, details: Record<string, unknown>) => void;
}

export function markdownCacheKey(pipelineId: string, markdown: string): string {
  return createHash('sha256').update(pipelineId).update('\0').update(markdown).digest('hex');
}

/** Where the file of `key` is: `<dir>/<key[0..2]>/<key>.html` (cache-folder.ts). */
export function markdownCachePath(dir: string, key: string): string {
  return join(dir, key.slice(0, 2), `${key}.html`);
}

/**
 * A cache file starting with this holds the reason a text was refused instead of its HTML. Rendered
 * HTML never contains U+0000: CommonMark (§2.3) and the HTML parser (parse5) both replace it with
 * U+FFFD, so no page can look like a refusal.
 */
const REFUSED_MARK = '\u0000refused\n';

/** A cache file holding this marks a suspect: a text that was rendering when its process stopped (see render). */
const SUSPECT_MARK = '\u0000suspect\n';

const CRASH_REASON = 'made a render thread run out of memory and stop its server process, twice';

function refusalOf(cached: string): string | undefined {
  return cached.startsWith(REFUSED_MARK) ? cached.slice(REFUSED_MARK.length) : undefined;
}

export function createMarkdownCache(options: MarkdownCacheOptions): MarkdownCache {
  const { dir } = options;
  const folder = createCacheFolder({
    dir,
    maxBytes: options.maxBytes,
    extension: '.html',
    onRefused: (reason) => options.onWarning?.(`Markdown cache folder is not usable (${reason}); cache off until restart`, { dir, reason }),
  });
  const stats = folder.withCounts({ hits: 0, misses: 0, writeErrors: 0, refusals: 0 });
  let writable = true;
  const track = (task: Promise<unknown>) => folder.track(task);

  const journal = createRenderJournal({ dir });

  const write = (key: string, html: string): Promise<unknown> => folder.write(key, html);

  return {
    async render(markdown, owner) {
      if (!folder.usable) return options.render(markdown, owner);
      const key = markdownCacheKey(options.pipelineId, markdown);
      let cached: string | undefined;
      try {
        cached = (await folder.read(key))?.toString('utf8');
      } catch {
        // Missing (the usual miss) or unreadable: render, as if there were no cache.
      }
      // A text that was on a render thread when its process stopped is a suspect, rendered again.
      const suspect = cached?.startsWith(SUSPECT_MARK) ?? false;
      if (cached !== undefined && !suspect) {
        stats.hits++;
        const refusal = refusalOf(cached);
        if (refusal !== undefined) {
          stats.refusals++;
          throw new MarkdownRefused(refusal, true);
        }
        return cached;
      }
      stats.misses++;
      // A render thread that reaches its heap limit is normally stopped, but V8 can abort the whole
      // process instead. So the renders on threads are journalled (render-journal.ts), and a
      // journal whose process is gone names the texts that were rendering when it stopped. One stop
      // proves nothing (a kill, the OOM killer, the other thread's text): each such text becomes a
      // suspect and is rendered again. A suspect that is rendering when a process stops again is
      // refused from then on, like any text refused for what it is, instead of crashing every
      // worker in turn: a text that takes processes down costs at most two restarts per machine.
      if (writable) {
        let refusedHere = false;
        for (const crashed of journal.takeCrashed()) {
          const before = crashed === key ? cached : await folder.read(crashed).then((b) => b?.toString('utf8'), () => undefined);
          if (before !== undefined && !before.startsWith(SUSPECT_MARK)) continue; // rendered or refused since: nothing to add
          const mark = before === undefined ? SUSPECT_MARK : REFUSED_MARK + CRASH_REASON;
          track(write(crashed, mark).catch(() => stats.writeErrors++));
          refusedHere ||= crashed === key && mark !== SUSPECT_MARK;
        }
        if (refusedHere) {
          stats.refusals++;
          throw new MarkdownRefused(CRASH_REASON, true);
        }
      }
      // Only a render on a thread is journalled, not one waiting for a thread: the journal names
      // at most the threads' few texts, and a crash blames none that was only queued.
      let journalled = false;
      const onRunning = () => {
        // Once: a render stopped for memory is handed to a new thread again (markdown-renderer.ts).
        if (!journalled) journalled = writable && journal.begin(key);
      };
      let html: string;
      try {
        html = await options.render(markdown, owner, onRunning);
      } catch (error) {
        // A text refused for what it is (markdown-renderer.ts) is refused again by every worker
        // and after a restart at the cost of one read, never rendered again.
        if (error instanceof MarkdownRefused && error.lasting && writable) track(write(key, REFUSED_MARK + error.reason).catch(() => stats.writeErrors++));
        throw error;
      } finally {
        if (journalled) journal.end(key);
      }
      if (writable) {
        track(
          write(key, html).catch((error: NodeJS.ErrnoException) => {
            stats.writeErrors++;
            if (isUnwritable(error)) {
              // A folder we cannot write to will not get better by retrying on every page.
              writable = false;
              options.onWarning?.('Markdown cache folder is not writable; rendering every cold page (set MARKDOWN_CACHE_DIR)', { dir, code: error.code });
            }
          }),
        );
      }
      return html;
    },
    settle: () => folder.settle(),
    stats,
  };
}

/**
 * Checks the folder (prepareMarkdownCacheDir) and opens the cache on it; a folder that is refused
 * gives no cache, with a warning naming the reason, and every cold page is rendered.
 */
export function openMarkdownCache(options: MarkdownCacheOptions): Promise<MarkdownCache | undefined> {
  return openIfPrivate(
    options.dir,
    () => createMarkdownCache(options),
    (reason) => options.onWarning?.('Markdown cache folder refused; rendering every cold page (set MARKDOWN_CACHE_DIR to a private folder)', { dir: options.dir, reason }),
  );
}

/** The Markdown cache folder's check: this user's alone (cache-folder.ts). */
export const prepareMarkdownCacheDir = prepareCacheFolder;

/**
 * The renderer's identity: the pipeline's source modules and the installed version of every
 * package in it. A deploy that changes either renders afresh instead of serving old HTML.
 */
export function markdownPipelineId(moduleUrls: string | readonly string[], packages: readonly string[]): string {
  const hash = createHash('sha256');
  for (const url of typeof moduleUrls === 'string' ? [moduleUrls] : moduleUrls) hash.update(readFileSync(fileURLToPath(url)));
  for (const name of packages) hash.update(`\0${name}@${installedVersion(name)}`);
  return hash.digest('hex').slice(0, 32);
}

/** The version in a package's package.json, found by walking up from its resolved entry. */
function installedVersion(name: string): string {
  try {
    let folder = dirname(fileURLToPath(import.meta.resolve(name)));
    for (let i = 0; i < 8; i++) {
      try {
        const pkg = JSON.parse(readFileSync(join(folder, 'package.json'), 'utf8')) as { name?: string; version?: string };
        if (pkg.name === name) return pkg.version ?? 'unknown';
      } catch {
        // not here; keep walking up
      }
      folder = dirname(folder);
    }
  } catch {
    // unresolvable: still a stable identity for this install
  }
  return 'unknown';
}
