import { readdir, realpath } from 'node:fs/promises';
import { join } from 'node:path';
import { ContentError } from '../errors.ts';
import { frontmatterSchema, toContentIssues, type Frontmatter, type LayoutName } from './schema.ts';
import { renderMarkdown, splitFrontmatter } from './markdown.ts';
import { renderPageBody } from './markdown-renderer.ts';
import { fileIdentity, statsFingerprint } from './fs-fingerprint.ts';
import { isWithin, readContainedText, refusalReason } from './contained-file.ts';
import type { ContentCache, Loaded } from './content-cache.ts';
import type { Site } from './loader.ts';
import { calledComponents, decodeBody, plainHtml, type BodySegment } from './page-body.ts';

export interface Page {
  /** Path of the source file relative to the site folder, for messages. */
  file: string;
  /** Path of the source file relative to pages/ (`a/b.md`), for the plan's page count (plans/content-gate.ts). */
  path: string;
  /** Size of the source file, bytes (the descriptor's fstat when served), for the plan's page size. */
  bytes: number;
  frontmatter: Frontmatter;
  layout: LayoutName;
  /** Sanitised HTML of the Markdown body; '' when the body calls site components (then see `segments`). */
  html: string;
  /** The body as HTML segments and component calls (page-body.ts); one HTML segment (or none) for a page without calls. */
  segments: BodySegment[];
  /** The site components the body calls, sorted, each once (none for most pages). */
  components: string[];
  /** Identity of the source file (stat fingerprint): changes whenever the page's input changes. */
  version: string;
  /** When the source file was last modified (ms since the epoch): the sitemap's fallback lastmod. */
  modifiedMs: number;
}

/**
 * What a page file turned out to be: a page; one that does not validate or is too large (503);
 * a link leading outside the site folder (never read, so no page: 404); or nothing any more (it
 * was removed, or became a folder or a FIFO, between the stat and the open: 404).
 */
export type PageState = { kind: 'page'; page: Page } | { kind: 'invalid'; error: ContentError } | { kind: 'outside' } | { kind: 'missing' };

/** Largest page file read (bytes); checked on the open descriptor before reading. */
export const MAX_PAGE_BYTES = 1024 * 1024;

/** The refusal of a page over MAX_PAGE_BYTES, naming the file and the limit. */
export function pageTooLarge(file: string, size: number): ContentError {
  return new ContentError('PAGE_INVALID', [{ file, field: '', reason: refusalReason({ reason: 'too-large', size, limit: MAX_PAGE_BYTES }) }]);
}

/**
 * `/` → index.md; `/a/b` → a/b.md, then a/b/index.md. A final `index` segment never names a
 * folder's own index page: `/index` and `/a/index` would be second URLs for `/` and `/a`, each
 * claiming itself as canonical. Only a real folder page (`index/index.md`) answers there.
 */
export function pageCandidates(segments: readonly string[]): string[] {
  if (segments.length === 0) return ['index.md'];
  const joined = segments.join('/');
  const folderPage = `${joined}/index.md`;
  return segments.at(-1) === 'index' ? [folderPage] : [`${joined}.md`, folderPage];
}

/** Validates one page's text; pure apart from Markdown rendering, shared by the server and `sites check`. */
export async function parsePage(text: string, file: string, defaultLayout: LayoutName, render: (markdown: string) => Promise<string> = renderMarkdown): Promise<PageState> {
  const bytes = Buffer.byteLength(text);
  if (bytes > MAX_PAGE_BYTES) return { kind: 'invalid', error: pageTooLarge(file, bytes) };
  const doc = splitFrontmatter(text);
  if (doc.yamlError) {
    return { kind: 'invalid', error: new ContentError('PAGE_INVALID', [{ file, field: 'frontmatter', reason: `not valid YAML: ${doc.yamlError}` }]) };
  }
  const result = frontmatterSchema.safeParse(doc.data);
  if (!result.success) return { kind: 'invalid', error: new ContentError('PAGE_INVALID', toContentIssues(file, result.error).map((i) => ({ ...i, field: i.field ? `frontmatter.${i.field}` : 'frontmatter' }))) };
  const frontmatter = result.data;
  const body = await renderPageBody(render, doc.body, file);
  if ('error' in body) return { kind: 'invalid', error: body.error };
  // Calls carry their line in the body; messages name the line in the file.
  const segments = withLineOffset(decodeBody(body.html), text.slice(0, text.length - doc.body.length).split('\n').length - 1);
  const html = plainHtml(segments) ?? '';
  return { kind: 'page', page: { file, path: file.replace(/^sites\/[^/]+\/pages\//, ''), bytes, frontmatter, layout: frontmatter.layout ?? defaultLayout, html, segments, components: calledComponents(segments), version: '', modifiedMs: 0 } };
}

function withLineOffset(segments: BodySegment[], offset: number): BodySegment[] {
  if (offset === 0) return segments;
  return segments.map((s) => ('html' in s ? s : { ...s, line: s.line + offset, ...(s.children ? { children: withLineOffset(s.children, offset) } : {}) }));
}

/** A site's own page size limit (its plan's maxPageBytes) and the refusal that names it. */
export interface PageSizeLimit {
  /** Bytes; only a limit under MAX_PAGE_BYTES changes anything. */
  bytes: number;
  /** The refusal of a page file over `bytes` (`path` relative to pages/, `size` from fstat). */
  refuse(path: string, size: number): ContentError;
}

export interface PageLoaderOptions {
  /** Markdown → sanitised HTML; the on-disk cache (markdown-cache.ts) in the server. `owner` is the site id. */
  renderMarkdown?: (markdown: string, owner?: string) => Promise<string>;
  /**
   * A site's own, smaller page size limit (plans/content-gate.ts), checked like MAX_PAGE_BYTES on
   * the open descriptor before a byte is read, so an oversized page costs its site no parse and no
   * Markdown render. Part of the cache fingerprint, so a plan change applies at the next check.
   */
  pageSizeLimit?: (site: Site) => PageSizeLimit | undefined;
}

export function createPageLoader(cache: ContentCache, options: PageLoaderOptions = {}) {
  const render = options.renderMarkdown ?? renderMarkdown;
  return async function loadPage(site: Site, segments: readonly string[]): Promise<PageState | null> {
    let found: string | undefined;
    const own = options.pageSizeLimit?.(site);
    const limit = own && own.bytes < MAX_PAGE_BYTES ? own : undefined;
    return cache.get<PageState>(`page\0${site.id}\0${segments.join('/')}`, {
      // Candidates and paths only when the disk is consulted; a cache hit skips all of it.
      async fingerprint() {
        for (const candidate of pageCandidates(segments)) {
          const file = await fileIdentity(join(site.dir, 'pages', candidate));
          if (file !== null) {
            found = candidate;
            return `${candidate}|${file.fingerprint}|${site.config.layout}${limit ? `|${limit.bytes}` : ''}`;
          }
        }
        return null;
      },
      // A page this process does not hold: each candidate is opened straight away (the descriptor
      // check and its fstat, as load() does), with no stat of the name first. The fingerprint is
      // the one fingerprint() gives for the same file (the descriptor's fstat is the stat of the
      // name while it is unchanged), so the next check compares like with like.
      async loadCold() {
        const tail = `|${site.config.layout}${limit ? `|${limit.bytes}` : ''}`;
        for (const candidate of pageCandidates(segments)) {
          const read = await readContainedText(join(site.dir, 'pages', candidate), site.dir, { maxBytes: limit?.bytes ?? MAX_PAGE_BYTES });
          // Nothing there, or a folder or FIFO by that name: fingerprint() skips it too.
          if (read.kind === 'missing' || (read.kind === 'refused' && read.reason === 'not-a-file')) continue;
          found = candidate;
          if (read.kind === 'refused') {
            // Rare (a link out, a file too large): the name's stat gives the fingerprint, as before.
            const named = await fileIdentity(join(site.dir, 'pages', candidate));
            if (named === null) continue;
            return { ...(await answer(read)), fingerprint: `${candidate}|${named.fingerprint}${tail}` };
          }
          return { ...(await answer(read)), fingerprint: `${candidate}|${statsFingerprint(read.stats)}${tail}` };
        }
        return null;
      },
      async load() {
        const read = await readContainedText(join(site.dir, 'pages', found!), site.dir, { maxBytes: limit?.bytes ?? MAX_PAGE_BYTES });
        return answer(read);
      },
    });

    /** The page state of what was read at `found` (a text, or why not). */
    async function answer(read: Awaited<ReturnType<typeof readContainedText>>): Promise<Loaded<PageState>> {
      const file = `sites/${site.id}/pages/${found}`;
      // The request path was checked segment by segment; what the name leads to now is checked
      // on the open descriptor (contained-file.ts): a link out of the site folder, at the page
      // or at any folder on the way, is never read, and neither is a page over the size limit.
      // Every refusal is kept in the content cache under this fingerprint, so asking again
      // costs one stat until the file changes.
      if (read.kind === 'missing') return { value: { kind: 'missing' }, bytes: 64 };
      if (read.kind === 'refused') {
        if (read.reason === 'too-large') {
          // Over the global limit, the global refusal; under it, the site's own (its plan's).
          const error = limit && read.size <= MAX_PAGE_BYTES ? limit.refuse(found!, read.size) : pageTooLarge(file, read.size);
          return { value: { kind: 'invalid', error }, bytes: 512 };
        }
        return { value: { kind: read.reason === 'outside' ? 'outside' : 'missing' }, bytes: 64 };
      }
      const { text, stats } = read;
      // Rendered in the site's turn: one site's expensive pages never hold every render thread.
      const state = await parsePage(text, file, site.config.layout, (markdown) => render(markdown, site.id));
      if (state.kind === 'page') {
        // The version of what was read (the descriptor's stat), not of what the name showed
        // before the open: if they differ, the next check reloads once and the ETag follows.
        state.page.version = `${found}|${statsFingerprint(stats)}|${site.config.layout}`;
        state.page.modifiedMs = stats.mtimeMs;
        state.page.path = found!;
        state.page.bytes = stats.size;
      }
      const bytes = state.kind === 'page' ? 512 + (text.length + (state.page.html.length || JSON.stringify(state.page.segments).length)) * 2 : 512 + text.length;
      return { value: state, bytes };
    }
  };
}

export type PageLoader = ReturnType<typeof createPageLoader>;

export interface PageRoute {
  /** URL path segments: [] for /, ['blog', 'post'] for /blog/post. */
  segments: string[];
  /** Source file relative to the pages folder. */
  file: string;
}

/** Every page file of a site with its route, for the sitemap and `sites check`. Bounded (`limit` files, and as many folders) so a huge tree cannot stall a worker. */
export async function listPageRoutes(site: Site, limit = 50_000): Promise<PageRoute[]> {
  const routes: PageRoute[] = [];
  // Symlinks are listed as the server serves them: a link (to a page or a folder) that stays inside
  // the site folder is a page like any other; one that leads out is not. Each real folder is
  // walked once, so a link to an ancestor cannot loop.
  const visited = new Set<string>();
  const inside = async (path: string) => {
    const real = await realpath(path).catch(() => undefined);
    return real !== undefined && isWithin(site.dir, real) ? real : undefined;
  };
  async function walk(dir: string, prefix: string[]): Promise<void> {
    // Folders count against the bound too: a tree of empty folders is walked no further.
    if (visited.size >= limit) return;
    const real = await inside(dir);
    if (real === undefined || visited.has(real)) return;
    visited.add(real);
    let entries;
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch {
      return;
    }
    // In name order, so which name a folder linked twice is listed under never depends on the
    // file system's directory order.
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const entry of entries) {
      if (routes.length >= limit || entry.name.startsWith('.')) continue;
      const path = join(dir, entry.name);
      const link = entry.isSymbolicLink();
      if (entry.isDirectory() || (link && !entry.name.endsWith('.md'))) await walk(path, [...prefix, entry.name]);
      else if ((entry.isFile() || (link && (await inside(path)) !== undefined)) && entry.name.endsWith('.md')) {
        const name = entry.name.slice(0, -3);
        routes.push({ segments: name === 'index' ? prefix : [...prefix, name], file: [...prefix, entry.name].join('/') });
      }
    }
  }
  await walk(join(site.dir, 'pages'), []);
  return routes.sort((a, b) => (a.file < b.file ? -1 : 1));
}

export interface ShadowedPage {
  /** The file that is never served, relative to the pages folder. */
  file: string;
  /** The file served at its route instead. */
  shadowedBy: string;
}

/**
 * Page files that share a route with another file and lose to it (`a.md` beats `a/index.md`, in
 * pageCandidates order): they are never served, which is easy to miss when editing the loser.
 */
export function findShadowedPages(routes: readonly PageRoute[]): ShadowedPage[] {
  const filesByRoute = new Map<string, PageRoute[]>();
  for (const route of routes) {
    const key = route.segments.join('/');
    filesByRoute.set(key, [...(filesByRoute.get(key) ?? []), route]);
  }
  const shadowed: ShadowedPage[] = [];
  for (const group of filesByRoute.values()) {
    if (group.length < 2) continue;
    const files = new Set(group.map((r) => r.file));
    const winner = pageCandidates(group[0]!.segments).find((candidate) => files.has(candidate));
    if (winner === undefined) continue;
    for (const file of [...files].sort()) if (file !== winner) shadowed.push({ file, shadowedBy: winner });
  }
  return shadowed;
}
