import { randomBytes } from 'node:crypto';
import GithubSlugger from 'github-slugger';
import { raw } from 'hast-util-raw';
import { defaultSchema, sanitize, type Schema } from 'hast-util-sanitize';
import { toString } from 'hast-util-to-string';
import type { MarkdownIt } from 'markdown-it';
import { bodySegments, CALL_MARKER, type ComponentCalls, type HastNode } from './markdown-directives.ts';
import { tokensToHast } from './markdown-hast.ts';
import { createMarkdownParser } from './markdown-parser.ts';
import { encodeBody } from './page-body.ts';

/*
 * The Markdown pipeline itself, alone in this module (with the modules it uses: the parser,
 * markdown-parser.ts; the tree builder, markdown-hast.ts; component directives,
 * markdown-directives.ts) so that the render thread (markdown-thread.ts) loads only what it runs.
 * All are part of the pipeline's identity (markdown.ts renderPipelineId): editing one gives the
 * Markdown cache a new key space.
 *
 * parse (markdown-it) → tree (hast, shaped as remark-rehype shaped it) → raw HTML parsed
 * (hast-util-raw, only when the page has some) → sanitised (hast-util-sanitize) → footnote links
 * prefixed → heading ids (github-slugger, as rehype-slug) → HTML (hast-util-to-html).
 */

type AttributeList = NonNullable<NonNullable<Schema['attributes']>[string]>;

/**
 * hast-util-sanitize consults a tag's own rules before '*', and a tag-specific `className` allowlist
 * (GitHub's `a: data-footnote-backref`, `ul: contains-task-list`, ...) filters the class down to
 * class="" instead of falling through to '*'. Dropping those entries lets the '*' rule keep any class.
 */
function withoutTagClassRules(attributes: Record<string, AttributeList>): Record<string, AttributeList> {
  const isClassRule = (rule: AttributeList[number]) => (Array.isArray(rule) ? rule[0] : rule) === 'className';
  return Object.fromEntries(Object.entries(attributes).map(([tag, rules]) => [tag, tag === '*' ? rules : rules.filter((rule) => !isClassRule(rule))]));
}

/**
 * Elements whose content is not page text (raw CSS/JS, form or document-title text, legacy
 * raw-text containers). The default schema strips only `script`; any other disallowed element is
 * unwrapped and its text shown, so a `<style>` block would leak its CSS onto the page.
 */
const STRIPPED_WITH_CONTENT = ['script', 'style', 'textarea', 'title', 'iframe', 'noembed', 'noframes', 'xmp', 'template'];

/**
 * Raw-HTML policy (docs/site-format.md): site owners may write HTML in Markdown, but it passes
 * through rehype-sanitize's GitHub-style allowlist after parsing. Scripts, styles and iframes (with
 * their content), event handlers, `style` attributes and `javascript:` URLs are removed; `class` is
 * kept on every element so owners can use Tailwind utilities (their site's CSS build scans their
 * pages for them). The sanitiser runs after raw HTML is parsed into the tree, which is why this
 * pipeline is ours and not Astro's createMarkdownProcessor (that one parses raw HTML after user
 * plugins, so a sanitiser there would see nothing).
 */
const schema: Schema = {
  ...defaultSchema,
  attributes: {
    ...withoutTagClassRules(defaultSchema.attributes ?? {}),
    '*': [...(defaultSchema.attributes?.['*'] ?? []), 'className'],
    // A component call's marker (markdown-directives.ts): kept so the call survives the sanitiser
    // with sanitised children; a forged one lacks the render's nonce and is dropped afterwards.
    div: [...withoutTagClassRules(defaultSchema.attributes ?? {}).div ?? [], CALL_MARKER],
  },
  strip: STRIPPED_WITH_CONTENT,
};

/** The prefix the sanitiser puts on every `id` (DOM-clobbering defence); footnote links must carry it too. */
const CLOBBER_PREFIX = defaultSchema.clobberPrefix ?? 'user-content-';

/**
 * GFM footnotes: their ids are made without a prefix (markdown-hast.ts) because the sanitiser
 * prefixes every id. The sanitiser leaves `href`s alone, so this step, run after it, gives footnote
 * references and back-references the same prefix their targets now have. Only links marked as
 * footnote links are touched.
 */
function prefixFootnoteHref(node: HastNode & { tagName: string }): void {
  const props = node.properties ?? {};
  const href = props.href;
  const isFootnoteLink = node.tagName === 'a' && (props.dataFootnoteRef !== undefined || props.dataFootnoteBackref !== undefined);
  if (isFootnoteLink && typeof href === 'string' && href.startsWith('#') && !href.startsWith(`#${CLOBBER_PREFIX}`)) {
    props.href = `#${CLOBBER_PREFIX}${href.slice(1)}`;
  }
}

const HEADING = /^h[1-6]$/;

/** rehype-slug's rule: every heading without an id gets github-slugger's slug of its text, unique within the page (so elements must come in document order). */
function headingIds(): (node: HastNode & { tagName: string }) => void {
  const slugger = new GithubSlugger();
  return (node) => {
    const props = (node.properties ??= {});
    if (HEADING.test(node.tagName) && props.id === undefined) props.id = slugger.slug(toString(node as Parameters<typeof toString>[0]));
  };
}

/** What follows the sanitiser, in one pass over the elements in document order: footnote links, heading ids. */
function finishSanitised(tree: HastNode): void {
  const addHeadingId = headingIds();
  visitElements(tree, (node) => {
    prefixFootnoteHref(node);
    addHeadingId(node);
  });
}

function visitElements(node: HastNode, visit: (element: HastNode & { tagName: string }) => void): void {
  if (node.type === 'element' && node.tagName !== undefined) visit(node as HastNode & { tagName: string });
  for (const child of node.children ?? []) visitElements(child, visit);
}

/**
 * Largest HTML (UTF-16 code units) a text may render to: 8 times the text, at least 4 MiB. Ordinary
 * Markdown renders to 1–7 times its length; a reference definition with a long title used by many
 * short references multiplies it (100 KB rendered to 50 MB), and that HTML is copied to the event
 * loop, cached and sent on every request: 35 MB held /_platform/healthz for 200–300 ms each time,
 * while the 8 MiB a 1 MiB page may reach stays within the 100 ms the event loop may be held.
 */
export function maxRenderedLength(markdownLength: number): number {
  return Math.max(4 * 1024 * 1024, 8 * markdownLength);
}

/** A text whose HTML would be longer than maxRenderedLength; refused for what it is. */
export class RenderedTooLarge extends Error {
  /** The bound it went over (UTF-16 code units). */
  readonly limit: number;

  constructor(limit: number) {
    super(`renders to more than ${(limit / (1024 * 1024)).toFixed(1)} MiB of HTML, the limit for its size (8 times the text, at least 4 MiB)`);
    this.name = 'RenderedTooLarge';
    this.limit = limit;
  }
}

/**
 * A lower bound of the serialised length of `tree`: its text and attribute values (without
 * escaping) and tag names, counted without building the HTML. Shared strings (one title used by
 * every reference) count once per use, as they would be written.
 */
function htmlLengthAtLeast(node: HastNode, limit: number): number {
  let total = 0;
  const walk = (current: HastNode) => {
    if (total > limit) return;
    const value = (current as { value?: unknown }).value;
    if (typeof value === 'string') total += value.length;
    if (current.tagName) total += 2 * current.tagName.length + 5;
    for (const [name, property] of Object.entries(current.properties ?? {})) {
      total += name.length + 3 + (typeof property === 'string' ? property.length : Array.isArray(property) ? property.join(' ').length : 0);
    }
    for (const child of current.children ?? []) walk(child);
  };
  walk(node);
  return total;
}

/** Built once per thread: constructing markdown-it with its rules costs far more than a parse. */
let parser: MarkdownIt | undefined;

/**
 * Markdown → sanitised HTML on the calling thread, with no bound of its own: markdown-it is linear
 * on CommonMark's pathological shapes, but raw HTML is parsed by parse5 and a page may be large,
 * so the event loop never calls this (markdown-renderer.ts runs it on a render thread with a CPU
 * budget). A body that calls site components comes back in page-body.ts's segment encoding; any
 * other body is HTML, serialised as rehype-stringify does.
 *
 * @throws ComponentCallError for a component call that does not parse (markdown-directives.ts).
 * @throws RenderedTooLarge when the HTML would be longer than maxRenderedLength (checked on the
 *   tree before it is serialised, and on the result).
 */
export async function renderMarkdownHere(markdown: string): Promise<string> {
  const found: ComponentCalls = { nonce: randomBytes(16).toString('hex'), calls: [] };
  // Each stage's input is dropped as soon as the next stage has its output: markdown-it's tokens and
  // the unsanitised tree of a large page are each tens of MiB, and keeping all three alive at once
  // put a 1 MiB page of tables over the render thread's heap bound.
  let built: { tree: HastNode; hasRaw: boolean } | undefined = tokensToHast((parser ??= createMarkdownParser()).parse(markdown, {}), found);
  let tree: HastNode = built.hasRaw ? (raw(built.tree as Parameters<typeof raw>[0]) as HastNode) : built.tree;
  built = undefined;
  tree = sanitize(tree as Parameters<typeof sanitize>[0], schema) as HastNode;
  finishSanitised(tree);
  const limit = maxRenderedLength(markdown.length);
  if (htmlLengthAtLeast(tree, limit) > limit) throw new RenderedTooLarge(limit);
  const html = encodeBody(bodySegments(tree, found));
  if (html.length > limit) throw new RenderedTooLarge(limit);
  return html;
}
