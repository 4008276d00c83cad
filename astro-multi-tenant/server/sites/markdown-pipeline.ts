import { unified, type Processor } from 'unified';
import remarkParse from 'remark-parse';
import remarkGfm from 'remark-gfm';
import remarkRehype from 'remark-rehype';
import rehypeRaw from 'rehype-raw';
import rehypeSanitize, { defaultSchema } from 'rehype-sanitize';
import rehypeSlug from 'rehype-slug';
import { bodySegments, CALL_MARKER, remarkComponentDirectives, remarkMarkComponentCalls, type ComponentCallData, type HastNode } from './markdown-directives.ts';
import { encodeBody } from './page-body.ts';

/*
 * The Markdown pipeline itself, alone in this module (with the component directives it uses,
 * markdown-directives.ts) so that the render thread (markdown-thread.ts) loads only what it runs.
 * Both sources are part of the pipeline's identity (markdown.ts renderPipelineId): editing either
 * gives the Markdown cache a new key space.
 */

type AttributeList = NonNullable<NonNullable<typeof defaultSchema.attributes>[string]>;

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
 * pages for them). The sanitiser runs after rehype-raw, which is why this pipeline is ours and not Astro's createMarkdownProcessor
 * (that one parses raw HTML after user plugins, so a sanitiser there would see nothing).
 */
const schema = {
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
 * GFM footnotes: remark-rehype is told not to prefix footnote ids (clobberPrefix '') because the
 * sanitiser prefixes every id anyway, and two prefixes broke the links. The sanitiser leaves
 * `href`s alone, so this step, run after it, gives footnote references and back-references the
 * same prefix their targets now have. Only links GFM marks as footnote links are touched.
 */
function rehypeFootnoteHrefs() {
  return (tree: HastNode) => {
    visitElements(tree, (node) => {
      const props = node.properties ?? {};
      const href = props.href;
      const isFootnoteLink = node.tagName === 'a' && (props.dataFootnoteRef !== undefined || props.dataFootnoteBackref !== undefined);
      if (isFootnoteLink && typeof href === 'string' && href.startsWith('#') && !href.startsWith(`#${CLOBBER_PREFIX}`)) {
        props.href = `#${CLOBBER_PREFIX}${href.slice(1)}`;
      }
    });
  };
}

function visitElements(node: HastNode, visit: (element: HastNode & { tagName: string }) => void): void {
  if (node.type === 'element' && node.tagName !== undefined) visit(node as HastNode & { tagName: string });
  for (const child of node.children ?? []) visitElements(child, visit);
}

type HtmlProcessor = Processor<any, any, any, any, undefined>;
let withRawHtml: HtmlProcessor | undefined;
let markdownOnly: HtmlProcessor | undefined;

/**
 * Built once per process: constructing the unified chain is far costlier than running it. Two
 * chains: rehype-raw re-parses the whole tree with parse5, the costliest step of a cold page load,
 * and is only needed when the source can contain raw HTML at all (a `<` somewhere). Both chains
 * end in the same sanitiser, so the policy is identical either way.
 */
function getProcessor(rawHtml: boolean): HtmlProcessor {
  const build = (raw: boolean) => {
    let chain = unified()
      .use(remarkParse)
      .use(remarkComponentDirectives as never)
      .use(remarkGfm)
      .use(remarkMarkComponentCalls as never)
      .use(remarkRehype, { allowDangerousHtml: raw, clobberPrefix: '' });
    if (raw) chain = chain.use(rehypeRaw) as unknown as typeof chain;
    return chain.use(rehypeSanitize, schema).use(rehypeFootnoteHrefs).use(rehypeSlug) as unknown as HtmlProcessor;
  };
  if (rawHtml) return (withRawHtml ??= build(true));
  return (markdownOnly ??= build(false));
}


/**
 * Markdown → sanitised HTML on the calling thread, with no bound at all: the pipeline is not
 * linear on hostile input (markdown-renderer.ts). Only the render thread calls this. A body that
 * calls site components comes back in page-body.ts's segment encoding; any other body is HTML,
 * serialised as rehype-stringify does.
 *
 * @throws ComponentCallError for a component call that does not parse (markdown-directives.ts).
 */
export async function renderMarkdownHere(markdown: string): Promise<string> {
  const processor = getProcessor(markdown.includes('<'));
  const { tree, data } = await new Promise<{ tree: HastNode; data: ComponentCallData }>((resolve, reject) => {
    processor.run(processor.parse(markdown), markdown, (error, tree, file) => {
      if (error || !tree || !file) reject(error ?? new Error('the Markdown pipeline gave no tree'));
      else resolve({ tree: tree as HastNode, data: file.data as ComponentCallData });
    });
  });
  return encodeBody(bodySegments(tree, data));
}
