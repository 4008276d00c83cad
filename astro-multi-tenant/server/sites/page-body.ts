/**
 * A page body as the Markdown pipeline hands it over: sanitised HTML, or, when the page calls
 * site components (docs/site-format.md, `::Name{…}`), a list of HTML segments and component calls.
 *
 * The pipeline's answer stays one string (the render threads, the on-disk Markdown cache and the
 * refusal memory all carry strings): a body with component calls is this module's encoding,
 * `SEGMENTS_MARK` + JSON. Rendered HTML never contains U+0000 (CommonMark §2.3 and parse5 both
 * replace it with U+FFFD), so no page text can produce a string that decodes as component calls:
 * only the pipeline's own directive step can.
 */

/** A prop as written in the directive: `a="x"` → 'x', `a=3` → 3, `a=true` / a bare `a` → true. */
export type PropValue = string | number | boolean;

export type BodySegment =
  | { html: string }
  | {
      /** The component's PascalCase name (sites/<id>/components/<name>.astro). */
      component: string;
      props: Record<string, PropValue>;
      /** The default slot: a container's Markdown children, a leaf's `[label]`; absent when empty. */
      children?: BodySegment[];
      /** 1-based line of the directive in the page body, for messages. */
      line: number;
    };

export type ComponentCall = Extract<BodySegment, { component: string }>;

const SEGMENTS_MARK = '\u0000segments\n';

/** The pipeline's string for a body: plain HTML when it calls no component (today's output, unchanged). */
export function encodeBody(segments: readonly BodySegment[]): string {
  if (segments.every((s) => 'html' in s)) return segments.map((s) => (s as { html: string }).html).join('');
  return SEGMENTS_MARK + JSON.stringify(segments);
}

/** The segments of a pipeline string (one HTML segment for plain HTML). @throws SyntaxError on a corrupt encoding. */
export function decodeBody(rendered: string): BodySegment[] {
  if (!rendered.startsWith(SEGMENTS_MARK)) return rendered === '' ? [] : [{ html: rendered }];
  return JSON.parse(rendered.slice(SEGMENTS_MARK.length)) as BodySegment[];
}

/** Every call of a body in document order, nested calls after their container. */
export function componentCalls(segments: readonly BodySegment[]): ComponentCall[] {
  const calls: ComponentCall[] = [];
  const walk = (list: readonly BodySegment[]) => {
    for (const s of list) {
      if ('component' in s) {
        calls.push(s);
        if (s.children) walk(s.children);
      }
    }
  };
  walk(segments);
  return calls;
}

/** Every component name a body calls, nested calls included, sorted, each once. */
export function calledComponents(segments: readonly BodySegment[]): string[] {
  return [...new Set(componentCalls(segments).map((c) => c.component))].sort();
}

/** The HTML of a body without component calls; undefined when it has some. */
export function plainHtml(segments: readonly BodySegment[]): string | undefined {
  let html = '';
  for (const s of segments) {
    if (!('html' in s)) return undefined;
    html += s.html;
  }
  return html;
}
