import MarkdownIt, { type MarkdownIt as MarkdownItParser, type StateCore } from 'markdown-it';
import markdownItFootnote from 'markdown-it-footnote';
import topLevelDomains from 'tlds' with { type: 'json' };
import { componentDirectives } from './markdown-directives.ts';
import { gfmStrikethrough } from './markdown-strikethrough.ts';

/*
 * The Markdown syntax a page may use (docs/site-format.md): CommonMark, GitHub's extensions
 * (tables, strikethrough, autolinked URLs, task lists, footnotes) and site component calls,
 * parsed by markdown-it. Part of the Markdown pipeline (markdown-pipeline.ts) and of its identity.
 *
 * Why markdown-it: the bench page renders about ten times faster than with micromark (~0.3 ms
 * against ~3.3 ms for the whole pipeline on this 2-core VM), and markdown-it stays linear on
 * CommonMark's pathological inputs (test/unit/markdown-pathological.test.ts holds the corpus).
 * Nothing here decides what is safe: the parser only builds tokens, which markdown-hast.ts turns
 * into a tree that the sanitiser then filters (markdown-pipeline.ts), so link checks are left to
 * the sanitiser's allowlist and URLs are kept as written (markdown-hast.ts normalises them as
 * micromark does).
 */

/**
 * GitHub's autolinked literals (GFM spec, "Autolinks (extension)"): `www.` names, `http(s)://`
 * URLs and e-mail addresses. linkify-it finds more (bare `example.com`, `//host`, `ftp://`), which
 * GitHub and our previous pipeline left as text; those matches are dropped.
 */
function isGfmLiteral(match: { schema: string; raw: string }): boolean {
  if (match.schema === 'http:' || match.schema === 'https:' || match.schema === 'mailto:') return true;
  return match.schema === '' && /^www\./i.test(match.raw);
}

interface LinkifyMatch {
  schema: string;
  lastIndex: number;
  raw: string;
  text: string;
  url: string;
}

/**
 * GFM's end of an autolinked literal: trailing `?`, `!`, `.`, `,`, `:`, `*`, `_`, `~`, an entity-like
 * `&name;` and a `)` without its `(` are not part of the link (GFM spec, "extended autolink path
 * validation"); linkify-it keeps some of them (`ok.` before a `)`, `~~` after a URL).
 */
function trimGfmTrail<M extends LinkifyMatch>(match: M): M | undefined {
  let raw = match.raw;
  for (;;) {
    const last = raw.at(-1);
    if (last !== undefined && '?!.,:*_~'.includes(last)) raw = raw.slice(0, -1);
    else if (last === ';' && /&[a-zA-Z0-9]+;$/.test(raw)) raw = raw.replace(/&[a-zA-Z0-9]+;$/, '');
    else if (last === ')' && raw.split(')').length > raw.split('(').length) raw = raw.slice(0, -1);
    else break;
  }
  if (raw === match.raw) return match;
  const cut = match.raw.length - raw.length;
  if (raw === '' || (match.schema === '' && !/^www\.[^.]/i.test(raw))) return undefined;
  return Object.assign(match, { raw, lastIndex: match.lastIndex - cut, text: match.text.slice(0, match.text.length - cut), url: match.url.slice(0, match.url.length - cut) });
}

const MAY_HOLD_LITERAL = /www\.|:\/\/|@/i;

const gfmMatch = <M extends LinkifyMatch>(match: M): M | undefined => (isGfmLiteral(match) ? trimGfmTrail(match) : undefined);

/** A footnote label as GFM matches it (micromark's normalizeIdentifier): whitespace collapsed, case folded. */
export function footnoteLabelKey(label: string): string {
  return label.replace(/[\t\n\r ]+/g, ' ').replace(/^ | $/g, '').toLowerCase().toUpperCase();
}

interface FootnoteEnv {
  footnotes?: { refs?: Record<string, number> };
}

type BlockToken = StateCore['tokens'][number];

/**
 * Footnote definitions moved after the page, flat and one per label, where markdown-hast.ts reads
 * them. A definition can sit inside another (in a list item or a quote of it); markdown-it-
 * footnote's own footnote_tail rule cut them out with a flag, not a depth, and lost the rest of the
 * page. GFM keeps the first definition of a label (markdown-it-footnote, the last); later ones are
 * dropped.
 */
function separateDefinitions(tokens: BlockToken[]): BlockToken[] {
  const page: BlockToken[] = [];
  const definitions: Array<{ at: number; tokens: BlockToken[] }> = [];
  const open: Array<{ at: number; tokens: BlockToken[] }> = [];
  for (const [at, token] of tokens.entries()) {
    if (token.type === 'footnote_reference_open') {
      open.push({ at, tokens: [token] });
    } else if (token.type === 'footnote_reference_close' && open.length > 0) {
      const definition = open.pop()!;
      definition.tokens.push(token);
      definitions.push(definition);
    } else {
      (open.at(-1)?.tokens ?? page).push(token);
    }
  }
  // Unclosed ones cannot happen (the rule closes what it opens); kept as they are if they do.
  for (const rest of open) page.push(...rest.tokens);
  // Source order is the order the definitions were opened in.
  definitions.sort((a, b) => a.at - b.at);
  const seen = new Set<string>();
  for (const definition of definitions) {
    const label = String(definition.tokens[0]!.meta?.label);
    if (seen.has(label)) continue;
    seen.add(label);
    page.push(...definition.tokens);
  }
  return page;
}

/**
 * markdown-it-footnote matches a reference to its definition by the exact label; GFM matches
 * labels as link references are matched (`[^Note]` finds `[^note]:`). After the blocks are parsed
 * the definitions are keyed by their folded label (on their tokens too), and every lookup folds
 * its label.
 */
function caseInsensitiveFootnotes(md: MarkdownItParser): void {
  md.core.ruler.after('block', 'footnote_fold_labels', (state) => {
    const env = state.env as FootnoteEnv;
    const refs = env.footnotes?.refs;
    if (!refs) return;
    const folded: Record<string, number> = {};
    for (const [key, value] of Object.entries(refs)) {
      const name = `:${footnoteLabelKey(key.slice(1))}`;
      if (!(name in folded)) folded[name] = value;
    }
    const fold = (key: string | symbol) => (typeof key === 'string' && key.startsWith(':') ? `:${footnoteLabelKey(key.slice(1))}` : key);
    env.footnotes!.refs = new Proxy(folded, {
      get: (target, key) => Reflect.get(target, fold(key)),
      set: (target, key, value) => Reflect.set(target, fold(key), value),
      has: (target, key) => Reflect.has(target, fold(key)),
    });
    for (const token of state.tokens) if (token.type === 'footnote_reference_open' && token.meta) token.meta.label = footnoteLabelKey(String(token.meta.label));
    state.tokens = separateDefinitions(state.tokens);
  });
  // markdown-it-footnote's footnote_tail rebuilt the whole token list once per footnote (1,000
  // footnotes on a page took seconds); markdown-hast.ts reads the definitions where
  // separateDefinitions put them, after the page, instead.
  md.core.ruler.disable('footnote_tail');
}

/** Builds the configured parser; one per render thread (construction costs far more than a parse). */
export function createMarkdownParser(): MarkdownItParser {
  const md = new MarkdownIt('default', { html: true, linkify: true, typographer: false, breaks: false });
  // URLs stay as written: the sanitiser decides which protocols are allowed, and markdown-hast.ts
  // encodes them as micromark-util-sanitize-uri does (markdown-it would punycode hosts and drop
  // `javascript:` links to text, which changed what readers saw).
  md.validateLink = () => true;
  md.normalizeLink = (url) => url;
  md.normalizeLinkText = (text) => text;
  const linkify = md.linkify;
  // linkify-it accepts only a few generic top-level domains in `www.` names and e-mail addresses
  // (`www.example.dev` stayed text); GFM accepts any. The IANA list (the `tlds` package, as
  // linkify-it's README suggests) keeps every real domain linked and made-up ones (`a.b`) text.
  linkify.set({ fuzzyLink: true, fuzzyEmail: true, fuzzyIP: false }).tlds(topLevelDomains, true);
  const match = linkify.match.bind(linkify);
  // markdown-it asks test() and then match() for the same text: the last answer is kept for it.
  let last: { text: string; found: ReturnType<typeof match> } | undefined;
  linkify.match = (text: string) => {
    if (last?.text !== text) {
      const found = (match(text) ?? []).flatMap((m) => gfmMatch(m) ?? []);
      last = { text, found: found.length > 0 ? found : null };
    }
    return last.found;
  };
  // Every GFM literal holds `www.`, `://` or `@`: a text without one skips linkify-it's regular
  // expressions, which were a quarter of a page's parse.
  linkify.test = (text: string) => MAY_HOLD_LITERAL.test(text) && linkify.match(text) !== null;
  const matchAtStart = linkify.matchAtStart.bind(linkify);
  linkify.matchAtStart = (text: string) => {
    const found = matchAtStart(text);
    return (found && gfmMatch(found)) ?? null;
  };
  // A fence's info string as written is kept on its token; its language is read unescaped (`\+`,
  // `&ouml;`), as markdown-it's own renderer and micromark read it.
  md.core.ruler.after('block', 'fence_info', (state) => {
    for (const token of state.tokens) if (token.type === 'fence') token.info = md.utils.unescapeAll(token.info);
  });
  md.use(gfmStrikethrough);
  md.use(markdownItFootnote);
  // GFM has no inline footnotes (`^[text]`); they stay text, as they always were here.
  md.inline.ruler.disable('footnote_inline');
  caseInsensitiveFootnotes(md);
  md.use(componentDirectives);
  return md;
}
