import { LRUCache } from 'lru-cache';
import { ContentError, type ContentIssue } from '../errors.ts';
import { formatSize } from '../sites/contained-file.ts';
import { measureContent, type ContentUsage } from './content-limits.ts';
import type { NamedPlan } from './plans-file.ts';

/**
 * Size and count limits of a plan, enforced when a site is served (not only reported by `sites
 * check` and the status page):
 *
 * - `maxPageBytes`: a page file larger than its plan allows answers 503 PAGE_INVALID naming the
 *   file, its size and the limit, like the global 1 MiB limit (sites/pages.ts). The size is the
 *   fstat size of the file the page was read from, so this costs nothing per request.
 * - `maxPages`: a site with more page files than its plan allows serves the first `maxPages` of
 *   them in path order (the order `sites check` and the sitemap list them) and answers 503 for the
 *   others, naming the file, the site's count and the limit. Adding a page that sorts early pushes
 *   the last one out: the rule depends on names only, never on which file was edited last.
 * - `maxPublicBytes`: while a site's public/ holds more bytes than its plan allows, its public
 *   files answer 503 naming the folder, its total and the limit (pages keep being served).
 *
 * Counts and totals come from a folder walk (listings, and a stat per public/ file; never a read:
 * content-limits.ts) cached per
 * site for `ttlMs` and run in the background: a request never waits for a walk, so a site is
 * checked against its last walk, and its very first requests, before any walk finished, pass.
 * Walks are started by requests that need them (a page or a public file of the site), one at a
 * time per site and at most `concurrency` at once per process, so a cold start over thousands of
 * sites queues walks instead of flooding the thread pool.
 */
export interface ContentGate {
  /** @throws ContentError PAGE_INVALID when the page is over its plan's size, or beyond its count. */
  checkPage(site: { id: string; dir: string }, page: { path: string; bytes: number }): void;
  /**
   * Whether the site's last walk puts the page (path relative to pages/) beyond its plan's count,
   * the rule `checkPage` refuses it by: the sitemap leaves such pages out, so it lists only what is
   * served. False before the site's first walk, like `checkPage`.
   */
  beyondPageCount(site: { id: string; dir: string }, path: string): boolean;
  /** A ContentError PAGE_INVALID to answer a public file with while the site's public/ is over its plan's total; else undefined. */
  publicRefusal(site: { id: string; dir: string }): ContentError | undefined;
  /**
   * The site's plan's page size as the page loader's own limit (sites/pages.ts `pageSizeLimit`),
   * so a page over it is refused before it is read, with the same words as `checkPage`.
   */
  pageSizeLimit(site: { id: string }): { bytes: number; refuse(path: string, size: number): ContentError };
  /** Resolves when every walk started so far has finished (tests). */
  settled(): Promise<void>;
}

export interface ContentGateOptions {
  planFor: (siteId: string) => NamedPlan;
  /** How long a walk's result is used before the next request starts another one (ms). Default 60 s. */
  ttlMs?: number;
  /** Walks running at once in this process. Default 2. */
  concurrency?: number;
  /** Sites whose last walk is kept (least recently used are forgotten). Default 50,000. */
  maxSites?: number;
  measure?: (siteDir: string, maxPageBytes: number, maxPages: number) => Promise<ContentUsage>;
  now?: () => number;
}

interface Measured {
  at: number;
  /** The plan's maxPages the walk's `lastPageWithin` was computed for. */
  maxPages: number;
  pages: number;
  lastPageWithin: string | undefined;
  publicBytes: number;
}

const planWords = (plan: NamedPlan) => `plan "${plan.name}"`;

/** The refusal of a page over its plan's maxPageBytes: file, size and limit, like the global size refusal. */
export function pageOverPlanSize(siteId: string, page: { path: string; bytes: number }, plan: NamedPlan): ContentIssue {
  const limit = plan.limits.maxPageBytes;
  return {
    file: `sites/${siteId}/pages/${page.path}`,
    field: 'plan.maxPageBytes',
    reason: `is ${page.bytes.toLocaleString('en-US')} bytes, over the limit of ${formatSize(limit)} (${limit.toLocaleString('en-US')} bytes) of ${planWords(plan)}`,
  };
}

/**
 * Whether a page (path relative to pages/) is beyond its plan's count, given the last walk: pure.
 * Pages whose path sorts after the walk's last page within the count are beyond it.
 */
export function isBeyondPageCount(path: string, lastPageWithin: string | undefined): boolean {
  return lastPageWithin !== undefined && path > lastPageWithin;
}

/** The refusal of a page beyond its plan's maxPages: file, the site's count and the limit. */
export function pageBeyondPlanCount(siteId: string, path: string, pages: number, plan: NamedPlan): ContentIssue {
  return {
    file: `sites/${siteId}/pages/${path}`,
    field: 'plan.maxPages',
    reason: `is not among the first ${plan.limits.maxPages} pages (in path order) that ${planWords(plan)} allows; the site has ${pages} pages`,
  };
}

/** The refusal of a public file while public/ is over its plan's maxPublicBytes: folder, total and limit. */
export function publicOverPlanSize(siteId: string, publicBytes: number, plan: NamedPlan): ContentIssue {
  const limit = plan.limits.maxPublicBytes;
  return {
    file: `sites/${siteId}/public`,
    field: 'plan.maxPublicBytes',
    reason: `holds ${publicBytes.toLocaleString('en-US')} bytes, over the limit of ${formatSize(limit)} (${limit.toLocaleString('en-US')} bytes) of ${planWords(plan)}; its files are not served until it is back under`,
  };
}

export function createContentGate(options: ContentGateOptions): ContentGate {
  const ttlMs = options.ttlMs ?? 60_000;
  const concurrency = options.concurrency ?? 2;
  const now = options.now ?? Date.now;
  // Page sizes are checked on each page's descriptor (checkPage, pageSizeLimit): the walk needs
  // only the listings of pages/, not a stat per page file.
  const measure = options.measure ?? ((dir: string, maxPageBytes: number, maxPages: number) => measureContent(dir, maxPageBytes, maxPages, { pageSizes: false }));
  const measured = new LRUCache<string, Measured>({ max: options.maxSites ?? 50_000 });
  const walking = new Map<string, Promise<void>>();
  const queue: Array<() => void> = [];
  let running = 0;

  const next = () => {
    while (running < concurrency && queue.length > 0) {
      running++;
      queue.shift()!();
    }
  };

  /** Starts a walk of the site unless its last one is fresh (for this plan) or one is under way. */
  function refresh(site: { id: string; dir: string }, plan: NamedPlan, entry: Measured | undefined): void {
    if (entry && now() - entry.at < ttlMs && entry.maxPages === plan.limits.maxPages) return;
    if (walking.has(site.id)) return;
    const { maxPages, maxPageBytes } = plan.limits;
    const done = new Promise<void>((resolve) => {
      queue.push(() => {
        measure(site.dir, maxPageBytes, maxPages)
          .then((usage) => void measured.set(site.id, { at: now(), maxPages, pages: usage.pages, lastPageWithin: usage.lastPageWithin, publicBytes: usage.publicBytes }))
          // A folder that cannot be walked (removed meanwhile) keeps its previous result.
          .catch(() => {})
          .finally(() => {
            running--;
            walking.delete(site.id);
            resolve();
            next();
          });
      });
    });
    walking.set(site.id, done);
    next();
  }

  return {
    checkPage(site, page) {
      const plan = options.planFor(site.id);
      if (page.bytes > plan.limits.maxPageBytes) throw new ContentError('PAGE_INVALID', [pageOverPlanSize(site.id, page, plan)]);
      const entry = measured.get(site.id);
      refresh(site, plan, entry);
      // A walk made for another maxPages says nothing about this one's cut-off.
      if (entry && entry.maxPages === plan.limits.maxPages && isBeyondPageCount(page.path, entry.lastPageWithin)) {
        throw new ContentError('PAGE_INVALID', [pageBeyondPlanCount(site.id, page.path, entry.pages, plan)]);
      }
    },
    beyondPageCount(site, path) {
      const plan = options.planFor(site.id);
      const entry = measured.get(site.id);
      refresh(site, plan, entry);
      return entry !== undefined && entry.maxPages === plan.limits.maxPages && isBeyondPageCount(path, entry.lastPageWithin);
    },
    publicRefusal(site) {
      const plan = options.planFor(site.id);
      const entry = measured.get(site.id);
      refresh(site, plan, entry);
      return entry && entry.publicBytes > plan.limits.maxPublicBytes ? new ContentError('PAGE_INVALID', [publicOverPlanSize(site.id, entry.publicBytes, plan)]) : undefined;
    },
    pageSizeLimit(site) {
      const plan = options.planFor(site.id);
      return { bytes: plan.limits.maxPageBytes, refuse: (path, bytes) => new ContentError('PAGE_INVALID', [pageOverPlanSize(site.id, { path, bytes }, plan)]) };
    },
    async settled() {
      while (walking.size > 0) await Promise.all(walking.values());
    },
  };
}
