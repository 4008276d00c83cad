import { afterAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createMarkdownRenderer, cpuBudgetMs, MarkdownRefused } from '../../astro-multi-tenant/server/sites/markdown-renderer.ts';
import { parsePage } from '../../astro-multi-tenant/server/sites/pages.ts';
import { ContentError } from '../../astro-multi-tenant/server/errors.ts';

/**
 * Hostile Markdown: the shapes of CommonMark's own pathological tests (cmark test/pathological_tests.py)
 * and the ones found against this pipeline, generated here at sizes where the earlier micromark
 * pipeline was slow or overflowed its stack (10 KB of `a]` took 5.5 s, 180 KB of `[a](b ` 16.7 s).
 * markdown-it is linear on the Markdown shapes; raw HTML is still parsed by parse5, whose
 * misnested formatting elements stay the slowest shape (32 KB of `<a><b><i>` takes about a second).
 *
 * What is promised is not a speed but a bound: each text is rendered or refused within its CPU
 * budget, on a render thread, while this thread's event loop keeps running. The test does not time
 * the render; it records the longest gap between ticks of a 10 ms timer on this thread while the
 * render runs, which is ~the render's own length if it ran here, and a scheduling hiccup if not.
 */
const KB = 1024;
const fill = (unit: string, size: number) => unit.repeat(Math.ceil(size / unit.length)).slice(0, size);
const nested = (open: string, close: string, depth: number) => open.repeat(depth) + 'a' + close.repeat(depth);

const CORPUS: Record<string, string> = {
  'unclosed link destinations `[a](b `': fill('[a](b ', 32 * KB),
  'nested brackets `[[[…]]]`': nested('[', ']', 16 * KB),
  'closing brackets `a]`': fill('a]', 32 * KB),
  'nested blockquotes `>>>…`': fill('>', 32 * KB) + ' a',
  'nested emphasis `*a **a …`': nested('*a **', '** a*', 4 * KB),
  'unclosed emphasis `*a `': fill('*a ', 32 * KB),
  'unclosed underscores `_a `': fill('_a ', 32 * KB),
  'mismatched emphasis `*a_ `': fill('*a_ ', 32 * KB),
  'backtick runs of every length': Array.from({ length: 400 }, (_, i) => 'a' + '`'.repeat(i + 1)).join(' '),
  'unclosed code spans `` `a ``': fill('`a ', 32 * KB),
  '`<` runs': fill('<', 32 * KB),
  'unclosed tags `<a `': fill('<a ', 32 * KB),
  'unclosed comments `<!-- `': fill('<!-- ', 32 * KB),
  'unclosed CDATA and declarations': fill('<![CDATA[', 16 * KB) + fill('<!A ', 16 * KB),
  'nested raw HTML `<div>`': fill('<div>', 32 * KB),
  'misnested formatting elements `<a><b><i>`': fill('<a><b><i>', 32 * KB),
  'entity runs `&a`': fill('&a', 32 * KB),
  'numeric entity runs `&#99999999`': fill('&#99999999', 32 * KB),
  'many link reference definitions': fill('[x]: y\n', 32 * KB),
  'definitions then references': fill('[x]: y\n', 32 * KB) + fill('[x] ', 32 * KB),
  'nested lists': Array.from({ length: 250 }, (_, i) => ' '.repeat(i * 2) + '- a').join('\n'),
  'nested ordered lists': Array.from({ length: 200 }, (_, i) => ' '.repeat(i * 3) + '1. a').join('\n'),
  'empty links `[](`': fill('[](', 32 * KB),
  'unclosed images `![`': fill('![', 32 * KB),
  'wide table': `|${'a|'.repeat(8 * KB)}\n|${'-|'.repeat(8 * KB)}\n${fill('|a', 16 * KB)}`,
  'GFM autolink literals `www.a `': fill('www.a ', 32 * KB),
  'footnote references `[^a]`': fill('[^a]', 32 * KB),
  'strikethrough runs `~a `': fill('~a ', 32 * KB),
  'single and double tildes `~a~~ `': fill('~a~~ ', 32 * KB),
  'openers and closers multiple of 3 `a**b c* `': fill('a**b c* ', 32 * KB),
  'link openers and emphasis closers `[ a_`': fill('[ a_', 32 * KB),
  'the pattern `[ (](` repeated': fill('[ (](', 32 * KB),
  'hard link and emphasis case': fill('**x [a*b**c*](d)', 32 * KB),
  'unclosed links `[a](<b`': fill('[a](<b', 32 * KB),
  'U+0000 in the text': fill('abc\u0000de\u0000', 32 * KB),
  'reference collisions': Array.from({ length: 3000 }, (_, i) => `[${i}]: u\n`).join('') + fill('[0] ', 16 * KB),
  'long table `|x|` rows': `| a |\n| --- |\n${fill('|x|\n', 32 * KB)}`,
  'autolinks in parentheses `(www.a.b/(`': fill('(www.a.b/(', 32 * KB),
  // markdown-it-footnote's own tail rule rebuilt the token list per footnote: 145 KB took 4.6 s.
  'many distinct footnotes': Array.from({ length: 8000 }, (_, i) => `[^${i}]`).join('') + '\n\n' + Array.from({ length: 8000 }, (_, i) => `[^${i}]: x\n`).join(''),
  'many footnote definitions, nested and repeated': Array.from({ length: 3000 }, (_, i) => `[^f${i % 1000}]: note\n    [^g${i}]: inner\n`).join('') + Array.from({ length: 1000 }, (_, i) => `[^f${i}][^g${i}]`).join(' '),
  // One long reference title used by many short references: 100 KB once rendered to 50 MB.
  'a long reference title used 1,000 times': `[x]: /u "${'t'.repeat(100 * KB)}"\n\n${'[x]'.repeat(1000)}`,
  // Site component directives (markdown-directives.ts): containers of one fence nest, and micromark
  // re-checks every open one on each line (2,000 nested `:::A` took 131 s unbounded, on this VM).
  'nested component containers `:::A`': fill(':::A\n', 10 * KB),
  'component calls `::A{a=1}` on every line': fill('::A{a=1}\n', 32 * KB),
  'unclosed component attributes `::A{a="`': fill('::A{a="\n', 32 * KB),
};

// A small budget keeps the test quick; the bound is the same whatever its size. The wall-clock
// backstop is pushed out of reach: on a loaded machine it would refuse first, as a passing refusal.
const BUDGET = { cpuBaseMs: 300, cpuMsPerKiB: 2 };
const renderer = createMarkdownRenderer({ ...BUDGET, wallFactor: 1000, maxThreads: 1 });
/** A budget so small that SLOW_HTML is over it on any machine (it takes hundreds of ms). */
const TIGHT_BUDGET = { cpuBaseMs: 5, cpuMsPerKiB: 0.1 };
const tight = createMarkdownRenderer({ ...TIGHT_BUDGET, wallFactor: 1000, maxThreads: 1 });
afterAll(() => Promise.all([renderer.close(), tight.close()]));
const SLOW_HTML = fill('<p><b>', 180 * KB);

/** Renders `markdown` while watching this thread's event loop; the outcome and the longest tick gap (ms). */
async function renderWatched(markdown: string, pool = renderer): Promise<{ outcome: 'rendered' | MarkdownRefused; wallMs: number; maxGapMs: number }> {
  let last = performance.now();
  let maxGapMs = 0;
  const ticker = setInterval(() => {
    const now = performance.now();
    maxGapMs = Math.max(maxGapMs, now - last);
    last = now;
  }, 10);
  const started = performance.now();
  try {
    const outcome = await pool.render(markdown).then(
      () => 'rendered' as const,
      (error: unknown) => {
        if (error instanceof MarkdownRefused) return error;
        throw error;
      },
    );
    const now = performance.now();
    maxGapMs = Math.max(maxGapMs, now - last);
    return { outcome, wallMs: now - started, maxGapMs };
  } finally {
    clearInterval(ticker);
  }
}

// Each refusal stops the render thread and the next text waits for a new one to load the
// pipeline: seconds each on a loaded 2-core machine.
describe('hostile Markdown is rendered or refused within its budget, and never stalls the event loop', { timeout: 120_000 }, () => {
  it('starts its render thread', async () => {
    expect(await renderer.render('*warm*')).toBe('<p><em>warm</em></p>');
  });

  for (const [shape, markdown] of Object.entries(CORPUS)) {
    it(`${shape} (${(markdown.length / KB).toFixed(0)} KiB)`, async () => {
      const { outcome, wallMs, maxGapMs } = await renderWatched(markdown);
      if (outcome !== 'rendered') {
        // Refused for what the text is (over its CPU budget, or nested too deeply): remembered.
        expect(outcome.lasting).toBe(true);
        expect(outcome.reason).toMatch(/takes more than \d+ ms of CPU|nested too deeply|memory|looks like a component call|MiB of HTML/);
      }
      // Had the render run on this thread, the loop would have stopped for all of it (hundreds of
      // ms at least for a refused text). 250 ms leaves room for a loaded machine's scheduling.
      expect(maxGapMs).toBeLessThan(Math.max(250, wallMs / 2));
    });
  }

  it('refuses a page over its CPU budget and remembers it: asking again renders nothing', async () => {
    // markdown-it renders every Markdown shape above within the budget; raw HTML that parse5 must
    // rebuild element by element is the costliest flat input left (180 KB: about a second here),
    // so a budget of a few ms refuses it whatever the machine.
    const markdown = SLOW_HTML;
    const first = await renderWatched(markdown, tight);
    expect(first.outcome).toBeInstanceOf(MarkdownRefused);
    expect((first.outcome as MarkdownRefused).reason).toContain(`takes more than ${cpuBudgetMs(TIGHT_BUDGET, markdown)} ms of CPU`);
    const threads = tight.stats.threadsStarted;
    const remembered = tight.stats.remembered;
    const again = await renderWatched(markdown, tight);
    expect(again.outcome).toBeInstanceOf(MarkdownRefused);
    expect(tight.stats.remembered).toBe(remembered + 1);
    expect(tight.stats.threadsStarted).toBe(threads);
  });

  it('refuses a text whose HTML would be over 8 times its size (at least 4 MiB), before building it, and renders a large ordinary page', async () => {
    const outcome = (await renderWatched(`[x]: /u "${'t'.repeat(100 * KB)}"\n\n${'[x]'.repeat(1000)}`)).outcome as MarkdownRefused;
    expect(outcome).toBeInstanceOf(MarkdownRefused);
    expect(outcome.reason).toBe('renders to more than 4.0 MiB of HTML, the limit for its size (8 times the text, at least 4 MiB)');
    expect(outcome.lasting).toBe(true);
    const prose = fill('Some *prose* and [a link](/x) here.\n\n', 512 * KB);
    const html = await renderer.render(prose);
    expect(html.length).toBeGreaterThan(prose.length);
  });

  it('renders ordinary pages again after a refusal', async () => {
    await renderWatched(fill('a]', 32 * KB));
    expect(await renderer.render('# After\n\nstill *fine*')).toBe('<h1 id="after">After</h1>\n<p>still <em>fine</em></p>');
  });
});

describe('the render threads', { timeout: 120_000 }, () => {
  it('renders ordinary pages in parallel on up to maxThreads threads and stops idle ones', async () => {
    const pool = createMarkdownRenderer({ maxThreads: 2, idleMs: 200 });
    try {
      const pages = Array.from({ length: 6 }, (_, i) => `# Page ${i}\n\nText *${i}*.`);
      const html = await Promise.all(pages.map((page) => pool.render(page)));
      expect(html).toEqual(pages.map((_, i) => `<h1 id="page-${i}">Page ${i}</h1>\n<p>Text <em>${i}</em>.</p>`));
      expect(pool.stats.threadsStarted).toBeLessThanOrEqual(2);
      await new Promise((resolve) => setTimeout(resolve, 600));
      expect(pool.stats.threads).toBe(0);
      // …and starts one again when there is work.
      expect(await pool.render('again')).toBe('<p>again</p>');
    } finally {
      await pool.close();
    }
  });

  it('refuses a text that needs more memory than a thread may hold, and keeps working', async () => {
    // In a process of its own: when a render thread reaches its heap limit, V8 can abort the whole
    // process instead of stopping the thread ("Reached heap limit", seen once in CI), which would
    // take this test runner down with it. Either outcome is reported; only the refusal is the
    // promise, and an abort is what docs/security.md lists as left.
    const script = `
      import { createMarkdownRenderer, MarkdownRefused } from ${JSON.stringify(new URL('../../astro-multi-tenant/server/sites/markdown-renderer.ts', import.meta.url).href)};
      const pool = createMarkdownRenderer({ heapMb: 48, cpuBaseMs: 600_000, maxThreads: 1 });
      const refused = await pool.render('*a* '.repeat(${(1000 * KB) / 4})).then(() => undefined, (error) => error);
      const after = await pool.render('fine');
      console.log(JSON.stringify({ refused: refused instanceof MarkdownRefused, reason: refused?.reason, lasting: refused?.lasting, after }));
      await pool.close();
    `;
    const { code, stdout, stderr } = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      // A module file, not `-e`: the render threads inherit the parent's flags, and `--input-type`
      // would stop them from loading.
      const file = join(tmpdir(), `amt-oom-${process.pid}-${Date.now()}.mjs`);
      writeFileSync(file, script);
      execFile(process.execPath, [file], { timeout: 90_000 }, (error, out, err) => {
        rmSync(file, { force: true });
        resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout: out, stderr: err });
      });
    });
    if (code !== 0) {
      // The abort, not a hang or another failure.
      expect(stderr).toMatch(/heap out of memory|Reached heap limit/);
      return;
    }
    const result = JSON.parse(stdout.trim().split('\n').at(-1)!) as { refused: boolean; reason: string; lasting: boolean; after: string };
    expect(result).toEqual({ refused: true, reason: 'needs more than 48 MiB of memory to render', lasting: true, after: '<p>fine</p>' });
  });

  it('stops a render whose heap nears the thread’s limit, before V8 has to: it would not reach it and never end', async () => {
    // The fixture thread keeps 52 MiB and then spins without allocating, with a CPU budget far out
    // of reach: only the watchdog's heap reading (75 % of 64 MiB) can stop it.
    const pool = createMarkdownRenderer({ heapMb: 64, cpuBaseMs: 600_000, wallFactor: 1000, maxThreads: 1, threadUrl: new URL('../fixtures/hoarding-thread/thread.mjs', import.meta.url) });
    try {
      const error = (await pool.render('52').catch((caught: unknown) => caught)) as MarkdownRefused;
      expect(error).toBeInstanceOf(MarkdownRefused);
      expect(error.reason).toBe('needs more than 64 MiB of memory to render');
      expect(error.lasting).toBe(true);
    } finally {
      await pool.close();
    }
  }, 30_000);

  it('tries a text stopped for memory once more on a new thread, since the old thread’s heap held earlier renders too', async () => {
    // 64 MiB heap, stopped at 48: 40 MiB kept by an earlier render plus 12 for this one is over it
    // on that thread; on a new one, 12 is not.
    const pool = createMarkdownRenderer({ heapMb: 64, cpuBaseMs: 600_000, wallFactor: 1000, maxThreads: 1, threadUrl: new URL('../fixtures/hoarding-thread/leftover-thread.mjs', import.meta.url) });
    try {
      expect(await pool.render('keep 40')).toBe('<p>keep 40</p>');
      const started = pool.stats.threadsStarted;
      expect(await pool.render('use 12')).toBe('<p>use 12</p>');
      expect(pool.stats.threadsStarted).toBe(started + 1);
      expect(pool.stats.refused).toBe(0);
    } finally {
      await pool.close();
    }
  }, 30_000);

  it('refuses renders in flight when closed, not as lasting refusals', async () => {
    const pool = createMarkdownRenderer({ maxThreads: 1 });
    const pending = pool.render(fill('a]', 32 * KB)).catch((error: unknown) => error);
    await pool.close();
    const error = await pending;
    expect(error).toBeInstanceOf(MarkdownRefused);
    expect((error as MarkdownRefused).lasting).toBe(false);
  });
});

describe('a refused page', () => {
  it('is PAGE_INVALID naming the file, the body and the reason, so it answers 503 and shows in sites check', async () => {
    const state = await parsePage(`---\ntitle: Trap\n---\n${SLOW_HTML}`, 'sites/x/pages/trap.md', 'page', (markdown) => tight.render(markdown));
    expect(state.kind).toBe('invalid');
    const error = (state as { error: ContentError }).error;
    expect(error.code).toBe('PAGE_INVALID');
    expect(error.status).toBe(503);
    expect(error.issues).toEqual([{ file: 'sites/x/pages/trap.md', field: 'body', reason: expect.stringMatching(/^the Markdown takes more than \d+ ms of CPU to render/) }]);
  });

  it('is thrown, not kept, when the machine was the cause: the next request tries again', async () => {
    const busy = async () => {
      throw new MarkdownRefused('took longer than 10 ms to render on a busy machine', false);
    };
    await expect(parsePage('---\ntitle: Fine\n---\n# Fine', 'sites/x/pages/fine.md', 'page', busy)).rejects.toMatchObject({ code: 'PAGE_INVALID', issues: [{ file: 'sites/x/pages/fine.md', field: 'body' }] });
  });
});
