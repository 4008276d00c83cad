import yaml from 'js-yaml';
import { isCalendarDate } from './schema.ts';
import { markdownPipelineId } from './markdown-cache.ts';
import { createMarkdownRenderer, type MarkdownRenderer } from './markdown-renderer.ts';

/**
 * Every package whose version can change the HTML rendered from the same Markdown: the ones
 * markdown-pipeline.ts imports, listed here so that the event-loop thread never loads the
 * pipeline itself (it runs only on render threads).
 */
const PIPELINE_PACKAGES = ['markdown-it', 'linkify-it', 'tlds', 'mdurl', 'entities', 'markdown-it-footnote', 'micromark-util-sanitize-uri', 'hast-util-raw', 'parse5', 'hast-util-sanitize', 'hast-util-to-html', 'hast-util-to-string', 'github-slugger'];

/** The pipeline's own modules: the chain, the parser and its rules, the tree builder, component directives and the body encoding it writes. */
const PIPELINE_MODULES = ['./markdown-pipeline.ts', './markdown-parser.ts', './markdown-strikethrough.ts', './markdown-hast.ts', './markdown-directives.ts', './page-body.ts'];

/** Identity of the Markdown pipeline (its modules and their package versions), for keys of rendered Markdown kept on disk. */
export function renderPipelineId(): string {
  return markdownPipelineId(
    PIPELINE_MODULES.map((module) => new URL(module, import.meta.url).href),
    PIPELINE_PACKAGES,
  );
}

let shared: MarkdownRenderer | undefined;

/**
 * Markdown → sanitised HTML (docs/site-format.md), or page-body.ts's encoding of HTML segments
 * and component calls for a body that calls site components, rendered on a render thread of this process
 * within a CPU budget (markdown-renderer.ts, DEFAULT_RENDERER_OPTIONS): never on the event loop.
 * Rejects with MarkdownRefused (the reason, and whether the text itself is the cause) when the
 * render is cut off or fails; such a text is then refused again at the cost of a hash.
 */
export function renderMarkdown(markdown: string, owner?: string, onRunning?: () => void): Promise<string> {
  return (shared ??= createMarkdownRenderer()).render(markdown, owner, onRunning);
}

/** Stops the shared render threads (shutdown, tests); the next render starts them again. */
export async function closeMarkdownRenderer(): Promise<void> {
  const renderer = shared;
  shared = undefined;
  await renderer?.close();
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

/**
 * Largest frontmatter block parsed (UTF-16 code units, ~bytes). YAML is parsed on the event loop
 * (the page loader and the sitemap both need it): js-yaml is linear but not cheap, up to ~3 µs
 * per byte on a loaded 2-core VM (20,000 aliases in 200 KB took 0.6 s), so a block the size of
 * the page limit could stall a worker for seconds. 16 KiB keeps a parse near 50 ms at worst there,
 * and is far more than a title, a description and a few cards need.
 */
export const MAX_FRONTMATTER_CHARS = 16 * 1024;

/**
 * Splits a `---` YAML frontmatter block from the Markdown body. A block that does not parse, or is
 * longer than MAX_FRONTMATTER_CHARS (then never parsed), gives `yamlError` with the reason.
 */
export function splitFrontmatter(source: string): SplitDocument {
  const text = source.charCodeAt(0) === 0xfeff ? source.slice(1) : source;
  const match = FRONTMATTER.exec(text);
  if (!match) return { data: {}, body: text };
  const body = text.slice(match[0].length);
  const block = match[1] ?? '';
  if (block.length > MAX_FRONTMATTER_CHARS) {
    return { data: {}, body, yamlError: `the frontmatter block is ${block.length.toLocaleString('en-US')} characters, over the limit of 16 KiB (${MAX_FRONTMATTER_CHARS.toLocaleString('en-US')})` };
  }
  try {
    // js-yaml 4 has no executable tags in its schemas, so frontmatter stays plain data.
    const data = yaml.load(block, { schema: FRONTMATTER_YAML_SCHEMA }) ?? {};
    return { data, body };
  } catch (error) {
    return { data: {}, body, yamlError: (error as Error).message.split('\n')[0] };
  }
}
