/** markdown-it-footnote ships no types: a markdown-it plugin (markdown-parser.ts). */
declare module 'markdown-it-footnote' {
  import type { MarkdownIt } from 'markdown-it';
  const footnote: (md: MarkdownIt) => void;
  export default footnote;
}
