import { randomBytes } from 'node:crypto';
import remarkDirective from 'remark-directive';
import { toHtml } from 'hast-util-to-html';
import type { BodySegment, PropValue } from './page-body.ts';

/*
 * Site component calls in Markdown (docs/site-format.md): `::Name{prop="value" other=3}` on a line
 * of its own (a leaf) and `:::Name{…}` … `:::` (a container, whose Markdown children are the
 * component's default slot), in remark-directive's syntax. Part of the Markdown pipeline
 * (markdown-pipeline.ts) and of its identity (markdown.ts renderPipelineId).
 *
 * Three steps, each a plugin of the one unified chain:
 * 1. syntax (remarkComponentDirectives): remark-directive's block directives, narrowed to names
 *    starting with A–Z. Text directives (`:x` in prose) and lower-case names are never parsed,
 *    so every page that calls no component renders exactly as before (the sample-page snapshots
 *    hold it), and a stray `:` in prose stays text.
 * 2. marking (remarkMarkComponentCalls): each call becomes a `<div>` carrying a marker attribute
 *    whose value holds a random nonce made for this render. The sanitiser keeps that attribute, so
 *    the call's children are sanitised like the rest of the page, but an owner's raw HTML cannot
 *    forge a call: it would have to guess the nonce, which never leaves the render.
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

type Code = number | null;
type State = (code: Code) => State | undefined;
interface Construct {
  tokenize: (this: unknown, effects: unknown, ok: State, nok: State) => State;
  [key: string]: unknown;
}
interface MicromarkExtension {
  flow?: Record<number, Construct | Construct[]>;
  text?: Record<number, Construct | Construct[]>;
}

const COLON = 58;
const isUpperAscii = (code: Code) => code !== null && code >= 65 && code <= 90;

/**
 * A block directive construct that only starts when the name after its colons begins with A–Z:
 * the codes are handed to the original tokenizer as they come, and the first one after the
 * colons is looked at before it is handed over. Refusing there is an ordinary failed attempt,
 * so the line is then parsed as it always was (a paragraph).
 */
function pascalCaseOnly(construct: Construct): Construct {
  return {
    ...construct,
    tokenize(effects, ok, nok) {
      const start = construct.tokenize.call(this, effects, ok, nok);
      const watch =
        (state: State): State =>
        (code) => {
          if (code === COLON) {
            const next = state(code);
            return next === undefined ? next : watch(next);
          }
          return isUpperAscii(code) ? state(code) : nok(code);
        };
      return watch(start);
    },
  };
}

interface FromMarkdownContext {
  stack: Array<{ type: string; data?: Record<string, unknown> }>;
  data: { directiveAttributes?: Array<[string, string]> };
}

/** Marks the attributes whose value was quoted (a quote marker closes each): they stay strings. */
function exitValueMarker(this: FromMarkdownContext) {
  const tail = this.data.directiveAttributes?.at(-1);
  if (!tail) return;
  for (let i = this.stack.length - 1; i >= 0; i--) {
    const node = this.stack[i]!;
    if (node.type === 'leafDirective' || node.type === 'containerDirective') {
      const data = (node.data ??= {});
      ((data.quotedAttributes ??= new Set<string>()) as Set<string>).add(tail[0]);
      return;
    }
  }
}

interface ProcessorData {
  micromarkExtensions?: MicromarkExtension[];
  fromMarkdownExtensions?: unknown[];
}

/**
 * remark-directive, with only block directives whose name starts with A–Z (see pascalCaseOnly),
 * and with quoted attribute values remembered so that `n=3` is a number and `n="3"` a string.
 */
export function remarkComponentDirectives(this: { data(): ProcessorData }): void {
  (remarkDirective as unknown as (this: unknown) => void).call(this);
  const data = this.data();
  const syntax = data.micromarkExtensions!.pop()!;
  const flow = syntax.flow?.[COLON];
  if (!Array.isArray(flow)) throw new Error('remark-directive changed: no block directive constructs on ":"');
  data.micromarkExtensions!.push({ flow: { [COLON]: flow.map(pascalCaseOnly) } });
  data.fromMarkdownExtensions!.push({ exit: { directiveLeafAttributeValueMarker: exitValueMarker, directiveContainerAttributeValueMarker: exitValueMarker } });
}

// ---- 2. marking ------------------------------------------------------------------------------

interface MdastNode {
  type: string;
  name?: string;
  value?: string;
  attributes?: Record<string, string | null | undefined> | null;
  children?: MdastNode[];
  position?: { start: { line: number } };
  data?: Record<string, unknown>;
}

interface PendingCall {
  component: string;
  props: Record<string, PropValue>;
  line: number;
}

/** What the marking step leaves for the segment step, on the vfile's data. */
export interface ComponentCallData {
  componentNonce?: string;
  componentCalls?: PendingCall[];
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

function textOf(node: MdastNode): string {
  if (typeof node.value === 'string') return node.value;
  return (node.children ?? []).map(textOf).join('');
}

/**
 * A paragraph line that starts like a component call with props or a label (`::Name{`, `::Name[`)
 * but did not parse as one (an unclosed quote or brace, words after it). Without the `{` or `[`
 * a line is prose (`::Warning:: read this`), and stays the text it always was.
 */
const BROKEN_CALL = /(?:^|\n)[ \t]*(:{2,}[A-Z][A-Za-z0-9_-]*[{[][^\n]{0,60})/;

/**
 * Turns each component directive into a marked `<div>` (see the module comment) and records the
 * call; a paragraph line that starts like a call with props (`::Name{…`) but did not parse is an error.
 *
 * @throws ComponentCallError naming the line.
 */
export function remarkMarkComponentCalls() {
  return (tree: MdastNode, file: { data: ComponentCallData }) => {
    const nonce = randomBytes(16).toString('hex');
    const calls: PendingCall[] = [];
    const visit = (node: MdastNode) => {
      const line = node.position?.start.line ?? 0;
      if (node.type === 'paragraph') {
        const text = textOf(node);
        const broken = BROKEN_CALL.exec(text);
        if (broken) {
          const offset = text.slice(0, broken.index + (broken[0].startsWith('\n') ? 1 : 0)).split('\n').length - 1;
          throw new ComponentCallError(line + offset, `"${broken[1]}" looks like a component call but is not one: write ::Name{prop="value"} (or :::Name{…} … :::) on a line of its own, with quoted strings, and close every quote and brace`);
        }
      }
      if (node.type === 'leafDirective' || node.type === 'containerDirective') {
        const name = node.name ?? '';
        if (!COMPONENT_NAME.test(name)) throw new ComponentCallError(line, `"${name}" is not a component name: components are named in PascalCase (letters and digits, starting with A–Z), like their files in components/`);
        const quoted = (node.data?.quotedAttributes as Set<string> | undefined) ?? new Set<string>();
        const props: Record<string, PropValue> = {};
        for (const [key, raw] of Object.entries(node.attributes ?? {})) {
          if (raw === null || raw === undefined) continue;
          // The directive syntax allows `:` in names, but Astro's runtime reads props such as
          // server:component-directive, client:load or class:list as instructions, not data.
          if (key.includes(':')) throw new ComponentCallError(line, `the prop "${key}" of "${name}" is named like an Astro directive (with ":"), which a page cannot set: name props with letters, digits, "-", "_" and "."`);
          props[key] = propValue(raw, quoted.has(key));
        }
        let children = node.children ?? [];
        if (node.type === 'containerDirective' && children[0]?.data?.directiveLabel) {
          if (!('label' in props)) props.label = textOf(children[0]);
          children = children.slice(1);
        }
        node.children = children;
        node.data = { hName: 'div', hProperties: { [CALL_MARKER]: `${nonce}:${calls.length}` } };
        calls.push({ component: name, props, line });
      }
      for (const child of node.children ?? []) visit(child);
    };
    visit(tree);
    file.data.componentNonce = nonce;
    file.data.componentCalls = calls;
  };
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
export function bodySegments(tree: HastNode, data: ComponentCallData): BodySegment[] {
  const calls = new Map<HastNode, PendingCall>();
  const holders = new Set<HastNode>();
  const prefix = data.componentNonce ? `${data.componentNonce}:` : undefined;
  const take = (node: HastNode, ancestors: HastNode[]) => {
    const marker = node.properties?.[CALL_MARKER];
    if (marker !== undefined) {
      delete node.properties![CALL_MARKER];
      const id = prefix && node.tagName === 'div' && typeof marker === 'string' && marker.startsWith(prefix) ? Number(marker.slice(prefix.length)) : NaN;
      const call = data.componentCalls?.[id];
      if (call) {
        calls.set(node, call);
        for (const a of ancestors) holders.add(a);
      }
    }
    for (const child of node.children ?? []) take(child, [...ancestors, node]);
  };
  take(tree, []);
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
