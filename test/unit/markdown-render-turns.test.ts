import { afterAll, describe, expect, it } from 'vitest';
import { createMarkdownRenderer } from '../../astro-multi-tenant/server/sites/markdown-renderer.ts';

/**
 * Renders wait for a thread in turns by site: one site's burst of pages never holds every render
 * thread while another site's page waits behind all of it.
 */
const pool = createMarkdownRenderer({ maxThreads: 1, cpuBaseMs: 600_000, wallFactor: 1000 });

afterAll(async () => {
  await pool.close();
});

/** A page that takes a noticeable while to render, different each time (refusals and caches key by text). */
const slowPage = (i: number) => Array.from({ length: 3000 }, (_, j) => `- item *${i}-${j}* with [a link](/p${j}) and \`code\``).join('\n');

describe('render turns', () => {
  it('renders a second site\'s page right after the first site\'s current one, not after its whole burst', async () => {
    const finished: string[] = [];
    const track = (name: string, rendering: Promise<string>) => rendering.then(() => finished.push(name));
    const burst = Array.from({ length: 5 }, (_, i) => track(`busy-${i}`, pool.render(slowPage(i), 'busy')));
    // Queued after the whole burst.
    const other = track('quiet', pool.render('# Hello\n\nA small page.', 'quiet'));
    await Promise.all([...burst, other]);
    expect(finished).toHaveLength(6);
    // One busy page was already running (or next) when quiet's arrived; quiet goes right after it.
    expect(finished.indexOf('quiet')).toBeLessThanOrEqual(2);
  });

  it('still renders one site\'s pages in the order they came', async () => {
    const finished: number[] = [];
    await Promise.all(Array.from({ length: 4 }, (_, i) => pool.render(`# Page ${i}\n\n${'text '.repeat(50)}`, 'solo').then(() => finished.push(i))));
    expect(finished).toEqual([0, 1, 2, 3]);
  });
});

describe('what a render thread has', () => {
  it('tells a render it is running only when a thread takes it, never while it waits (the journal names only those)', async () => {
    const seen: Array<{ page: number; answeredBefore: number }> = [];
    const before = pool.stats.renders;
    await Promise.all(
      Array.from({ length: 4 }, (_, page) =>
        pool.render(slowPage(100 + page), 'journalled', () => seen.push({ page, answeredBefore: pool.stats.renders - before })),
      ),
    );
    // One thread: each page is handed over only once the one before it was answered.
    expect(seen).toEqual([0, 1, 2, 3].map((page) => ({ page, answeredBefore: page })));
  });
});
