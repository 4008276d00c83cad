import type { Token } from 'markdown-it';
import { normalizeUri } from 'micromark-util-sanitize-uri';
import { footnoteLabelKey } from './markdown-parser.ts';
import { checkParagraphForBrokenCall, componentCallMarker, type ComponentCalls, type ComponentTokenMeta, type HastNode } from './markdown-directives.ts';

/*
 * markdown-it's tokens (markdown-parser.ts) → a hast tree shaped as mdast-util-to-hast shapes
 * GitHub-flavoured Markdown, the shape this host rendered pages in before it parsed with
 * markdown-it: the same elements, properties and '\n' text between blocks, so the serialised
 * HTML (and the sanitiser's view of it) stays the same. The rules are mdast-util-to-hast's
 * handlers: blocks in a root are joined by '\n'; quotes, lists, table parts and footnotes are
 * also opened and closed by one; a tight list's paragraphs are unwrapped; task-list items get a
 * disabled checkbox; footnotes are numbered by first reference and listed in a section at the end.
 * Raw HTML becomes `raw` nodes, which markdown-pipeline.ts parses with hast-util-raw.
 */

export interface HastElement extends HastNode {
  type: 'element';
  tagName: string;
  properties: Record<string, unknown>;
  children: HastNode[];
}

const text = (value: string): HastNode & { value: string } => ({ type: 'text', value }) as HastNode & { value: string };
const element = (tagName: string, properties: Record<string, unknown>, children: HastNode[]): HastElement => ({ type: 'element', tagName, properties, children });

/** mdast-util-to-hast's `wrap`: '\n' between nodes, and around them when `loose`. */
function wrap(nodes: HastNode[], loose: boolean): HastNode[] {
  const out: HastNode[] = loose ? [text('\n')] : [];
  nodes.forEach((node, index) => {
    if (index > 0) out.push(text('\n'));
    out.push(node);
  });
  if (loose && nodes.length > 0) out.push(text('\n'));
  return out;
}

/** A footnote's id part: its folded label (markdown-parser.ts), lower-cased and URI-encoded as GFM's ids are. */
function footnoteId(label: string): string {
  return normalizeUri(footnoteLabelKey(label).toLowerCase());
}

/** The text a token list reads as (an image's `alt`, a container's label): text, code and raw HTML values, line breaks as '\n'. */
function plainText(tokens: Token[] | null): string {
  let out = '';
  for (const token of tokens ?? []) {
    if (token.type === 'text' || token.type === 'code_inline' || token.type === 'html_inline') out += token.content;
    else if (token.type === 'softbreak') out += '\n';
    else if (token.type === 'image') out += plainText(token.children);
  }
  return out;
}

interface Footnotes {
  /** Definition content (block tokens) by footnote id, from the definitions after the page (markdown-parser.ts separateDefinitions). */
  definitions: Map<string, Token[]>;
  /** Ids in order of first reference. */
  order: string[];
  /** Each id's number (1-based), its place in `order`. */
  numbers: Map<string, number>;
  /** References seen so far, by id. */
  counts: Map<string, number>;
}

/** Index of each opening token's matching close (nesting 1 → -1), for one flat token list. */
function closers(tokens: Token[]): Int32Array {
  const close = new Int32Array(tokens.length).fill(-1);
  const stack: number[] = [];
  tokens.forEach((token, index) => {
    if (token.nesting === 1) stack.push(index);
    else if (token.nesting === -1) close[stack.pop()!] = index;
  });
  return close;
}

/**
 * Builds the tree for one parsed page. Footnote ids are written without the sanitiser's
 * `user-content-` prefix, which it adds to every id (markdown-pipeline.ts then prefixes the links).
 * `hasRaw` tells whether the tree holds raw HTML to parse.
 *
 * @param tokens markdown-it's block tokens for the page.
 * @param found where component calls are recorded (markdown-directives.ts).
 * @throws ComponentCallError for a component call that does not parse.
 */
export function tokensToHast(tokens: Token[], found: ComponentCalls): { tree: HastNode; hasRaw: boolean } {
  let hasRaw = false;
  const footnotes: Footnotes = { definitions: new Map(), order: [], numbers: new Map(), counts: new Map() };
  // Footnote definitions come after the page, one per label, none inside another
  // (markdown-parser.ts separateDefinitions); their content is the blocks between their tokens.
  let main = tokens;
  const first = tokens.findIndex((token) => token.type === 'footnote_reference_open');
  if (first !== -1) {
    main = tokens.slice(0, first);
    let id: string | undefined;
    let content: Token[] = [];
    for (let i = first; i < tokens.length; i++) {
      const token = tokens[i]!;
      if (token.type === 'footnote_reference_open') {
        id = footnoteId(String(token.meta?.label ?? ''));
        content = [];
      } else if (token.type === 'footnote_reference_close') {
        if (id !== undefined && !footnotes.definitions.has(id)) footnotes.definitions.set(id, content);
        id = undefined;
      } else if (id !== undefined) content.push(token);
      else main.push(token);
    }
  }

  const inline = (children: Token[] | null): HastNode[] => {
    const out: HastNode[] = [];
    const stack: HastNode[][] = [out];
    const push = (node: HastNode) => stack.at(-1)!.push(node);
    const open = (node: HastElement) => {
      push(node);
      stack.push(node.children);
    };
    for (const token of children ?? []) {
      switch (token.type) {
        case 'text':
          push(text(token.content));
          break;
        case 'softbreak':
          push(text('\n'));
          break;
        case 'hardbreak':
          push(element('br', {}, []));
          push(text('\n'));
          break;
        case 'code_inline':
          push(element('code', {}, [text(token.content)]));
          break;
        case 'html_inline':
          hasRaw = true;
          push({ type: 'raw', value: token.content } as HastNode);
          break;
        case 'em_open':
          open(element('em', {}, []));
          break;
        case 'strong_open':
          open(element('strong', {}, []));
          break;
        case 's_open':
          open(element('del', {}, []));
          break;
        case 'link_open': {
          const properties: Record<string, unknown> = { href: normalizeUri(String(token.attrGet('href') ?? '')) };
          const title = token.attrGet('title');
          if (title !== null) properties.title = String(title);
          open(element('a', properties, []));
          break;
        }
        case 'em_close':
        case 'strong_close':
        case 's_close':
        case 'link_close':
          stack.pop();
          break;
        case 'image': {
          const properties: Record<string, unknown> = { src: normalizeUri(String(token.attrGet('src') ?? '')), alt: plainText(token.children) };
          const title = token.attrGet('title');
          if (title !== null) properties.title = String(title);
          push(element('img', properties, []));
          break;
        }
        case 'footnote_ref': {
          const id = footnoteId(String(token.meta?.label ?? ''));
          let count = footnotes.counts.get(id);
          if (count === undefined) {
            count = 0;
            footnotes.order.push(id);
            footnotes.numbers.set(id, footnotes.order.length);
          }
          count += 1;
          footnotes.counts.set(id, count);
          const link = element('a', { href: `#fn-${id}`, id: `fnref-${id}${count > 1 ? `-${count}` : ''}`, dataFootnoteRef: true, ariaDescribedBy: ['footnote-label'] }, [text(String(footnotes.numbers.get(id)))]);
          push(element('sup', {}, [link]));
          break;
        }
        default:
          // Any other inline token (text_special is joined into text by markdown-it) has no element.
          if (token.content) push(text(token.content));
      }
    }
    return out;
  };

  const blocks = (list: Token[], from: number, to: number, close: Int32Array): HastNode[] => {
    const out: HastNode[] = [];
    for (let i = from; i < to; i++) {
      const token = list[i]!;
      const end = token.nesting === 1 ? close[i]! : i;
      switch (token.type) {
        case 'paragraph_open': {
          const content = list[i + 1]!;
          checkParagraphForBrokenCall(content.content, (token.map?.[0] ?? 0) + 1);
          const p = element('p', {}, inline(content.children)) as HastElement & { tight?: boolean; source?: string };
          if (token.hidden) p.tight = true;
          // The source as written: a task marker is one only if it was written, not escaped (`\[x]`) or an entity.
          p.source = content.content;
          out.push(p);
          break;
        }
        case 'heading_open':
          out.push(element(token.tag, {}, inline(list[i + 1]!.children)));
          break;
        case 'blockquote_open':
          out.push(element('blockquote', {}, wrap(blocks(list, i + 1, end, close), true)));
          break;
        case 'bullet_list_open':
        case 'ordered_list_open':
          out.push(listElement(list, i, end, close));
          break;
        case 'code_block':
        case 'fence': {
          const value = token.content.endsWith('\n') ? token.content.slice(0, -1) : token.content;
          const language = token.type === 'fence' ? token.info.trim().split(/\s+/)[0] : '';
          out.push(element('pre', {}, [element('code', language ? { className: [`language-${language}`] } : {}, [text(value ? `${value}\n` : '')])]));
          break;
        }
        case 'html_block':
          hasRaw = true;
          out.push({ type: 'raw', value: token.content.endsWith('\n') ? token.content.slice(0, -1) : token.content } as HastNode);
          break;
        case 'hr':
          out.push(element('hr', {}, []));
          break;
        case 'table_open':
          out.push(tableElement(list, i, end, close));
          break;
        case 'component_leaf_open':
        case 'component_open': {
          const meta = token.meta as unknown as ComponentTokenMeta;
          let from = i + 1;
          let label: string | undefined;
          let children: HastNode[];
          if (token.type === 'component_leaf_open') {
            children = inline(list[i + 1]!.children);
          } else {
            if (list[from]?.type === 'inline' && list[from]!.meta?.label) {
              label = plainText(list[from]!.children);
              from++;
            }
            children = blocks(list, from, end, close);
          }
          out.push(element('div', componentCallMarker(meta, label, found), children));
          break;
        }
        default:
          break;
      }
      i = end;
    }
    return out;
  };

  const listElement = (list: Token[], start: number, end: number, close: Int32Array): HastElement => {
    const token = list[start]!;
    const items: Array<{ nodes: HastNode[]; checked?: boolean }> = [];
    let loose = false;
    for (let i = start + 1; i < end; i = close[i]! + 1) {
      const itemEnd = close[i]!;
      const nodes = blocks(list, i + 1, itemEnd, close);
      for (const node of nodes) if (node.tagName === 'p' && !(node as { tight?: boolean }).tight) loose = true;
      items.push({ nodes, checked: taskMarker(nodes) });
    }
    const properties: Record<string, unknown> = {};
    const start1 = token.attrGet('start');
    if (token.type === 'ordered_list_open' && start1 !== null && Number(start1) !== 1) properties.start = Number(start1);
    if (items.some((item) => item.checked !== undefined)) properties.className = ['contains-task-list'];
    const lis = items.map(({ nodes, checked }) => listItem(nodes, checked, loose));
    return element(token.type === 'ordered_list_open' ? 'ol' : 'ul', properties, wrap(lis, true));
  };

  const tableElement = (list: Token[], start: number, end: number, close: Int32Array): HastElement => {
    const parts: HastElement[] = [];
    for (let i = start + 1; i < end; i = close[i]! + 1) {
      const section = list[i]!;
      const rows: HastElement[] = [];
      for (let r = i + 1; r < close[i]!; r = close[r]! + 1) {
        const cells: HastElement[] = [];
        for (let c = r + 1; c < close[r]!; c = close[c]! + 1) {
          const cell = list[c]!;
          const properties: Record<string, unknown> = {};
          const align = /text-align:(left|right|center)/.exec(String(cell.attrGet('style') ?? ''));
          if (align) properties.align = align[1];
          cells.push(element(cell.tag, properties, inline(list[c + 1]!.children)));
        }
        rows.push(element('tr', {}, wrap(cells, true)));
      }
      parts.push(element(section.tag, {}, wrap(rows, true)));
    }
    return element('table', {}, wrap(parts, true));
  };

  const root = wrap(blocks(main, 0, main.length, closers(main)), false);
  const section = footer(footnotes, (content) => blocks(content, 0, content.length, closers(content)));
  if (section) root.push(text('\n'), section);
  return { tree: { type: 'root', children: root }, hasRaw };
}

const TASK_MARKER = /^\[([ xX\t])\]([ \t]*)/;

/**
 * GFM task-list items: a first paragraph opening with `[ ]` or `[x]`, then whitespace or a line
 * break, then more content (`- [ ]` alone is text). The marker and the whitespace after it are
 * taken out of the text; the checkbox and one space take their place (listItem).
 */
const WRITTEN_TASK_MARKER = /^\[[ xX\t]\](?:[ \t\n]|$)/;

function taskMarker(nodes: HastNode[]): boolean | undefined {
  const head = nodes[0] as (HastNode & { source?: string }) | undefined;
  if (!head || head.tagName !== 'p' || !WRITTEN_TASK_MARKER.test(head.source ?? '')) return undefined;
  const children = head.children!;
  const first = children[0] as (HastNode & { value?: string }) | undefined;
  if (!first || first.type !== 'text' || first.value === undefined) return undefined;
  const match = TASK_MARKER.exec(first.value);
  if (!match) return undefined;
  const rest = first.value.slice(match[0].length);
  const next = children[1] as (HastNode & { value?: string }) | undefined;
  const atLineEnd = rest === '' && match[2] === '';
  if (atLineEnd) {
    // `[x]` ends its line (a soft break, or a hard one after trailing spaces): a task only when
    // the paragraph goes on on the next line.
    const lineBreak = next?.value === '\n' ? 1 : next?.tagName === 'br' && (children[2] as { value?: string } | undefined)?.value === '\n' ? 2 : 0;
    if (lineBreak === 0 || children.length < 2 + lineBreak) return undefined;
    // A soft break goes with the marker; a hard one stays, as GFM renders it.
    children.splice(0, lineBreak === 1 ? 2 : 1);
  } else if (match[2] === '' || (rest === '' && !next)) {
    return undefined;
  } else if (rest === '') {
    children.shift();
  } else {
    first.value = rest;
  }
  return match[1] === 'x' || match[1] === 'X';
}

/** mdast-util-to-hast's list item: tight items unwrap their paragraphs; task items start with a disabled checkbox. */
function listItem(nodes: HastNode[], checked: boolean | undefined, loose: boolean): HastElement {
  const properties: Record<string, unknown> = {};
  const results = [...nodes];
  if (checked !== undefined) {
    let paragraph = results[0] as HastElement | undefined;
    if (!paragraph || paragraph.tagName !== 'p') {
      paragraph = element('p', {}, []);
      results.unshift(paragraph);
    }
    if (paragraph.children.length > 0) paragraph.children.unshift(text(' '));
    paragraph.children.unshift(element('input', { type: 'checkbox', checked, disabled: true }, []));
    properties.className = ['task-list-item'];
  }
  const children: HastNode[] = [];
  results.forEach((child, index) => {
    const isP = child.type === 'element' && child.tagName === 'p';
    if (loose || index !== 0 || !isP) children.push(text('\n'));
    if (isP && !loose) children.push(...(child.children ?? []));
    else children.push(child);
  });
  const tail = results.at(-1);
  if (tail && (loose || tail.type !== 'element' || tail.tagName !== 'p')) children.push(text('\n'));
  return element('li', properties, children);
}

/** GFM's footnote section (mdast-util-to-hast's footer), or undefined when no defined footnote is referenced. */
function footer(footnotes: Footnotes, toBlocks: (content: Token[]) => HastNode[]): HastElement | undefined {
  const contents: Array<HastNode[] | undefined> = [];
  // Definitions can reference further footnotes, which join the order as they are met.
  for (let index = 0; index < footnotes.order.length; index++) {
    const definition = footnotes.definitions.get(footnotes.order[index]!);
    if (definition) contents[index] = toBlocks(definition);
  }
  const items: HastElement[] = [];
  footnotes.order.forEach((id, referenceIndex) => {
    const content = contents[referenceIndex];
    if (!content) return;
    const backReferences: HastNode[] = [];
    const count = footnotes.counts.get(id) ?? 0;
    for (let again = 1; again <= count; again++) {
      if (backReferences.length > 0) backReferences.push(text(' '));
      const label = [text('↩'), ...(again > 1 ? [element('sup', {}, [text(String(again))])] : [])];
      backReferences.push(
        element(
          'a',
          { href: `#fnref-${id}${again > 1 ? `-${again}` : ''}`, dataFootnoteBackref: '', ariaLabel: `Back to reference ${referenceIndex + 1}${again > 1 ? `-${again}` : ''}`, className: ['data-footnote-backref'] },
          label,
        ),
      );
    }
    const tail = content.at(-1) as HastElement | undefined;
    if (tail && tail.type === 'element' && tail.tagName === 'p') {
      const last = tail.children.at(-1) as (HastNode & { value?: string }) | undefined;
      if (last && last.type === 'text') last.value += ' ';
      else tail.children.push(text(' '));
      tail.children.push(...backReferences);
    } else {
      content.push(...backReferences);
    }
    items.push(element('li', { id: `fn-${id}` }, wrap(content, true)));
  });
  if (items.length === 0) return undefined;
  return element('section', { dataFootnotes: true, className: ['footnotes'] }, [element('h2', { className: ['sr-only'], id: 'footnote-label' }, [text('Footnotes')]), text('\n'), element('ol', {}, wrap(items, true)), text('\n')]);
}
