import type { MarkdownIt, StateInline } from 'markdown-it';

/*
 * GitHub's strikethrough (GFM spec, "Strikethrough (extension)", as remark-gfm reads it): text
 * between runs of one or two tildes, opener and closer of the same length, flanking as emphasis
 * does; a run of three or more is text. markdown-it's own rule knows only `~~` and splits longer
 * runs into pairs, so `~one~` stayed text and `~~~three~~~` struck; this rule replaces it, for
 * markdown-parser.ts.
 */

const TILDE = 0x7e;
/** Delimiter markers: markdown-it's balance_pairs only matches equal markers, so a `~` run can only close a `~` run. */
const SINGLE = 0x1_007e;
const DOUBLE = 0x2_007e;

function tokenize(state: StateInline, silent: boolean): boolean {
  if (silent || state.src.charCodeAt(state.pos) !== TILDE) return false;
  const scanned = state.scanDelims(state.pos, true);
  const token = state.push('text', '', 0);
  token.content = '~'.repeat(scanned.length);
  if (scanned.length <= 2) {
    state.delimiters.push({ marker: scanned.length === 1 ? SINGLE : DOUBLE, length: 0, token: state.tokens.length - 1, end: -1, open: scanned.can_open, close: scanned.can_close });
  }
  state.pos += scanned.length;
  return true;
}

function strike(state: StateInline, delimiters: StateInline['delimiters']): void {
  for (const start of delimiters) {
    if ((start.marker !== SINGLE && start.marker !== DOUBLE) || start.end === -1) continue;
    const markup = start.marker === SINGLE ? '~' : '~~';
    const open = state.tokens[start.token]!;
    Object.assign(open, { type: 's_open', tag: 's', nesting: 1, markup, content: '' });
    const close = state.tokens[delimiters[start.end]!.token]!;
    Object.assign(close, { type: 's_close', tag: 's', nesting: -1, markup, content: '' });
  }
}

function postProcess(state: StateInline): boolean {
  strike(state, state.delimiters);
  for (const meta of state.tokens_meta) if (meta?.delimiters) strike(state, meta.delimiters);
  return false;
}

/** The markdown-it plugin: GFM strikethrough in place of markdown-it's `~~`-only rule. */
export function gfmStrikethrough(md: MarkdownIt): void {
  md.inline.ruler.at('strikethrough', tokenize);
  md.inline.ruler2.at('strikethrough', postProcess);
}
