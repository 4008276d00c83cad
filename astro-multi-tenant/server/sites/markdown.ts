import { unified, type Processor } from 'unified';
import remarkParse from 'remark-parse';
import remarkGfm from 'remark-gfm';
import remarkRehype from 'remark-rehype';
import rehypeRaw from 'rehype-raw';
import rehypeSanitize, { defaultSchema } from 'rehype-sanitize';
import rehypeSlug from 'rehype-slug';
import rehypeStringify from 'rehype-stringify';
import yaml from 'js-yaml';
import { isCalendarDate } from './schema.ts';
import { markdownPipelineId } from './markdown-cache.ts';

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

interface HastNode {
  type: string;
  tagName?: string;
  properties?: Record<string, unknown>;
  children?: HastNode[];
}

function visitElements(node: HastNode, visit: (element: HastNode & { tagName: string }) => void): void {
  if (node.type === 'element' && node.tagName !== undefined) visit(node as HastNode & { tagName: string });
  for (const child of node.children ?? []) visitElements(child, visit);
}

type HtmlProcessor = Processor<any, any, any, any, string>;
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
    let chain = unified().use(remarkParse).use(remarkGfm).use(remarkRehype, { allowDangerousHtml: raw, clobberPrefix: '' });
    if (raw) chain = chain.use(rehypeRaw) as unknown as typeof chain;
    return chain.use(rehypeSanitize, schema).use(rehypeFootnoteHrefs).use(rehypeSlug).use(rehypeStringify) as unknown as HtmlProcessor;
  };
  if (rawHtml) return (withRawHtml ??= build(true));
  return (markdownOnly ??= build(false));
}

/** Every package whose version can change the HTML rendered from the same Markdown. */
const PIPELINE_PACKAGES = ['unified', 'remark-parse', 'remark-gfm', 'remark-rehype', 'rehype-raw', 'rehype-sanitize', 'hast-util-sanitize', 'rehype-slug', 'rehype-stringify', 'micromark', 'mdast-util-to-hast', 'hast-util-to-html'];

/** Identity of this pipeline (its source and package versions), for keys of rendered Markdown kept on disk. */
export function renderPipelineId(): string {
  return markdownPipelineId(import.meta.url, PIPELINE_PACKAGES);
}

export async function renderMarkdown(markdown: string): Promise<string> {
  const file = await getProcessor(markdown.includes('<')).process(markdown);
  return String(file.value);
}

export interface SplitDocument {
  data: unknown;
  body: string;
  /** YAML error message, when the frontmatter block does not parse. */
  yamlError?: string;
}

// @types/js-yaml does not declare the `types` export that js-yaml 4 has.
const { timestamp } = (yaml as unknown as { types: { timestamp: yaml.Type } }).types;

/**
 * js-yaml's timestamp type turns `2026-13-45` into a Date by rolling it over (to 2027-02-14), so a
 * typo silently became another day. This copy only claims scalars whose date part exists; anything
 * else stays a string, which the frontmatter schema then rejects naming the date.
 */
const realTimestamp = new yaml.Type('tag:yaml.org,2002:timestamp', {
  kind: 'scalar',
  resolve: (data: unknown) => typeof data === 'string' && timestamp.resolve(data) && timestampDateExists(data),
  construct: (data: string) => timestamp.construct(data),
  instanceOf: Date,
  represent: (date: object) => (date as Date).toISOString(),
});

/** YAML timestamps allow one-digit months and days (`2026-1-5 10:00:00`); pad them before checking. */
function timestampDateExists(data: string): boolean {
  const match = /^(\d{4})-(\d{1,2})-(\d{1,2})/.exec(data);
  return match !== null && isCalendarDate(`${match[1]}-${match[2]!.padStart(2, '0')}-${match[3]!.padStart(2, '0')}`);
}

// js-yaml's DEFAULT_SCHEMA; a type added under an existing tag replaces that type in place.
const FRONTMATTER_YAML_SCHEMA = yaml.DEFAULT_SCHEMA.extend({ implicit: [realTimestamp] });

const FRONTMATTER = /^---[ \t]*\r?\n([\s\S]*?)\r?\n---[ \t]*(?:\r?\n|$)/;

/** Splits a `---` YAML frontmatter block from the Markdown body. */
export function splitFrontmatter(source: string): SplitDocument {
  const text = source.charCodeAt(0) === 0xfeff ? source.slice(1) : source;
  const match = FRONTMATTER.exec(text);
  if (!match) return { data: {}, body: text };
  const body = text.slice(match[0].length);
  try {
    // js-yaml 4 has no executable tags in its schemas, so frontmatter stays plain data.
    const data = yaml.load(match[1] ?? '', { schema: FRONTMATTER_YAML_SCHEMA }) ?? {};
    return { data, body };
  } catch (error) {
    return { data: {}, body, yamlError: (error as Error).message.split('\n')[0] };
  }
}
