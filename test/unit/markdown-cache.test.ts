import { describe, it, expect, beforeEach, afterEach } from 'vitest';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { spawn } from 'node:child_process';
import { createMarkdownCache, markdownCacheKey, markdownCachePath, prepareMarkdownCacheDir } from '../../astro-multi-tenant/server/sites/markdown-cache.ts';
import { renderMarkdown, renderPipelineId } from '../../astro-multi-tenant/server/sites/markdown.ts';
import { MarkdownRefused } from '../../astro-multi-tenant/server/sites/markdown-renderer.ts';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'amt-md-cache-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A renderer that counts its calls, so a test can tell a cache hit from a render. */
function countingRenderer() {
  const calls: string[] = [];
  return {
    calls,
    // As markdown-renderer.ts does, it says when the text reaches a render thread.
    render: async (markdown: string, _owner?: string, onRunning?: () => void) => {
      calls.push(markdown);
      onRunning?.();
      return renderMarkdown(markdown);
    },
  };
}

describe('Markdown cache on disk', () => {
  it('remembers a text refused for what it is: every worker and a restarted one refuse it with one read, without rendering', async () => {
    const refusing = { calls: 0, render: async () => { refusing.calls++; throw new MarkdownRefused('takes more than 5 ms of CPU to render', true); } };
    const a = createMarkdownCache({ dir, maxBytes: 1 << 20, render: refusing.render, pipelineId: 'p1' });
    for (const text of ['[a](b '.repeat(50), '>'.repeat(500)]) {
      await expect(a.render(text)).rejects.toThrow('Markdown takes more than 5 ms of CPU to render');
      await a.settle();
      const b = createMarkdownCache({ dir, maxBytes: 1 << 20, render: refusing.render, pipelineId: 'p1' });
      const before = refusing.calls;
      const again = await b.render(text).catch((error: unknown) => error);
      expect(again).toBeInstanceOf(MarkdownRefused);
      expect(again).toMatchObject({ reason: 'takes more than 5 ms of CPU to render', lasting: true });
      expect(refusing.calls).toBe(before);
      expect(b.stats.refusals).toBe(1);
    }
  });

  it('suspects the texts rendering when a process stopped, renders them again, and refuses one that was rendering in a second stop', async () => {
    const counting = countingRenderer();
    const innocent = 'An *ordinary* page';
    const culprit = '*crash* '.repeat(100);
    // What a process that died mid-render leaves: its journal, naming the texts on its threads.
    const deadPid = () =>
      new Promise<number>((resolve) => {
        const child = spawn(process.execPath, ['-e', '0']);
        child.once('exit', () => resolve(child.pid!));
      });
    const first = await deadPid();
    await mkdir(join(dir, 'journals'), { recursive: true, mode: 0o700 });
    await writeFile(join(dir, 'journals', `${first}-00000000000000aa`), `${markdownCacheKey('p1', innocent)}\n${markdownCacheKey('p1', culprit)}\n`);
    const cache = () => createMarkdownCache({ dir, maxBytes: 1 << 20, render: counting.render, pipelineId: 'p1' });
    // One stop proves nothing: the innocent page is rendered again and cached.
    const a = cache();
    expect(await a.render(innocent)).toBe('<p>An <em>ordinary</em> page</p>');
    await a.settle();
    await expect(stat(join(dir, 'journals', `${first}-00000000000000aa`))).rejects.toMatchObject({ code: 'ENOENT' });
    // The culprit, a suspect now, was rendering again when another process stopped.
    const second = await deadPid();
    await writeFile(join(dir, 'journals', `${second}-00000000000000bb`), `${markdownCacheKey('p1', culprit)}\n`);
    const b = cache();
    const refused = await b.render(culprit).catch((error: unknown) => error);
    expect(refused).toMatchObject({ lasting: true, reason: 'made a render thread run out of memory and stop its server process, twice' });
    await b.settle();
    // Every worker, and every restarted one, refuses it from the cache without rendering it.
    await expect(cache().render(culprit)).rejects.toBeInstanceOf(MarkdownRefused);
    expect(await cache().render(innocent)).toBe('<p>An <em>ordinary</em> page</p>');
    expect(counting.calls).toEqual([innocent]);
  });

  it('renders a text whose journal belongs to a live process (another worker rendering it now), and leaves no journal behind', async () => {
    const counting = countingRenderer();
    const text = 'Two *workers*';
    await mkdir(join(dir, 'journals'), { recursive: true, mode: 0o700 });
    await writeFile(join(dir, 'journals', `${process.ppid}-00000000000000bb`), `${markdownCacheKey('p1', text)}\n`);
    const cache = createMarkdownCache({ dir, maxBytes: 1 << 20, render: counting.render, pipelineId: 'p1' });
    expect(await cache.render(text)).toBe('<p>Two <em>workers</em></p>');
    const other = 'One *worker*';
    expect(await cache.render(other)).toBe('<p>One <em>worker</em></p>');
    await cache.settle();
    // The live worker's journal is untouched; this process's names no render in flight.
    expect(await readFile(join(dir, 'journals', `${process.ppid}-00000000000000bb`), 'utf8')).toBe(`${markdownCacheKey('p1', text)}\n`);
    const own = (await readdir(join(dir, 'journals'))).filter((name) => name.startsWith(`${process.pid}-`));
    expect(own).toHaveLength(1);
    expect(await readFile(join(dir, 'journals', own[0]!), 'utf8')).toBe('');
  });

  it('journals a text only while a render thread has it: a text waiting for a thread is never blamed for a crash', async () => {
    const started: string[] = [];
    let finish!: () => void;
    const gate = new Promise<void>((resolve) => (finish = resolve));
    // Two texts: one handed to a thread (onRunning), one still waiting when the journal is read.
    const render = async (markdown: string, _owner?: string, onRunning?: () => void) => {
      if (markdown === 'running') onRunning?.();
      started.push(markdown);
      await gate;
      return renderMarkdown(markdown);
    };
    const cache = createMarkdownCache({ dir, maxBytes: 1 << 20, render, pipelineId: 'p1' });
    const both = Promise.all([cache.render('running'), cache.render('waiting')]);
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(started).toEqual(['running', 'waiting']);
    const own = (await readdir(join(dir, 'journals'))).filter((name) => name.startsWith(`${process.pid}-`));
    expect(await readFile(join(dir, 'journals', own[0]!), 'utf8')).toBe(`${markdownCacheKey('p1', 'running')}\n`);
    finish();
    await both;
    await cache.settle();
    expect(await readFile(join(dir, 'journals', own[0]!), 'utf8')).toBe('');
  });

  it('does not remember a passing refusal (a busy machine, a stopping server): the next request renders', async () => {
    let calls = 0;
    const render = async (markdown: string) => {
      if (calls++ === 0) throw new MarkdownRefused('took longer than 10 ms to render on a busy machine', false);
      return renderMarkdown(markdown);
    };
    const cache = createMarkdownCache({ dir, maxBytes: 1 << 20, render, pipelineId: 'p1' });
    await expect(cache.render('Busy *once*')).rejects.toBeInstanceOf(MarkdownRefused);
    await cache.settle();
    expect(await cache.render('Busy *once*')).toBe('<p>Busy <em>once</em></p>');
    await cache.settle();
  });

  it('never mistakes a page for a refusal: rendered HTML cannot start with U+0000', async () => {
    const cache = createMarkdownCache({ dir, maxBytes: 1 << 20, render: renderMarkdown, pipelineId: 'p1' });
    for (const text of ['\u0000refused\nowned', '<p>\u0000refused\n</p>', '`\u0000`']) {
      const html = await cache.render(text);
      expect(html).not.toContain('\u0000');
      await cache.settle();
      expect(await cache.render(text)).toBe(html);
    }
  });

  it('renders a page once, then serves the same HTML from disk to another worker or a restarted one', async () => {
    const first = countingRenderer();
    const a = createMarkdownCache({ dir, maxBytes: 1 << 20, render: first.render, pipelineId: 'p1' });
    const html = await a.render('# Hello\n\nSome *text*.');
    await a.settle();
    expect(first.calls).toHaveLength(1);

    const second = countingRenderer();
    const b = createMarkdownCache({ dir, maxBytes: 1 << 20, render: second.render, pipelineId: 'p1' });
    expect(await b.render('# Hello\n\nSome *text*.')).toBe(html);
    expect(second.calls).toHaveLength(0);
    expect(b.stats.hits).toBe(1);
    expect(html).toBe(await renderMarkdown('# Hello\n\nSome *text*.'));
  });

  it('renders an edited page afresh: the text is the key, so nothing stale can be served', async () => {
    const r = countingRenderer();
    const cache = createMarkdownCache({ dir, maxBytes: 1 << 20, render: r.render, pipelineId: 'p1' });
    expect(await cache.render('Old text')).toContain('Old text');
    await cache.settle();
    expect(await cache.render('New text')).toContain('New text');
    await cache.settle();
    expect(r.calls).toEqual(['Old text', 'New text']);
  });

  it('does not reuse HTML rendered by another pipeline version', async () => {
    const old = createMarkdownCache({ dir, maxBytes: 1 << 20, render: async () => '<p>rendered by the old pipeline</p>', pipelineId: 'old' });
    await old.render('Same text');
    await old.settle();
    const r = countingRenderer();
    const current = createMarkdownCache({ dir, maxBytes: 1 << 20, render: r.render, pipelineId: 'new' });
    expect(await current.render('Same text')).toBe('<p>Same text</p>');
    await current.settle();
    expect(r.calls).toHaveLength(1);
    expect(markdownCacheKey('old', 'x')).not.toBe(markdownCacheKey('new', 'x'));
  });

  it('names the pipeline by its source and package versions, stably within one install', () => {
    expect(renderPipelineId()).toMatch(/^[a-f0-9]{32}$/);
    expect(renderPipelineId()).toBe(renderPipelineId());
  });

  it('keeps rendering, without the cache, when the folder cannot be written', async () => {
    const blocked = join(dir, 'blocked');
    await writeFile(blocked, 'a file where the folder should be');
    const warnings: string[] = [];
    const cache = createMarkdownCache({ dir: blocked, maxBytes: 1 << 20, render: renderMarkdown, pipelineId: 'p1', onWarning: (m) => warnings.push(m) });
    expect(await cache.render('Still *served*')).toBe('<p>Still <em>served</em></p>');
    await cache.settle();
    expect(warnings).toEqual([expect.stringContaining('Markdown cache folder is not usable (EEXIST)')]);
    expect(await cache.render('Still *served*')).toBe('<p>Still <em>served</em></p>');
  });

  it('writes whole files only, even when two workers write the same page at once', async () => {
    const a = createMarkdownCache({ dir, maxBytes: 1 << 20, render: renderMarkdown, pipelineId: 'p1' });
    const b = createMarkdownCache({ dir, maxBytes: 1 << 20, render: renderMarkdown, pipelineId: 'p1' });
    const text = 'Shared **page**\n\n'.repeat(200);
    const [x, y] = await Promise.all([a.render(text), b.render(text)]);
    await Promise.all([a.settle(), b.settle()]);
    const key = markdownCacheKey('p1', text);
    expect(await readFile(markdownCachePath(dir, key), 'utf8')).toBe(x);
    expect(y).toBe(x);
    const leftovers = (await readdir(join(dir, key.slice(0, 2)))).filter((name) => name.endsWith('.tmp'));
    expect(leftovers).toEqual([]);
  });

  it('stays within its size bound by dropping the oldest-written pages first', async () => {
    const page = (i: number) => `Page ${i}\n\n${'word '.repeat(400)}`;
    const cache = createMarkdownCache({ dir, maxBytes: 20_000, render: renderMarkdown, pipelineId: 'p1' });
    for (let i = 0; i < 30; i++) {
      await cache.render(page(i));
      await cache.settle();
      // mtime resolution is coarse on some file systems: make the write order explicit.
      const path = markdownCachePath(dir, markdownCacheKey('p1', page(i)));
      const at = new Date(Date.UTC(2026, 0, 1, 0, 0, i));
      await utimes(path, at, at);
    }
    await cache.render(page(30));
    await cache.settle();
    let total = 0;
    const kept: string[] = [];
    for (const shard of await readdir(dir)) {
      for (const name of await readdir(join(dir, shard))) {
        total += (await stat(join(dir, shard, name))).size;
        kept.push(name);
      }
    }
    expect(total).toBeLessThanOrEqual(20_000);
    expect(cache.stats.pruned).toBeGreaterThan(0);
    const newest = `${markdownCacheKey('p1', page(29))}.html`;
    const oldest = `${markdownCacheKey('p1', page(0))}.html`;
    expect(kept).toContain(newest);
    expect(kept).not.toContain(oldest);
  });
});

describe('Markdown cache housekeeping', () => {
  it('removes half-written files left by a killed worker once they are stale, and keeps fresh ones', async () => {
    const key = markdownCacheKey('p1', 'x');
    const shard = join(dir, key.slice(0, 2));
    await mkdir(shard, { recursive: true });
    const stale = join(shard, `${key}.html.1234.deadbeef.tmp`);
    const fresh = join(shard, `${key}.html.1234.cafebabe.tmp`);
    await writeFile(stale, 'half');
    await writeFile(fresh, 'half');
    const old = new Date(Date.now() - 3600_000);
    await utimes(stale, old, old);
    // The first write of a worker checks the folder (it does not know its size yet).
    const cache = createMarkdownCache({ dir, maxBytes: 1 << 20, render: renderMarkdown, pipelineId: 'p1' });
    await cache.render('a page');
    await cache.settle();
    const names = await readdir(shard);
    expect(names).not.toContain(`${key}.html.1234.deadbeef.tmp`);
    expect(names).toContain(`${key}.html.1234.cafebabe.tmp`);
  });
});

describe('Markdown cache folder removed while serving', () => {
  it('makes the folder again and keeps caching, when a temp cleaner deletes it', async () => {
    const r = countingRenderer();
    const cache = createMarkdownCache({ dir, maxBytes: 1 << 20, render: r.render, pipelineId: 'p1' });
    await cache.render('before');
    await cache.settle();
    await rm(dir, { recursive: true, force: true });
    await cache.render('before');
    await cache.settle();
    expect(cache.stats.writeErrors).toBe(0);
    expect(await readFile(markdownCachePath(dir, markdownCacheKey('p1', 'before')), 'utf8')).toBe('<p>before</p>');
  });
});

describe('Markdown cache folder replaced by someone else', () => {
  it('stops reading and writing it when the re-made folder is not private any more', async () => {
    const warnings: string[] = [];
    const r = countingRenderer();
    const cache = createMarkdownCache({ dir, maxBytes: 1 << 20, render: r.render, pipelineId: 'p1', onWarning: (m) => warnings.push(m) });
    await cache.render('first');
    await cache.settle();
    // Gone, then re-made world-writable, with a planted file for the next page's key.
    await rm(dir, { recursive: true, force: true });
    await mkdir(dir, { mode: 0o777 });
    await chmod(dir, 0o777);
    await cache.render('second');
    await cache.settle();
    expect(warnings.some((w) => w.includes('writable by group or others'))).toBe(true);
    const planted = markdownCachePath(dir, markdownCacheKey('p1', 'third'));
    await mkdir(join(dir, markdownCacheKey('p1', 'third').slice(0, 2)), { recursive: true });
    await writeFile(planted, '<script>planted</script>');
    expect(await cache.render('third')).toBe('<p>third</p>');
  });
});

describe('prepareMarkdownCacheDir', () => {
  it('creates a private folder', async () => {
    const target = join(dir, 'a', 'markdown');
    expect(await prepareMarkdownCacheDir(target)).toEqual({ ok: true });
    expect((await stat(target)).mode & 0o777).toBe(0o700);
  });

  it('refuses a folder others can write to, since anyone there could plant HTML', async () => {
    const shared = join(dir, 'shared');
    await mkdir(shared);
    await chmod(shared, 0o777);
    const result = await prepareMarkdownCacheDir(shared);
    expect(result).toEqual({ ok: false, reason: expect.stringContaining('writable by group or others') });
  });

  it('refuses a path that is a file', async () => {
    const file = join(dir, 'file');
    await writeFile(file, 'x');
    expect((await prepareMarkdownCacheDir(file)).ok).toBe(false);
  });
});
