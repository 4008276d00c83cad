import { describe, it, expect } from 'vitest';
import { MAX_FRONTMATTER_CHARS, renderMarkdown, splitFrontmatter } from '../../astro-multi-tenant/server/sites/markdown.ts';

describe('renderMarkdown: raw HTML is sanitised', () => {
  it('removes script elements and their content', async () => {
    const html = await renderMarkdown('Before\n\n<script>alert("owned")</script>\n\nAfter');
    expect(html).not.toMatch(/<script/i);
    expect(html).not.toContain('owned');
    expect(html).toContain('<p>Before</p>');
    expect(html).toContain('<p>After</p>');
  });

  it('removes scripts hidden inside SVG', async () => {
    const html = await renderMarkdown('<svg><script>alert(1)</script></svg>');
    expect(html).not.toMatch(/<script/i);
    expect(html).not.toContain('alert');
  });

  it('removes on* event handlers but keeps the element', async () => {
    const html = await renderMarkdown('<div onclick="steal()" onmouseover="steal()">hi</div>\n\n<img src="/a.png" onerror="steal()">');
    expect(html).not.toMatch(/\son\w+=/i);
    expect(html).not.toContain('steal');
    expect(html).toContain('<div>hi</div>');
    expect(html).toContain('<img src="/a.png">');
  });

  it('removes javascript: URLs from Markdown links and raw anchors, in any letter case', async () => {
    const html = await renderMarkdown('[md](javascript:alert(1)) <a href="JaVaScRiPt:alert(2)">raw</a> <a href="data:text/html,x">data</a>');
    expect(html).not.toMatch(/javascript:/i);
    expect(html).not.toContain('data:text/html');
    expect(html).toContain('<a>md</a>');
    expect(html).toContain('<a>raw</a>');
  });

  it('keeps ordinary links', async () => {
    const html = await renderMarkdown('[about](/about) <a href="https://example.com/">ext</a> [mail](mailto:hi@example.com)');
    expect(html).toContain('<a href="/about">about</a>');
    expect(html).toContain('<a href="https://example.com/">ext</a>');
    expect(html).toContain('<a href="mailto:hi@example.com">mail</a>');
  });

  it('removes iframes, forms, style elements and inline style attributes', async () => {
    const html = await renderMarkdown(
      '<iframe src="https://evil.example"></iframe>\n\n<form action="/steal"><input name="pw"></form>\n\n<style>body{display:none}</style>\n\n<p style="color:red">styled</p>',
    );
    expect(html).not.toMatch(/<iframe|<form|<style|style=/i);
    expect(html).toContain('<p>styled</p>');
  });

  it('keeps class attributes on ordinary elements so Tailwind utilities work', async () => {
    const html = await renderMarkdown('<div class="grid gap-4 md:grid-cols-2"><p class="text-lg font-bold">Hi</p><span class="text-red-600">!</span></div>');
    expect(html).toContain('<div class="grid gap-4 md:grid-cols-2">');
    expect(html).toContain('<p class="text-lg font-bold">Hi</p>');
    expect(html).toContain('<span class="text-red-600">!</span>');
  });

  it('keeps the language class GFM puts on fenced code', async () => {
    expect(await renderMarkdown('```ts\nconst a = 1;\n```')).toContain('<code class="language-ts">');
  });

  it('keeps class attributes on links, lists, headings, sections and code too', async () => {
    const html = await renderMarkdown(
      '<a class="btn" href="/x">a</a>\n\n<ul class="grid"><li class="p-2">x</li></ul>\n\n<ol class="list-decimal"><li>y</li></ol>\n\n<h2 class="text-3xl">T</h2>\n\n<section class="mt-8"><code class="font-mono">c</code></section>',
    );
    expect(html).toContain('<a class="btn" href="/x">');
    expect(html).toContain('<ul class="grid">');
    expect(html).toContain('<li class="p-2">');
    expect(html).toContain('<ol class="list-decimal">');
    expect(html).toContain('<h2 class="text-3xl" id="t">');
    expect(html).toContain('<section class="mt-8">');
    expect(html).toContain('<code class="font-mono">');
    expect(html).not.toContain('class=""');
  });

  it('renders the same page whether or not the source contains raw HTML (rehype-raw is skipped without any "<")', async () => {
    const plain = '# Title\n\nSome *text* with a [link](/x) and `code`.\n\n| a | b |\n| - | - |\n| 1 | 2 |\n';
    const withHtml = `${plain}\n<b>bold</b>\n`;
    const a = await renderMarkdown(plain);
    const b = await renderMarkdown(withHtml);
    expect(b.startsWith(a.trimEnd())).toBe(true);
    expect(b).toContain('<b>bold</b>');
  });

  it('keeps the classes GFM itself adds (task lists, footnotes)', async () => {
    const html = await renderMarkdown('- [x] done\n- [ ] todo\n\nNote[^1]\n\n[^1]: Text.');
    expect(html).toContain('<ul class="contains-task-list">');
    expect(html).toContain('<li class="task-list-item">');
    // data-footnotes is a boolean attribute: written bare without raw HTML, as ="" after rehype-raw.
    expect(html).toMatch(/<section data-footnotes(="")? class="footnotes">/);
    expect(html).toContain('class="sr-only"');
  });

  it.each([
    ['style', '<style>body{display:none}</style>', 'display:none'],
    ['textarea', '<textarea>typed-secret</textarea>', 'typed-secret'],
    ['title', '<title>doc-title</title>', 'doc-title'],
    ['iframe fallback', '<iframe src="https://x.example">frame-fallback</iframe>', 'frame-fallback'],
    ['style inside SVG', '<svg><style>.leak{fill:red}</style></svg>', '.leak'],
  ])('removes %s with its content, so no raw text leaks onto the page', async (_what, raw, leaked) => {
    const html = await renderMarkdown(`Before\n\n${raw}\n\nAfter`);
    expect(html).not.toContain(leaked);
    expect(html).toContain('<p>Before</p>');
    expect(html).toContain('<p>After</p>');
  });

  it('prefixes ids written in raw HTML so they cannot clobber page globals', async () => {
    const html = await renderMarkdown('<h2 id="location">Raw</h2>');
    expect(html).toContain('id="user-content-location"');
    expect(html).not.toContain('id="location"');
  });
});

describe('renderMarkdown: Markdown features', () => {
  it('gives headings slug ids, unique within the page', async () => {
    const html = await renderMarkdown('# Hello World\n\n## Getting Started\n\n## Hello World');
    expect(html).toContain('<h1 id="hello-world">Hello World</h1>');
    expect(html).toContain('<h2 id="getting-started">Getting Started</h2>');
    expect(html).toContain('<h2 id="hello-world-1">Hello World</h2>');
  });

  it('renders GitHub-flavoured tables and strikethrough', async () => {
    const html = await renderMarkdown('| a | b |\n|---|---|\n| 1 | 2 |\n\n~~gone~~');
    expect(html).toContain('<table>');
    expect(html).toContain('<td>1</td>');
    expect(html).toContain('<del>gone</del>');
  });

  it('gives footnote links and their targets the same single user-content- prefix', async () => {
    const html = await renderMarkdown('Claim[^1] and another[^note].\n\n[^1]: First source.\n[^note]: Second source.');
    expect(html).not.toContain('user-content-user-content-');
    const ids = new Set([...html.matchAll(/\sid="([^"]+)"/g)].map((m) => m[1]));
    const targets = [...html.matchAll(/href="#([^"]+)"/g)].map((m) => m[1]);
    expect(targets).toEqual(['user-content-fn-1', 'user-content-fn-note', 'user-content-fnref-1', 'user-content-fnref-note']);
    for (const target of targets) expect(ids).toContain(target);
    // The reference's aria-describedby must name the "Footnotes" heading's id too.
    expect(html).toContain('aria-describedby="user-content-footnote-label"');
    expect(ids).toContain('user-content-footnote-label');
  });

  it('escapes text that only looks like HTML inside code', async () => {
    expect(await renderMarkdown('`<script>`')).toContain('<code>&#x3C;script></code>');
  });
});

describe('splitFrontmatter', () => {
  it('separates YAML frontmatter from the Markdown body', () => {
    expect(splitFrontmatter('---\ntitle: Hi\ndraft: true\n---\n# Body\n')).toEqual({ data: { title: 'Hi', draft: true }, body: '# Body\n' });
  });

  it('accepts Windows line endings and a byte-order mark', () => {
    expect(splitFrontmatter('\ufeff---\r\ntitle: Hi\r\n---\r\nBody')).toEqual({ data: { title: 'Hi' }, body: 'Body' });
  });

  it('treats a document without frontmatter as all body', () => {
    expect(splitFrontmatter('# Just Markdown\n\n---\n\nmore')).toEqual({ data: {}, body: '# Just Markdown\n\n---\n\nmore' });
  });

  it('accepts a frontmatter block that ends the file', () => {
    expect(splitFrontmatter('---\ntitle: Hi\n---')).toEqual({ data: { title: 'Hi' }, body: '' });
  });

  it('treats an empty frontmatter block as no data', () => {
    expect(splitFrontmatter('---\n\n---\nBody').data).toEqual({});
  });

  it('parses YAML dates as dates', () => {
    const { data } = splitFrontmatter('---\ndate: 2026-01-31\n---\n');
    expect((data as { date: unknown }).date).toBeInstanceOf(Date);
  });

  it('leaves an impossible YAML date as text instead of rolling it over to another day', () => {
    // js-yaml on its own reads 2026-13-45 as 2027-02-14; kept as text, the schema can reject it.
    expect(splitFrontmatter('---\ndate: 2026-13-45\n---\n').data).toEqual({ date: '2026-13-45' });
    expect(splitFrontmatter('---\ndate: 2026-02-30 10:00:00\n---\n').data).toEqual({ date: '2026-02-30 10:00:00' });
  });

  it('still reads real YAML timestamps, one-digit months and times included, as dates', () => {
    const { data } = splitFrontmatter('---\na: 2024-02-29\nb: 2026-1-5 10:30:00\nc: 2026-01-31T23:30:00-05:00\n---\n');
    expect(data).toEqual({ a: new Date('2024-02-29T00:00:00Z'), b: new Date('2026-01-05T10:30:00Z'), c: new Date('2026-02-01T04:30:00Z') });
  });

  it('reports broken YAML with a one-line message and keeps the body', () => {
    const doc = splitFrontmatter('---\ntitle: [unclosed\n---\nBody');
    expect(doc.yamlError).toBeTypeOf('string');
    expect(doc.yamlError).not.toContain('\n');
    expect(doc.data).toEqual({});
    expect(doc.body).toBe('Body');
  });

  it('does not execute or construct objects from YAML tags', () => {
    const doc = splitFrontmatter('---\nx: !!js/function "function () { return 1 }"\n---\n');
    expect(doc.yamlError).toBeTypeOf('string');
    expect(doc.data).toEqual({});
  });

  // YAML is parsed on the event loop: its size is what bounds the time it takes.
  /** Shapes js-yaml is slowest on, each cut to at most `size` characters (at a line end). */
  const hostileBlocks = (size: number): Record<string, string> => {
    const lines = (make: (i: number) => string, head = '') => {
      let block = head;
      for (let i = 0; block.length + make(i).length + 1 <= size; i++) block += (block ? '\n' : '') + make(i);
      return block;
    };
    return {
      'many aliases': lines((i) => `k${i}: *a`, 'a: &a [x]'),
      'many keys': lines((i) => `k${i}: v`),
      'a long escaped string': 'title: "' + 'a\\"'.repeat(Math.floor((size - 10) / 3)) + '"',
      'deep flow nesting': '['.repeat(size),
    };
  };

  it('refuses a frontmatter block over 16 KiB without parsing it, naming its size and the limit', () => {
    for (const [shape, block] of Object.entries(hostileBlocks(64 * 1024))) {
      const doc = splitFrontmatter(`---\n${block}\n---\nBody`);
      expect(doc.yamlError, shape).toMatch(/^the frontmatter block is [\d,]+ characters, over the limit of 16 KiB \(16,384\)$/);
      expect(doc.body).toBe('Body');
    }
  });

  it('parses (or rejects) a hostile block just under the limit in bounded time', () => {
    for (const [shape, block] of Object.entries(hostileBlocks(MAX_FRONTMATTER_CHARS - 64))) {
      expect(block.length, shape).toBeLessThanOrEqual(MAX_FRONTMATTER_CHARS);
      const started = performance.now();
      splitFrontmatter(`---\n${block}\n---\nBody`);
      // ~50 ms at worst on a loaded 2-core VM; a block of the page limit's size took seconds.
      expect(performance.now() - started, shape).toBeLessThan(1_000);
    }
  });
});
