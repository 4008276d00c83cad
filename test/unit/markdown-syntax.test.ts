import { describe, expect, it } from 'vitest';
import { renderMarkdownHere } from '../../astro-multi-tenant/server/sites/markdown-pipeline.ts';
import { parseDirectiveOpening } from '../../astro-multi-tenant/server/sites/markdown-directives.ts';

/**
 * The Markdown a page may use (docs/site-format.md), rendered by markdown-it into the HTML the
 * earlier remark/micromark pipeline wrote: each expectation below is what that pipeline rendered
 * (checked side by side on the GFM spec's 700 examples when the parser changed; the few left-over
 * differences are listed in bench/README.md), so a page keeps its HTML whatever parses it.
 */
describe('GitHub-flavoured Markdown renders as GitHub writes it', () => {
  const cases: Array<[string, string, string]> = [
    ['strikes with one or two tildes, never three or mismatched runs', '~one~ ~~two~~ ~~~three~~~ ~mixed~~', '<p><del>one</del> <del>two</del> ~~~three~~~ ~mixed~~</p>'],
    [
      'links www. names, http(s) URLs and e-mail addresses, without trailing punctuation',
      'Visit www.example.com/a_b. Or (https://example.org/x). Mail hi@example.com!',
      '<p>Visit <a href="http://www.example.com/a_b">www.example.com/a_b</a>. Or (<a href="https://example.org/x">https://example.org/x</a>). Mail <a href="mailto:hi@example.com">hi@example.com</a>!</p>',
    ],
    ['links names under any real top-level domain', 'www.example.dev and me@shop.example.app', '<p><a href="http://www.example.dev">www.example.dev</a> and <a href="mailto:me@shop.example.app">me@shop.example.app</a></p>'],
    ['leaves bare domains, ftp: and protocol-relative URLs as text', 'Not links: example.com, ftp://example.com/x, //example.com', '<p>Not links: example.com, ftp://example.com/x, //example.com</p>'],
    ['reads a fence language unescaped', '```js\\+x title="a"\nlet a = 1 < 2;\n```', '<pre><code class="language-js+x">let a = 1 &#x3C; 2;\n</code></pre>'],
    [
      'turns [x] and [ ] list items into disabled checkboxes',
      '- [x] done\n- [ ] todo\n- [y] not a task',
      '<ul class="contains-task-list">\n<li class="task-list-item"><input type="checkbox" checked disabled> done</li>\n<li class="task-list-item"><input type="checkbox" disabled> todo</li>\n<li>[y] not a task</li>\n</ul>',
    ],
    [
      'leaves a marker that was escaped or written as entities as text, and keeps a hard break after one',
      '- \\[x] escaped\n- &#91;x] entity\n- [&#32;] x\n- [x]&#32;foo\n- [x]  \n  next line',
      '<ul class="contains-task-list">\n<li>[x] escaped</li>\n<li>[x] entity</li>\n<li>[ ] x</li>\n<li>[x] foo</li>\n<li class="task-list-item"><input type="checkbox" checked disabled> <br>\nnext line</li>\n</ul>',
    ],
    ['keeps paragraphs in a loose list', '1. a\n2. b\n\n3. c', '<ol>\n<li>\n<p>a</p>\n</li>\n<li>\n<p>b</p>\n</li>\n<li>\n<p>c</p>\n</li>\n</ol>'],
    ['starts an ordered list at its first number', '7. a\n8. b', '<ol start="7">\n<li>a</li>\n<li>b</li>\n</ol>'],
    [
      'numbers footnotes by first reference, matches labels regardless of case, and links back to every reference',
      'A[^n] b[^n] c[^Two].\n\n[^n]: One.\n[^two]: Two\n    lines.',
      '<p>A<sup><a href="#user-content-fn-n" id="user-content-fnref-n" data-footnote-ref aria-describedby="user-content-footnote-label">1</a></sup> b<sup><a href="#user-content-fn-n" id="user-content-fnref-n-2" data-footnote-ref aria-describedby="user-content-footnote-label">1</a></sup> c<sup><a href="#user-content-fn-two" id="user-content-fnref-two" data-footnote-ref aria-describedby="user-content-footnote-label">2</a></sup>.</p>\n<section data-footnotes class="footnotes"><h2 class="sr-only" id="user-content-footnote-label">Footnotes</h2>\n<ol>\n<li id="user-content-fn-n">\n<p>One. <a href="#user-content-fnref-n" data-footnote-backref="" aria-label="Back to reference 1" class="data-footnote-backref">↩</a> <a href="#user-content-fnref-n-2" data-footnote-backref="" aria-label="Back to reference 1-2" class="data-footnote-backref">↩<sup>2</sup></a></p>\n</li>\n<li id="user-content-fn-two">\n<p>Two\nlines. <a href="#user-content-fnref-two" data-footnote-backref="" aria-label="Back to reference 2" class="data-footnote-backref">↩</a></p>\n</li>\n</ol>\n</section>',
    ],
    ['leaves inline footnotes ^[…] as text (GFM has none)', 'a^[note] b', '<p>a^[note] b</p>'],
    ['keeps the page after a footnote definition nested in a list item and a quote', '- a\n\n  [^a]: x\n      > [^b]: y\n      > z\n\n      w\n- b\n- c', '<ul>\n<li>\n<p>a</p>\n</li>\n<li>\n<p>b</p>\n</li>\n<li>\n<p>c</p>\n</li>\n</ul>'],
    [
      'keeps the first definition of a footnote label, whatever its case',
      'A[^A].\n\n[^A]: first\n[^a]: second',
      '<p>A<sup><a href="#user-content-fn-a" id="user-content-fnref-a" data-footnote-ref aria-describedby="user-content-footnote-label">1</a></sup>.</p>\n<section data-footnotes class="footnotes"><h2 class="sr-only" id="user-content-footnote-label">Footnotes</h2>\n<ol>\n<li id="user-content-fn-a">\n<p>first <a href="#user-content-fnref-a" data-footnote-backref="" aria-label="Back to reference 1" class="data-footnote-backref">↩</a></p>\n</li>\n</ol>\n</section>',
    ],
    [
      'makes task items of markers followed by any content, on the line or the next, and never of a bare marker',
      '- [ ] <b>x</b>\n- [x] *y*\n- [ ]\n- [ ]  \n- [x]\n  next line\n- [ ] `c`\n- [X] done\n-  [ ] spaced',
      '<ul class="contains-task-list">\n<li class="task-list-item"><input type="checkbox" disabled> <b>x</b></li>\n<li class="task-list-item"><input type="checkbox" checked disabled> <em>y</em></li>\n<li>[ ]</li>\n<li>[ ]</li>\n<li class="task-list-item"><input type="checkbox" checked disabled> next line</li>\n<li class="task-list-item"><input type="checkbox" disabled> <code>c</code></li>\n<li class="task-list-item"><input type="checkbox" checked disabled> done</li>\n<li class="task-list-item"><input type="checkbox" disabled> spaced</li>\n</ul>',
    ],
    [
      'aligns table cells and fills or cuts rows to the header',
      '| l | c | r |\n|:--|:-:|--:|\n| 1 | 2 |\n| 1 | 2 | 3 | 4 |',
      '<table>\n<thead>\n<tr>\n<th align="left">l</th>\n<th align="center">c</th>\n<th align="right">r</th>\n</tr>\n</thead>\n<tbody>\n<tr>\n<td align="left">1</td>\n<td align="center">2</td>\n<td align="right"></td>\n</tr>\n<tr>\n<td align="left">1</td>\n<td align="center">2</td>\n<td align="right">3</td>\n</tr>\n</tbody>\n</table>',
    ],
    ['gives headings unique slug ids from their text', '# A *b* `c`\n\n## A b c\n\nSetext\n======', '<h1 id="a-b-c">A <em>b</em> <code>c</code></h1>\n<h2 id="a-b-c-1">A b c</h2>\n<h1 id="setext">Setext</h1>'],
    ['nests lists in quotes and keeps indented code', '> quote\n> - a\n> - b\n\n***\n\n    indented code\n', '<blockquote>\n<p>quote</p>\n<ul>\n<li>a</li>\n<li>b</li>\n</ul>\n</blockquote>\n<hr>\n<pre><code>indented code\n</code></pre>'],
    ['writes hard breaks, entities and escapes', 'Line  \nbreak\\\nend &amp; &copy; &#35; \\*not em\\*', '<p>Line<br>\nbreak<br>\nend &#x26; © # *not em*</p>'],
    ['resolves reference links and images with titles', '[ref] and ![img][ref]\n\n[ref]: /url "Title"', '<p><a href="/url" title="Title">ref</a> and <img src="/url" alt="img" title="Title"></p>'],
    ['encodes URLs as written and keeps autolink text', '<https://a.b/c?d=1> <me@example.com> [x](<a b> "t") [u](/päth?q=ä#frag) ![alt *em*](/i.png)', '<p><a href="https://a.b/c?d=1">https://a.b/c?d=1</a> <a href="mailto:me@example.com">me@example.com</a> <a href="a%20b" title="t">x</a> <a href="/p%C3%A4th?q=%C3%A4#frag">u</a> <img src="/i.png" alt="alt em"></p>'],
  ];
  for (const [promise, markdown, html] of cases) {
    it(promise, async () => {
      expect(await renderMarkdownHere(markdown)).toBe(html);
    });
  }
});

describe('a component call’s opening line is read with remark-directive’s grammar', () => {
  it('reads the name, the label and every kind of attribute', () => {
    const opening = parseDirectiveOpening('Card[Hello *you*]{#main .a .b class="c d" n=3 s=\'x y\' flag t="&amp;"}  ');
    expect(opening).toEqual({
      name: 'Card',
      label: 'Hello *you*',
      attributes: [['id', 'main'], ['class', 'a'], ['class', 'b'], ['class', 'c d'], ['n', '3'], ['s', 'x y'], ['flag', ''], ['t', '&']],
      quoted: new Set(['class', 's', 't']),
    });
  });

  it('reads names with digits, dashes and underscores inside, and balanced brackets in labels', () => {
    expect(parseDirectiveOpening('Price-table_2')?.name).toBe('Price-table_2');
    expect(parseDirectiveOpening('Box[a [b] \\] c]')?.label).toBe('a [b] \\] c');
    expect(parseDirectiveOpening('Box{}')?.attributes).toEqual([]);
  });

  for (const line of ['lower', 'Name-', 'Name_', 'Name:: text', 'Name words', 'Box[unclosed', 'Box{a="open}', 'Box{a=b c=}', 'Box{a=<b>}', 'Box{#}', 'Box{a="x"b}', 'Box{a=1} extra', 'Box]', `Box[${'['.repeat(33)}${']'.repeat(33)}]`]) {
    it(`is no call for "${line.slice(0, 30)}"`, () => {
      expect(parseDirectiveOpening(line)).toBeUndefined();
    });
  }
});
