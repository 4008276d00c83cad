import { describe, expect, it } from 'vitest';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createContentGate, isBeyondPageCount } from '../../astro-multi-tenant/server/plans/content-gate.ts';
import { measureContent, type ContentUsage } from '../../astro-multi-tenant/server/plans/content-limits.ts';
import { completePlan, type NamedPlan } from '../../astro-multi-tenant/server/plans/plans-file.ts';
import { ContentError } from '../../astro-multi-tenant/server/errors.ts';

const plan = (name: string, fields: Parameters<typeof completePlan>[0]): NamedPlan => ({ name, limits: completePlan(fields) });
const usage = (fields: Partial<ContentUsage>): ContentUsage => ({ pages: 0, largestPage: undefined, pagesOverLimit: [], publicBytes: 0, truncated: false, ...fields });
const site = { id: 'acme', dir: '/sites/acme' };

function refusal(run: () => unknown): ContentError | undefined {
  try {
    run();
    return undefined;
  } catch (error) {
    return error as ContentError;
  }
}

describe('the page count of a plan, in path order', () => {
  it('finds the last page within the count from a real folder walk, in JavaScript string order', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'amt-gate-'));
    try {
      await mkdir(join(dir, 'pages', 'blog'), { recursive: true });
      for (const file of ['index.md', 'about.md', 'blog/index.md', 'blog/z.md', 'Zeta.md', '.hidden.md', 'notes.txt']) await writeFile(join(dir, 'pages', file), 'x');
      // Path order: Zeta.md, about.md, blog/index.md, blog/z.md, index.md (dot-files and non-.md skipped).
      expect((await measureContent(dir, 1024, 3)).lastPageWithin).toBe('blog/index.md');
      expect((await measureContent(dir, 1024, 1)).lastPageWithin).toBe('Zeta.md');
      expect((await measureContent(dir, 1024, 5)).lastPageWithin).toBeUndefined();
      expect((await measureContent(dir, 1024)).lastPageWithin).toBeUndefined();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('puts pages that sort after the last one within the count beyond it, and nothing beyond when under', () => {
    expect(isBeyondPageCount('blog/z.md', 'blog/index.md')).toBe(true);
    expect(isBeyondPageCount('index.md', 'blog/index.md')).toBe(true);
    expect(isBeyondPageCount('blog/index.md', 'blog/index.md')).toBe(false);
    expect(isBeyondPageCount('about.md', 'blog/index.md')).toBe(false);
    expect(isBeyondPageCount('zzz.md', undefined)).toBe(false);
  });
});

describe('the content gate', () => {
  it('refuses a page over its plan\'s size at once, naming the file, the size and the plan, and never walks for it', () => {
    const walks: string[] = [];
    const gate = createContentGate({ planFor: () => plan('small', { maxPageBytes: 1000 }), measure: async (dir) => (walks.push(dir), usage({})) });
    for (const bytes of [1001, 5000, 1024 * 1024]) {
      const error = refusal(() => gate.checkPage(site, { path: 'big.md', bytes }));
      expect(error).toBeInstanceOf(ContentError);
      expect(error!.code).toBe('PAGE_INVALID');
      expect(error!.issues).toEqual([{ file: 'sites/acme/pages/big.md', field: 'plan.maxPageBytes', reason: `is ${bytes.toLocaleString('en-US')} bytes, over the limit of 1000 bytes (1,000 bytes) of plan "small"` }]);
    }
    expect(walks).toEqual([]);
    expect(refusal(() => gate.checkPage(site, { path: 'ok.md', bytes: 1000 }))).toBeUndefined();
    // The page loader's own limit (refused before reading) is the plan's, with the same words.
    const limit = gate.pageSizeLimit(site);
    expect(limit.bytes).toBe(1000);
    expect(limit.refuse('big.md', 5000).issues).toEqual(refusal(() => gate.checkPage(site, { path: 'big.md', bytes: 5000 }))!.issues);
  });

  it('passes everything until the first walk is done, then refuses pages beyond the count and public files over the total', async () => {
    const gate = createContentGate({
      planFor: () => plan('few', { maxPages: 2, maxPublicBytes: 100 }),
      measure: async (_dir, _bytes, maxPages) => usage({ pages: 4, lastPageWithin: maxPages === 2 ? 'b.md' : undefined, publicBytes: 101 }),
    });
    expect(refusal(() => gate.checkPage(site, { path: 'c.md', bytes: 10 }))).toBeUndefined();
    expect(gate.publicRefusal(site)).toBeUndefined();
    await gate.settled();
    for (const path of ['a.md', 'b.md']) expect(refusal(() => gate.checkPage(site, { path, bytes: 10 }))).toBeUndefined();
    for (const path of ['c.md', 'index.md', 'blog/x.md']) {
      expect(refusal(() => gate.checkPage(site, { path, bytes: 10 }))!.issues).toEqual([
        { file: `sites/acme/pages/${path}`, field: 'plan.maxPages', reason: 'is not among the first 2 pages (in path order) that plan "few" allows; the site has 4 pages' },
      ]);
    }
    expect(gate.publicRefusal(site)!.issues).toEqual([
      { file: 'sites/acme/public', field: 'plan.maxPublicBytes', reason: 'holds 101 bytes, over the limit of 100 bytes (100 bytes) of plan "few"; its files are not served until it is back under' },
    ]);
    // Another site is judged by its own walk only.
    expect(gate.publicRefusal({ id: 'docs', dir: '/sites/docs' })).toBeUndefined();
  });

  it('tells the sitemap which pages are beyond the count by the same rule that refuses them, and none before the first walk', async () => {
    const gate = createContentGate({
      planFor: () => plan('few', { maxPages: 2 }),
      measure: async () => usage({ pages: 4, lastPageWithin: 'b.md' }),
    });
    expect(['a.md', 'c.md', 'index.md'].map((path) => gate.beyondPageCount(site, path))).toEqual([false, false, false]);
    await gate.settled();
    for (const path of ['a.md', 'b.md', 'about/index.md', 'c.md', 'index.md', 'zz/deep.md']) {
      const refused = refusal(() => gate.checkPage(site, { path, bytes: 10 })) !== undefined;
      expect(gate.beyondPageCount(site, path), path).toBe(refused);
    }
    expect(gate.beyondPageCount(site, 'index.md')).toBe(true);
    expect(gate.beyondPageCount(site, 'a.md')).toBe(false);
  });

  it('walks a site at most once per ttl, one walk at a time per site, and again when its plan\'s count changes', async () => {
    let clock = 0;
    let maxPages = 2;
    const walks: number[] = [];
    const gate = createContentGate({
      planFor: () => plan('few', { maxPages }),
      ttlMs: 1000,
      now: () => clock,
      measure: async (_dir, _bytes, count) => (walks.push(count), usage({ pages: 3, lastPageWithin: count < 3 ? 'b.md' : undefined })),
    });
    for (let i = 0; i < 10; i++) gate.checkPage(site, { path: 'a.md', bytes: 1 });
    await gate.settled();
    for (let i = 0; i < 10; i++) gate.publicRefusal(site);
    clock = 999;
    gate.checkPage(site, { path: 'a.md', bytes: 1 });
    await gate.settled();
    expect(walks).toEqual([2]);
    clock = 1000;
    expect(refusal(() => gate.checkPage(site, { path: 'c.md', bytes: 1 }))).toBeInstanceOf(ContentError);
    await gate.settled();
    expect(walks).toEqual([2, 2]);
    // The operator raises the count: the old cut-off no longer applies, and a new walk is made.
    maxPages = 3;
    expect(refusal(() => gate.checkPage(site, { path: 'c.md', bytes: 1 }))).toBeUndefined();
    await gate.settled();
    expect(walks).toEqual([2, 2, 3]);
    expect(refusal(() => gate.checkPage(site, { path: 'c.md', bytes: 1 }))).toBeUndefined();
  });

  it('runs at most `concurrency` walks at once across sites, the rest queued', async () => {
    let running = 0;
    let most = 0;
    const gate = createContentGate({
      planFor: () => plan('default', {}),
      concurrency: 2,
      measure: async () => {
        most = Math.max(most, ++running);
        await new Promise((r) => setTimeout(r, 5));
        running--;
        return usage({});
      },
    });
    for (let i = 0; i < 12; i++) gate.publicRefusal({ id: `site${i}`, dir: `/sites/site${i}` });
    await gate.settled();
    expect(most).toBe(2);
  });
});
