import { describe, it, expect } from 'vitest';
import { renderMarkdown, splitFrontmatter } from '../../astro-multi-tenant/server/sites/markdown.ts';

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

  // Known bug: rehype-sanitize's default schema has tag-specific `className` rules (a, ul, ol, li,
  // h2, section, code...) that take precedence over the '*' entry added in markdown.ts, so their
  // classes are emptied to class="". Remove `.fails` once markdown.ts drops those tag rules.
  it.fails('keeps class attributes on links, lists, headings and sections too', async () => {
    const html = await renderMarkdown('<a class="btn" href="/x">a</a>\n\n<ul class="grid"><li class="p-2">x</li></ul>\n\n<h2 class="text-3xl">T</h2>');
    expect(html).toContain('class="btn"');
    expect(html).toContain('class="grid"');
    expect(html).toContain('class="p-2"');
    expect(html).toContain('class="text-3xl"');
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
});
