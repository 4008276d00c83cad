import { describe, expect, it } from 'vitest';
import { renderMarkdownHere } from '../../astro-multi-tenant/server/sites/markdown-pipeline.ts';
import { calledComponents, decodeBody, encodeBody, type BodySegment } from '../../astro-multi-tenant/server/sites/page-body.ts';
import { propValue } from '../../astro-multi-tenant/server/sites/markdown-directives.ts';

const segments = async (markdown: string): Promise<BodySegment[]> => decodeBody(await renderMarkdownHere(markdown));

describe('component directives in Markdown', () => {
  it('turns a leaf ::Name{…} into a component call between HTML segments', async () => {
    expect(await segments('# Plans\n\n::Pricing{plan="pro"}\n\nAfter.')).toEqual([
      { html: '<h1 id="plans">Plans</h1>\n' },
      { component: 'Pricing', props: { plan: 'pro' }, line: 3 },
      { html: '\n<p>After.</p>' },
    ]);
  });

  it('types props as written: quoted strings stay strings, bare numbers and booleans do not', async () => {
    const [call] = await segments('::Pricing{name="Pro" price=30 ratio=1.5 negative=-2 quotedNumber="3" single=\'x y\' on=true off=false featured word=monthly}');
    expect(call).toEqual({
      component: 'Pricing',
      props: { name: 'Pro', price: 30, ratio: 1.5, negative: -2, quotedNumber: '3', single: 'x y', on: true, off: false, featured: true, word: 'monthly' },
      line: 1,
    });
    expect(propValue('true', true)).toBe('true');
    expect(propValue('', false)).toBe(true);
  });

  it('refuses a prop named like an Astro directive (server:…, client:…, set:…, class:list), naming the line: props are data, never instructions to Astro', async () => {
    for (const prop of ['server:component-directive="defer"', 'client:load', 'set:html="<script>x</script>"', 'class:list="a"', 'transition:persist']) {
      await expect(renderMarkdownHere(`Text.\n\n::Card{name="x" ${prop}}`)).rejects.toThrow(/^line 3 of the body: the prop "[a-z]+:[a-z-]+" of "Card" is named like an Astro directive/);
    }
    await expect(renderMarkdownHere(':::Box{client:only="react"}\nin\n:::')).rejects.toThrow(/^line 1 of the body: the prop "client:only"/);
  });

  it('passes a container’s Markdown children as sanitised HTML and its [label] as the label prop', async () => {
    expect(await segments(':::Note[Heads up]{kind="warn"}\nSome *text* <b>bold</b> <script>alert(1)</script>\n:::\n')).toEqual([
      { component: 'Note', props: { kind: 'warn', label: 'Heads up' }, children: [{ html: '<p>Some <em>text</em> <b>bold</b> </p>' }], line: 1 },
    ]);
  });

  it('nests components: a leaf inside a container, a container inside a longer-fenced one', async () => {
    expect(await segments('::::Outer\n:::Inner{n=2}\ninner\n\n::Badge{text="new"}\n:::\n::::\n')).toEqual([
      {
        component: 'Outer',
        props: {},
        line: 1,
        children: [{ component: 'Inner', props: { n: 2 }, line: 2, children: [{ html: '<p>inner</p>' }, { component: 'Badge', props: { text: 'new' }, line: 5 }] }],
      },
    ]);
  });

  it('splits the HTML around a call inside a list item', async () => {
    expect(await segments('- item\n\n  ::Badge{x=1}\n')).toEqual([{ html: '<ul>\n<li>\n<p>item</p>\n' }, { component: 'Badge', props: { x: 1 }, line: 3 }, { html: '\n</li>\n</ul>' }]);
  });

  it('keeps today’s output for text directives, lower-case names and stray colons', async () => {
    const text = 'At 10:30 :x[label]{a=1} and a:b, ::lower\n\n::lower{a=1}\n\n:::note\nhi\n:::\n\n::: \n\n::\n';
    const html = await renderMarkdownHere(text);
    expect(html).toBe('<p>At 10:30 :x[label]{a=1} and a:b, ::lower</p>\n<p>::lower{a=1}</p>\n<p>:::note\nhi\n:::</p>\n<p>:::</p>\n<p>::</p>');
    expect(decodeBody(html)).toEqual([{ html }]);
  });

  it('lets no raw HTML forge a call: a marker attribute written by hand is dropped', async () => {
    const forged = '<div data-component-call="0:0">one</div>\n\n<div data-component-call="x">two</div>\n';
    expect(await renderMarkdownHere(forged)).toBe('<div>one</div>\n<div>two</div>');
    expect(await segments(`${forged}\n::Real\n`)).toEqual([{ html: '<div>one</div>\n<div>two</div>\n' }, { component: 'Real', props: {}, line: 5 }]);
  });

  it('refuses a call that does not parse, naming its line', async () => {
    await expect(renderMarkdownHere('Intro\n\n::Pricing{plan="pro}\n')).rejects.toThrow(/^line 3 of the body: "::Pricing\{plan="pro}" looks like a component call but is not one/);
    await expect(renderMarkdownHere('Intro\n::Pricing{plan="pro"} extra words\n')).rejects.toThrow(/^line 2 of the body: /);
    await expect(renderMarkdownHere(':::Box[unclosed label\ntext\n:::\n')).rejects.toThrow(/^line 1 of the body: /);
  });

  it('keeps a capitalised word between colons in prose as text: only a call with props is a mistake', async () => {
    expect(await renderMarkdownHere('::Warning:: read this first.\n\n::Note to self\n')).toBe('<p>::Warning:: read this first.</p>\n<p>::Note to self</p>');
  });

  it('refuses a directive name that is not PascalCase', async () => {
    await expect(renderMarkdownHere('::Price-table\n')).rejects.toThrow(/^line 1 of the body: "Price-table" is not a component name/);
  });

  it('encodes plain HTML as itself and calls with a mark no HTML can carry', () => {
    expect(encodeBody([{ html: '<p>a</p>' }])).toBe('<p>a</p>');
    const body: BodySegment[] = [{ html: '<p>a</p>' }, { component: 'B', props: { n: 1 }, children: [{ component: 'C', props: {}, line: 2 }], line: 1 }];
    const encoded = encodeBody(body);
    expect(encoded.startsWith('\u0000')).toBe(true);
    expect(decodeBody(encoded)).toEqual(body);
    expect(calledComponents(body)).toEqual(['B', 'C']);
  });
});
