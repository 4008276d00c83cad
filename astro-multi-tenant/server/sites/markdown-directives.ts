import { decodeHTMLAttribute } from 'entities/decode';
import { toHtml } from 'hast-util-to-html';
import type { MarkdownIt } from 'markdown-it';
import type { StateBlock } from 'markdown-it';
import type { BodySegment, PropValue } from './page-body.ts';

/*
 * Site component calls in Markdown (docs/site-format.md): `::Name{prop="value" other=3}` on a line
 * of its own (a leaf) and `:::Name{…}` … `:::` (a container, whose Markdown children are the
 * component's default slot), in the syntax of remark-directive (the generic directives proposal),
 * which pages were written for. Part of the Markdown pipeline (markdown-pipeline.ts) and of its
 * identity (markdown.ts renderPipelineId).
 *
 * Three steps:
 * 1. syntax (componentDirectives, a markdown-it block rule): block directives whose name starts
 *    with A–Z, read with remark-directive's grammar (parseDirectiveOpening). Text directives
 *    (`:x` in prose) and lower-case names are never parsed, so every page that calls no component
 *    renders as plain Markdown, and a stray `:` in prose stays text.
 * 2. marking (componentCallMarker, while markdown-hast.ts builds the tree): each call becomes a
 *    `<div>` carrying a marker attribute whose value holds a random nonce made for this render. The
 *    sanitiser keeps that attribute, so the call's children are sanitised like the rest of the
 *    page, but an owner's raw HTML cannot forge a call: it would have to guess the nonce, which
 *    never leaves the render.
 * 3. segments (bodySegments, after the sanitiser): marked divs become component calls, the HTML
 *    around them HTML segments; every marker attribute (forged ones too) is dropped.
 */

/** The marker attribute (hast property name): kept by the sanitiser on `div` only (markdown-pipeline.ts). */
export const CALL_MARKER = 'dataComponentCall';

/** A component name: PascalCase ASCII, as its file is named (components/<Name>.astro; the same rule as components/component-file.ts). */
export const COMPONENT_NAME = /^[A-Z][A-Za-z0-9]{0,63}$/;

/** A directive that starts like a component call but did not parse (or names no valid component); thrown from the pipeline, so the page is refused naming the line. */
export class ComponentCallError extends Error {
  constructor(line: number, message: string) {
    super(`line ${line} of the body: ${message}`);
    this.name = 'ComponentCallError';
  }
}

// ---- 1. syntax -------------------------------------------------------------------------------

/** What follows a fence's colons, when it is a directive's opening: its name, `[label]` source and `{attributes}`. */
export interface DirectiveOpening {
  name: string;
  /** The label's Markdown source (between `[` and `]`), when there is one. */
  label?: string;
  /** Attributes in source order: `#x` is `id`, `.x` is `class`, a bare name has the value ''. */
  attributes: Array<[string, string]>;
  /** Names whose value was written in quotes (they stay strings, see propValue). */
  quoted: Set<string>;
}

// micromark-util-character's classes, which remark-directive's grammar is written in.
const PUNCTUATION = /[\p{P}\p{S}]/u;
const WHITESPACE = /\s/u;
const isSpaceOrTab = (c: string | undefined) => c === ' ' || c === '\t';
const isNameChar = (c: string) => !WHITESPACE.test(c) && (!PUNCTUATION.test(c) || c === '-' || c === '_');
/** Largest label nesting remark-directive accepts. */
const MAX_LABEL_NESTING = 32;
/** remark-directive's label size bound (counted, as there, in escaped characters). */
const MAX_LABEL_ESCAPES = 999;

/**
 * Reads a directive's opening from `line` (the text after the fence's colons, without the line
 * ending), or undefined when remark-directive's grammar would not take it as one (the line is then
 * ordinary Markdown). Only names starting with A–Z are read (see the module comment). The grammar
 * is micromark-extension-directive's for block directives: a name (letters, digits, `-`, `_`, not
 * ending in `-` or `_`), an optional `[label]` (balanced brackets, one line), optional
 * `{attributes}` (`#id`, `.class`, `name`, `name=value`, `name="value"`, `name='value'`, one line;
 * character references in values decoded), then only spaces or tabs.
 */
export function parseDirectiveOpening(line: string): DirectiveOpening | undefined {
  const chars = Array.from(line);
  let i = 0;
  if (!/^[A-Z]$/.test(chars[0] ?? '')) return undefined;
  while (i < chars.length && isNameChar(chars[i]!)) i++;
  const name = chars.slice(0, i).join('');
  if (name.endsWith('-') || name.endsWith('_')) return undefined;
  let label: string | undefined;
  if (chars[i] === '[') {
    const end = labelEnd(chars, i + 1);
    if (end === undefined) return undefined;
    label = chars.slice(i + 1, end).join('');
    i = end + 1;
  }
  const opening: DirectiveOpening = { name, ...(label !== undefined ? { label } : {}), attributes: [], quoted: new Set() };
  if (chars[i] === '{') {
    const end = readAttributes(chars, i + 1, opening);
    if (end === undefined) return undefined;
    i = end;
  }
  while (isSpaceOrTab(chars[i])) i++;
  return i === chars.length ? opening : undefined;
}

/** Index of the `]` closing a label whose text starts at `from`, or undefined when it does not close. */
function labelEnd(chars: string[], from: number): number | undefined {
  let balance = 0;
  let escapes = 0;
  for (let i = from; i < chars.length; i++) {
    if (escapes > MAX_LABEL_ESCAPES) return undefined;
    const c = chars[i]!;
    if (c === '[' && ++balance > MAX_LABEL_NESTING) return undefined;
    if (c === ']' && balance-- === 0) return i;
    if (c === '\\' && (chars[i + 1] === '[' || chars[i + 1] === ']' || chars[i + 1] === '\\')) {
      i++;
      escapes++;
    }
  }
  return undefined;
}

/** Reads `{…}` attributes from just after the `{` into `opening`; the index after the `}`, or undefined when they do not parse. */
function readAttributes(chars: string[], from: number, opening: DirectiveOpening): number | undefined {
  const list = opening.attributes;
  let i = from;
  const forbiddenInValue = (c: string | undefined) => c === undefined || c === '"' || c === "'" || c === '<' || c === '=' || c === '>' || c === '`';
  for (;;) {
    const c = chars[i];
    if (c === '#' || c === '.') {
      // A shortcut: `#id` or `.class`, up to the next shortcut, `}` or space.
      const start = ++i;
      if (chars[i] === undefined || '"#\'.<=>`}'.includes(chars[i]!) || isSpaceOrTab(chars[i])) return undefined;
      while (chars[i] !== '#' && chars[i] !== '.' && chars[i] !== '}' && !isSpaceOrTab(chars[i])) {
        if (forbiddenInValue(chars[i])) return undefined;
        i++;
      }
      list.push([c === '#' ? 'id' : 'class', decodeHTMLAttribute(chars.slice(start, i).join(''))]);
      continue;
    }
    if (isSpaceOrTab(c)) {
      i++;
      continue;
    }
    if (c === undefined || WHITESPACE.test(c) || (PUNCTUATION.test(c) && c !== '-' && c !== '_')) {
      return c === '}' ? i + 1 : undefined;
    }
    const start = i;
    while (i < chars.length && !WHITESPACE.test(chars[i]!) && (!PUNCTUATION.test(chars[i]!) || '-.:_'.includes(chars[i]!))) i++;
    const name = chars.slice(start, i).join('');
    while (isSpaceOrTab(chars[i])) i++;
    if (chars[i] !== '=') {
      list.push([name, '']);
      continue;
    }
    i++;
    while (isSpaceOrTab(chars[i])) i++;
    const v = chars[i];
    if (v === undefined || v === '<' || v === '=' || v === '>' || v === '`' || v === '}') return undefined;
    if (v === '"' || v === "'") {
      const close = chars.indexOf(v, i + 1);
      if (close === -1) return undefined;
      list.push([name, decodeHTMLAttribute(chars.slice(i + 1, close).join(''))]);
      opening.quoted.add(name);
      i = close + 1;
      if (chars[i] !== '}' && !isSpaceOrTab(chars[i])) return undefined;
      continue;
    }
    const valueStart = i;
    while (chars[i] !== '}' && !isSpaceOrTab(chars[i])) {
      if (forbiddenInValue(chars[i])) return undefined;
      i++;
    }
    list.push([name, decodeHTMLAttribute(chars.slice(valueStart, i).join(''))]);
  }
}

/** What a component token carries (`token.meta`). */
export interface ComponentTokenMeta {
  opening: DirectiveOpening;
  /** 1-based line of the body the call starts on. */
  line: number;
}

const COLON = 0x3a;

/**
 * The markdown-it block rule for component calls: `::Name…` (a leaf: tokens `component_leaf_open`,
 * an `inline` token holding its label, `component_leaf_close`) and `:::Name…` … `:::` (a container:
 * `component_open`, an `inline` token with `meta.label` when it has a `[label]`, its blocks,
 * `component_close`). Like remark-directive's: either may interrupt a paragraph; a container ends
 * at a line of at least as many colons (indented less than four spaces), at the end of what holds
 * it (a list item, a quote), or at the end of the page.
 */
function componentDirective(state: StateBlock, startLine: number, endLine: number, silent: boolean): boolean {
  const start = state.bMarks[startLine]! + state.tShift[startLine]!;
  const max = state.eMarks[startLine]!;
  if (state.sCount[startLine]! - state.blkIndent >= 4) return false;
  if (state.src.charCodeAt(start) !== COLON || state.src.charCodeAt(start + 1) !== COLON) return false;
  const after = state.skipChars(start, COLON);
  const colons = after - start;
  const opening = parseDirectiveOpening(state.src.slice(after, max));
  if (!opening) return false;
  if (silent) return true;
  const line = startLine + 1;
  if (colons === 2) {
    const open = state.push('component_leaf_open', 'div', 1);
    open.meta = { opening, line } satisfies ComponentTokenMeta;
    open.map = [startLine, startLine + 1];
    const label = state.push('inline', '', 0);
    label.content = opening.label ?? '';
    label.map = [startLine, startLine + 1];
    label.children = [];
    state.push('component_leaf_close', 'div', -1);
    state.line = startLine + 1;
    return true;
  }

  // The closing fence, scanned for as fenced code is: the first line of at least as many colons.
  let nextLine = startLine;
  let closed = false;
  for (;;) {
    nextLine++;
    if (nextLine >= endLine) break;
    const pos = state.bMarks[nextLine]! + state.tShift[nextLine]!;
    const lineMax = state.eMarks[nextLine]!;
    if (pos < lineMax && state.sCount[nextLine]! < state.blkIndent) break;
    if (state.src.charCodeAt(pos) !== COLON || state.sCount[nextLine]! - state.blkIndent >= 4) continue;
    const end = state.skipChars(pos, COLON);
    if (end - pos < colons || state.skipSpaces(end) < lineMax) continue;
    closed = true;
    break;
  }
  const open = state.push('component_open', 'div', 1);
  open.meta = { opening, line } satisfies ComponentTokenMeta;
  open.map = [startLine, nextLine];
  if (opening.label !== undefined) {
    const label = state.push('inline', '', 0);
    label.content = opening.label;
    label.map = [startLine, startLine + 1];
    label.meta = { label: true };
    label.children = [];
  }
  const parentType = state.parentType;
  const lineMax = state.lineMax;
  // 'reference' keeps the content's lazy lines and definitions inside the fences.
  state.parentType = 'reference';
  state.lineMax = nextLine;
  state.md.block.tokenize(state, startLine + 1, nextLine);
  state.parentType = parentType;
  state.lineMax = lineMax;
  state.push('component_close', 'div', -1);
  state.line = nextLine + (closed ? 1 : 0);
  return true;
}

/** The markdown-it plugin adding component calls (markdown-parser.ts). */
export function componentDirectives(md: MarkdownIt): void {
  md.block.ruler.before('fence', 'component_directive', componentDirective, { alt: ['paragraph', 'reference', 'blockquote', 'list'] });
}

// ---- 2. marking ------------------------------------------------------------------------------

interface PendingCall {
  component: string;
  props: Record<string, PropValue>;
  line: number;
}

/** The calls one render found, in marker order, and the nonce their markers carry. */
export interface ComponentCalls {
  nonce: string;
  calls: PendingCall[];
}

const NUMBER = /^-?(?:\d+(?:\.\d+)?|\.\d+)$/;

/** A prop's value as written: quoted → string; unquoted number → number; true/false or bare → boolean. */
export function propValue(raw: string, quoted: boolean): PropValue {
  if (quoted) return raw;
  if (raw === '' || raw === 'true') return true;
  if (raw === 'false') return false;
  if (NUMBER.test(raw)) return Number(raw);
  return raw;
}

/**
 * A paragraph line that starts like a component call with props or a label (`::Name{`, `::Name[`)
 * but did not parse as one (an unclosed quote or brace, words after it). Without the `{` or `[`
 * a line is prose (`::Warning:: read this`), and stays the text it always was.
 */
const BROKEN_CALL = /(?:^|\n)[ \t]*(:{2,}[A-Z][A-Za-z0-9_-]*[{[][^\n]{0,60})/;

/**
 * Refuses a paragraph (its Markdown source, from `line`) holding a line that starts like a
 * component call with props but did not parse as one.
 *
 * @throws ComponentCallError naming the line.
 */
export function checkParagraphForBrokenCall(source: string, line: number): void {
  const broken = BROKEN_CALL.exec(source);
  if (!broken) return;
  const offset = source.slice(0, broken.index + (broken[0].startsWith('\n') ? 1 : 0)).split('\n').length - 1;
  throw new ComponentCallError(line + offset, `"${broken[1]}" looks like a component call but is not one: write ::Name{prop="value"} (or :::Name{…} … :::) on a line of its own, with quoted strings, and close every quote and brace`);
}

/**
 * Records the call a component token makes and gives the marker attribute for its `<div>` (see
 * the module comment). Attributes merge as remark-directive merged them: classes join with a
 * space, any other name keeps its last value. A container's `[label]` text is its `label` prop
 * unless one is written.
 *
 * @throws ComponentCallError naming the line, for a name that is not PascalCase or a prop named like an Astro directive.
 */
export function componentCallMarker(meta: ComponentTokenMeta, labelText: string | undefined, found: ComponentCalls): Record<string, string> {
  const { opening, line } = meta;
  const name = opening.name;
  if (!COMPONENT_NAME.test(name)) throw new ComponentCallError(line, `"${name}" is not a component name: components are named in PascalCase (letters and digits, starting with A–Z), like their files in components/`);
  const merged = new Map<string, string>();
  for (const [key, value] of opening.attributes) {
    const previous = merged.get(key);
    merged.set(key, key === 'class' && previous ? `${previous} ${value}` : value);
  }
  const props: Record<string, PropValue> = {};
  for (const [key, raw] of merged) {
    // The directive syntax allows `:` in names, but Astro's runtime reads props such as
    // server:component-directive, client:load or class:list as instructions, not data.
    if (key.includes(':')) throw new ComponentCallError(line, `the prop "${key}" of "${name}" is named like an Astro directive (with ":"), which a page cannot set: name props with letters, digits, "-", "_" and "."`);
    props[key] = propValue(raw, opening.quoted.has(key));
  }
  if (labelText !== undefined && !('label' in props)) props.label = labelText;
  const marker = `${found.nonce}:${found.calls.length}`;
  found.calls.push({ component: name, props, line });
  return { [CALL_MARKER]: marker };
}

// ---- 3. segments -----------------------------------------------------------------------------

export interface HastNode {
  type: string;
  tagName?: string;
  properties?: Record<string, unknown>;
  children?: HastNode[];
}

/**
 * The sanitised tree as segments: plain HTML (exactly what rehype-stringify writes) when it calls
 * no component. Marker attributes are removed from every element first; only divs whose marker
 * carries this render's nonce are calls. An element holding a call is split around it (its open
 * tag, the segments inside, its close tag), so a call may sit in a list item or a blockquote.
 */
export function bodySegments(tree: HastNode, found: ComponentCalls): BodySegment[] {
  const calls = new Map<HastNode, PendingCall>();
  const holders = new Set<HastNode>();
  const prefix = `${found.nonce}:`;
  // One ancestor stack for the whole walk: copying it per node was quadratic in the nesting depth.
  const ancestors: HastNode[] = [];
  const take = (node: HastNode) => {
    const marker = node.properties?.[CALL_MARKER];
    if (marker !== undefined) {
      delete node.properties![CALL_MARKER];
      const id = node.tagName === 'div' && typeof marker === 'string' && marker.startsWith(prefix) ? Number(marker.slice(prefix.length)) : NaN;
      const call = found.calls[id];
      if (call) {
        calls.set(node, call);
        for (const a of ancestors) holders.add(a);
      }
    }
    if (!node.children?.length) return;
    ancestors.push(node);
    for (const child of node.children) take(child);
    ancestors.pop();
  };
  take(tree);
  if (calls.size === 0) {
    const html = toHtml(tree as Parameters<typeof toHtml>[0]);
    return html === '' ? [] : [{ html }];
  }

  const flatten = (nodes: HastNode[]): BodySegment[] => {
    const out: BodySegment[] = [];
    const html = (text: string) => {
      if (text === '') return;
      const last = out.at(-1);
      if (last && 'html' in last) last.html += text;
      else out.push({ html: text });
    };
    for (const node of nodes) {
      const call = calls.get(node);
      if (call) {
        const children = flatten(node.children ?? []);
        out.push({ component: call.component, props: call.props, ...(children.length > 0 ? { children } : {}), line: call.line });
      } else if (holders.has(node) && node.type === 'element') {
        const close = `</${node.tagName}>`;
        const shell = toHtml({ ...node, children: [] } as Parameters<typeof toHtml>[0]);
        html(shell.slice(0, shell.length - close.length));
        for (const segment of flatten(node.children ?? [])) {
          if ('html' in segment) html(segment.html);
          else out.push(segment);
        }
        html(close);
      } else {
        html(toHtml(node as Parameters<typeof toHtml>[0]));
      }
    }
    return out;
  };
  return flatten(tree.children ?? []);
}
