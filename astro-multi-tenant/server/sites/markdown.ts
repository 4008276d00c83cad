import { unified, type Processor } from 'unified';
import remarkParse from 'remark-parse';
import remarkGfm from 'remark-gfm';
import remarkRehype from 'remark-rehype';
import rehypeRaw from 'rehype-raw';
import rehypeSanitize, { defaultSchema } from 'rehype-sanitize';
import rehypeSlug from 'rehype-slug';
import rehypeStringify from 'rehype-stringify';
import yaml from 'js-yaml';

/**
 * Raw-HTML policy (docs/site-format.md): site owners may write HTML in Markdown, but it passes
 * through rehype-sanitize's GitHub-style allowlist after parsing. Scripts, event handlers, iframes,
 * `style` attributes and `javascript:` URLs are removed; `class` is kept on every element so owners
 * can use Tailwind utilities (their site's CSS build scans their pages for them). The sanitiser runs
 * after rehype-raw, which is why this pipeline is ours and not Astro's createMarkdownProcessor
 * (that one parses raw HTML after user plugins, so a sanitiser there would see nothing).
 */
const schema = {
  ...defaultSchema,
  attributes: {
    ...defaultSchema.attributes,
    '*': [...(defaultSchema.attributes?.['*'] ?? []), 'className'],
  },
};

let processor: Processor<any, any, any, any, string> | undefined;

function getProcessor() {
  // Built once per process: constructing the unified chain is far costlier than running it.
  processor ??= unified()
    .use(remarkParse)
    .use(remarkGfm)
    .use(remarkRehype, { allowDangerousHtml: true })
    .use(rehypeRaw)
    .use(rehypeSanitize, schema)
    .use(rehypeSlug)
    .use(rehypeStringify) as unknown as Processor<any, any, any, any, string>;
  return processor;
}

export async function renderMarkdown(markdown: string): Promise<string> {
  const file = await getProcessor().process(markdown);
  return String(file.value);
}

export interface SplitDocument {
  data: unknown;
  body: string;
  /** YAML error message, when the frontmatter block does not parse. */
  yamlError?: string;
}

const FRONTMATTER = /^---[ \t]*\r?\n([\s\S]*?)\r?\n---[ \t]*(?:\r?\n|$)/;

/** Splits a `---` YAML frontmatter block from the Markdown body. */
export function splitFrontmatter(source: string): SplitDocument {
  const text = source.charCodeAt(0) === 0xfeff ? source.slice(1) : source;
  const match = FRONTMATTER.exec(text);
  if (!match) return { data: {}, body: text };
  const body = text.slice(match[0].length);
  try {
    // js-yaml 4 has no executable tags in its default schema, so frontmatter stays plain data.
    const data = yaml.load(match[1] ?? '', { schema: yaml.DEFAULT_SCHEMA }) ?? {};
    return { data, body };
  } catch (error) {
    return { data: {}, body, yamlError: (error as Error).message.split('\n')[0] };
  }
}
