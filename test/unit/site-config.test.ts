import { describe, it, expect } from 'vitest';
import { readFileSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseSiteConfig } from '../../astro-multi-tenant/server/sites/loader.ts';
import { frontmatterSchema, isCalendarDate, siteConfigSchema, toContentIssues } from '../../astro-multi-tenant/server/sites/schema.ts';
import { ContentError, type ContentIssue } from '../../astro-multi-tenant/server/errors.ts';

const SITES_DIR = resolve(import.meta.dirname, '../../sites');
const FILE = 'sites/example/site.json';

function valid(config: Record<string, unknown>) {
  const result = parseSiteConfig(JSON.stringify(config), FILE);
  if (!result.ok) throw new Error(`expected a valid config, got:\n${result.error.message}`);
  return result.config;
}

function issues(config: unknown): ContentIssue[] {
  const result = parseSiteConfig(typeof config === 'string' ? config : JSON.stringify(config), FILE);
  if (result.ok) throw new Error('expected the config to be rejected');
  expect(result.error).toBeInstanceOf(ContentError);
  expect(result.error.code).toBe('SITE_CONFIG_INVALID');
  for (const issue of result.error.issues) expect(issue.file).toBe(FILE);
  return result.error.issues;
}

function issueFor(list: ContentIssue[], field: string): ContentIssue {
  const found = list.find((i) => i.field === field);
  if (!found) throw new Error(`no issue for field "${field}" in ${JSON.stringify(list)}`);
  return found;
}

describe('parseSiteConfig: the sample sites', () => {
  it('accepts sites/acme/site.json exactly as shipped', () => {
    const config = valid(JSON.parse(readFileSync(join(SITES_DIR, 'acme/site.json'), 'utf8')));
    expect(config.name).toBe('Acme Tools');
    expect(config.domains).toEqual(['acme.example']);
    expect(config.aliases).toEqual(['www.acme.example', 'acme-tools.example']);
    expect(config.layout).toBe('landing');
    expect(config.theme.primary).toBe('#b91c1c');
  });

  it('accepts every sample site folder', () => {
    const ids = readdirSync(SITES_DIR, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name);
    expect(ids.length).toBeGreaterThan(0);
    for (const id of ids) {
      const result = parseSiteConfig(readFileSync(join(SITES_DIR, id, 'site.json'), 'utf8'), `sites/${id}/site.json`);
      expect(result.ok ? 'ok' : result.error.message).toBe('ok');
    }
  });
});

describe('parseSiteConfig: defaults and normalisation', () => {
  it('fills in every optional setting for a config that only has a name', () => {
    expect(valid({ name: 'Minimal' })).toEqual({
      name: 'Minimal',
      description: '',
      domains: [],
      aliases: [],
      locale: 'en',
      layout: 'page',
      theme: { primary: '#1d4ed8', accent: '#f59e0b', background: '#ffffff', text: '#111827', font: 'sans', radius: '0.5rem' },
      nav: [],
      footer: '',
      robots: { index: true, disallow: [] },
    });
  });

  it('accepts a site with no custom domains (reachable on its platform subdomain only)', () => {
    expect(valid({ name: 'Wildcard only', domains: [] }).domains).toEqual([]);
  });

  it('stores domains and aliases in the same normalised form the host index uses', () => {
    const config = valid({ name: 'Bakery', domains: ['Sweet-Crumbs.Example.', 'bäckerei.example'], aliases: ['WWW.sweet-crumbs.example'] });
    expect(config.domains).toEqual(['sweet-crumbs.example', 'xn--bckerei-5wa.example']);
    expect(config.aliases).toEqual(['www.sweet-crumbs.example']);
  });

  it('fills in theme defaults for the theme keys a site leaves out', () => {
    const config = valid({ name: 'x', theme: { primary: 'rgb(30 64 175)', font: 'serif' } });
    expect(config.theme).toEqual({ primary: 'rgb(30 64 175)', accent: '#f59e0b', background: '#ffffff', text: '#111827', font: 'serif', radius: '0.5rem' });
  });

  it('trims the site name', () => {
    expect(valid({ name: '  Acme  ' }).name).toBe('Acme');
  });

  it('allows a $schema pointer for editor support', () => {
    expect(valid({ $schema: './site.schema.json', name: 'x' }).$schema).toBe('./site.schema.json');
  });
});

describe('parseSiteConfig: problems are reported with file, field and reason', () => {
  it('reports a file that is not JSON, without a field', () => {
    const [issue, ...rest] = issues('{ "name": "x", }');
    expect(rest).toEqual([]);
    expect(issue!.field).toBe('');
    expect(issue!.reason).toMatch(/^not valid JSON: /);
  });

  it('reports a missing name', () => {
    expect(issueFor(issues({ domains: ['a.example'] }), 'name').reason).toMatch(/expected string/);
  });

  it('reports a blank name as empty', () => {
    expect(issueFor(issues({ name: '   ' }), 'name').reason).toBe('must not be empty');
  });

  it('reports an unknown top-level field by name, so a typo is not silently ignored', () => {
    const issue = issueFor(issues({ name: 'x', domian: ['a.example'] }), '');
    expect(issue.reason).toBe('unknown field(s) "domian"');
  });

  it('reports an unknown field inside the theme against the theme', () => {
    expect(issueFor(issues({ name: 'x', theme: { primray: '#fff' } }), 'theme').reason).toBe('unknown field(s) "primray"');
  });

  it.each(['red;}body{display:none', 'url(https://evil.example/x.png)', 'expression(alert(1))', '#12', '', 'rgb(1,2,3);x'])(
    'rejects theme colour %j that could break out of a CSS declaration',
    (colour) => {
      expect(issueFor(issues({ name: 'x', theme: { primary: colour } }), 'theme.primary').reason).toMatch(/CSS color/);
    },
  );

  it.each([
    '#1e40af', '#fff', '#1e40af80', '#FFFA', 'rgb(30 64 175)', 'rgb(30, 64, 175)', 'rgba(30, 64, 175, 0.5)', 'hsl(210 50% 40% / 0.5)',
    'hsl(210deg 50% 40%)', 'oklch(0.7 0.1 200)', 'oklch(70% 0.1 none)', 'oklab(0.5 -0.1 .1)', 'rebeccapurple', 'RebeccaPurple', 'navy', 'transparent',
  ])('accepts theme colour %j', (colour) => {
    expect(valid({ name: 'x', theme: { accent: colour } }).theme.accent).toBe(colour);
  });

  it.each(['bleu', 'grean', 'primary', 'inherit'])('rejects %j, a word that is not a CSS colour name, saying so', (colour) => {
    expect(issueFor(issues({ name: 'x', theme: { text: colour } }), 'theme.text').reason).toBe(
      `"${colour}" is not a CSS color name; use a name such as navy, or a CSS color such as #1e40af or rgb(30 64 175)`,
    );
  });

  it.each(['#12345', '#1234567', 'rgb(abc)', 'rgb(1 2)', 'rgb(1 2 3 4)', 'hsl(1 2 3 / 4 / 5)', 'rgb(1, 2 3)', 'hwb(1 2% 3%)', 'rgb(var(--x))'])(
    'rejects malformed theme colour %j',
    (colour) => {
      expect(issueFor(issues({ name: 'x', theme: { background: colour } }), 'theme.background').reason).toBe(
        'must be a CSS color such as #1e40af, rgb(30 64 175) or a color name',
      );
    },
  );

  it('rejects a radius that is not a plain CSS length', () => {
    expect(issueFor(issues({ name: 'x', theme: { radius: 'calc(1px + 1px)' } }), 'theme.radius').reason).toMatch(/CSS length/);
  });

  it('rejects a font outside the supported families', () => {
    expect(issueFor(issues({ name: 'x', theme: { font: 'comic' } }), 'theme.font')).toBeDefined();
  });

  it('points at the exact domain that is not a host name', () => {
    const issue = issueFor(issues({ name: 'x', domains: ['ok.example', 'not a host'] }), 'domains.1');
    expect(issue.reason).toMatch(/"not a host" is not a valid host name/);
  });

  it('rejects a domain or alias that includes a port', () => {
    expect(issueFor(issues({ name: 'x', domains: ['a.example:8080'] }), 'domains.0').reason).toMatch(/must not include a port/);
    expect(issueFor(issues({ name: 'x', aliases: ['www.a.example:80'] }), 'aliases.0').reason).toMatch(/must not include a port/);
  });

  it('rejects a host listed in both domains and aliases, pointing at the alias', () => {
    const list = issues({ name: 'x', domains: ['x.example', 'www.x.example'], aliases: ['www.x.example'] });
    expect(list).toEqual([{ file: FILE, field: 'aliases.0', reason: '"www.x.example" is also listed in domains' }]);
  });

  it('rejects a host listed twice in the same list, pointing at the repeat', () => {
    expect(issues({ name: 'x', domains: ['a.example', 'b.example', 'a.example'] })).toEqual([
      { file: FILE, field: 'domains.2', reason: '"a.example" is listed more than once in domains' },
    ]);
    expect(issues({ name: 'x', aliases: ['w.example', 'w.example'] })).toEqual([
      { file: FILE, field: 'aliases.1', reason: '"w.example" is listed more than once in aliases' },
    ]);
  });

  it('compares hosts in their normalised form when looking for repeats', () => {
    const list = issues({ name: 'x', domains: ['bäckerei.example'], aliases: ['XN--BCKEREI-5WA.example.'] });
    expect(list).toEqual([{ file: FILE, field: 'aliases.0', reason: '"xn--bckerei-5wa.example" is also listed in domains' }]);
  });

  it('reports repeated hosts together with the config\'s other problems', () => {
    const fields = issues({ name: '', domains: ['a.example'], aliases: ['a.example'] }).map((i) => i.field);
    expect(fields.sort()).toEqual(['aliases.0', 'name']);
  });

  it('rejects domains given as a string instead of a list', () => {
    expect(issueFor(issues({ name: 'x', domains: 'a.example' }), 'domains')).toBeDefined();
  });

  it('rejects a layout that does not exist', () => {
    expect(issueFor(issues({ name: 'x', layout: 'fancy' }), 'layout')).toBeDefined();
  });

  it('rejects a locale that is not a BCP 47 tag', () => {
    expect(issueFor(issues({ name: 'x', locale: 'English' }), 'locale').reason).toMatch(/BCP 47/);
  });

  it.each(['en-US-US', 'fr-FR-FR', 'en-Latn-Latn', 'de-DE-1901-1901', 'en-aa-bb'])('rejects %j, shaped like a tag but one dates cannot be written in (it would break every dated page)', (locale) => {
    expect(() => new Date(0).toLocaleDateString(locale)).toThrow(RangeError);
    expect(issueFor(issues({ name: 'x', locale }), 'locale').reason).toMatch(/not a language tag dates can be written in/);
  });

  it.each(['en', 'pt-BR', 'zh-Hant-TW', 'sr-Latn-RS', 'en-GB-oxendict', 'xx-XX'])('accepts %j, which the article layout can write dates in', (locale) => {
    expect(valid({ name: 'x', locale }).locale).toBe(locale);
    expect(() => new Date(0).toLocaleDateString(locale, { year: 'numeric', month: 'long', day: 'numeric', timeZone: 'UTC' })).not.toThrow();
  });

  it.each(['javascript:alert(1)', '//evil.example', 'about', 'data:text/html,x'])('rejects nav link %j', (href) => {
    expect(issueFor(issues({ name: 'x', nav: [{ label: 'Home', href: '/' }, { label: 'Bad', href }] }), 'nav.1.href')).toBeDefined();
  });

  it.each(['/', '/about', '#top', 'https://example.com/', 'mailto:hi@example.com'])('accepts nav link %j', (href) => {
    expect(valid({ name: 'x', nav: [{ label: 'Link', href }] }).nav[0]!.href).toBe(href);
  });

  it('rejects a robots rule that is not a path', () => {
    expect(issueFor(issues({ name: 'x', robots: { disallow: ['private'] } }), 'robots.disallow.0').reason).toBe('must start with "/"');
  });

  it('reports every problem at once, and the error message lists them as file: field: reason', () => {
    const result = parseSiteConfig(JSON.stringify({ domains: ['bad host'], theme: { primary: 'red;' } }), FILE);
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.error.issues.map((i) => i.field).sort()).toEqual(['domains.0', 'name', 'theme.primary']);
    expect(result.error.message.split('\n')).toHaveLength(3);
    expect(result.error.message).toContain(`${FILE}: theme.primary: must be a CSS color`);
  });
});

describe('frontmatterSchema', () => {
  it('accepts a minimal page and fills in defaults', () => {
    expect(frontmatterSchema.parse({ title: 'Hello' })).toEqual({ title: 'Hello', description: '', draft: false, access: 'public' });
  });

  it('writes a YAML date (parsed as a Date) as YYYY-MM-DD', () => {
    expect(frontmatterSchema.parse({ title: 'x', date: new Date('2026-01-31T00:00:00Z') }).date).toBe('2026-01-31');
  });

  it('keeps only the date part of a date string', () => {
    expect(frontmatterSchema.parse({ title: 'x', date: '2026-01-31T10:00:00Z' }).date).toBe('2026-01-31');
  });

  it('rejects a date that is not written as a date', () => {
    const result = frontmatterSchema.safeParse({ title: 'x', date: 'last Tuesday' });
    expect(result.success).toBe(false);
    if (result.success) return;
    expect(toContentIssues('p.md', result.error).map((i) => i.field)).toContain('date');
  });

  it.each(['2026-13-45', '2026-02-30', '2026-02-29', '2026-00-10', '2026-04-31T10:00:00Z'])('rejects %j, a date that does not exist', (date) => {
    const result = frontmatterSchema.safeParse({ title: 'x', date });
    expect(result.success).toBe(false);
    if (result.success) return;
    expect(toContentIssues('p.md', result.error)).toEqual([
      { file: 'p.md', field: 'date', reason: `${date.slice(0, 10)} is not a real date (must be a date such as 2026-01-31)` },
    ]);
  });

  it('accepts a leap day in a leap year', () => {
    expect(frontmatterSchema.parse({ title: 'x', date: '2024-02-29' }).date).toBe('2024-02-29');
  });

  it('requires a non-empty title', () => {
    const result = frontmatterSchema.safeParse({ title: '  ' });
    expect(result.success).toBe(false);
    if (result.success) return;
    expect(toContentIssues('p.md', result.error)).toEqual([{ file: 'p.md', field: 'title', reason: 'must not be empty' }]);
  });

  it('reports unknown frontmatter keys by name', () => {
    const result = frontmatterSchema.safeParse({ title: 'x', tilte: 'y' });
    expect(result.success).toBe(false);
    if (result.success) return;
    expect(toContentIssues('p.md', result.error)).toEqual([{ file: 'p.md', field: '', reason: 'unknown field(s) "tilte"' }]);
  });

  it('rejects a javascript: link in a hero call to action', () => {
    const result = frontmatterSchema.safeParse({ title: 'x', hero: { title: 'Hi', cta: { label: 'Go', href: 'javascript:alert(1)' } } });
    expect(result.success).toBe(false);
    if (result.success) return;
    expect(toContentIssues('p.md', result.error).map((i) => i.field)).toEqual(['hero.cta.href']);
  });

  it('accepts hero and cards with their defaults', () => {
    const page = frontmatterSchema.parse({ title: 'x', hero: { title: 'Hi' }, cards: [{ title: 'A', href: '/a' }] });
    expect(page.hero).toEqual({ title: 'Hi', subtitle: '' });
    expect(page.cards).toEqual([{ title: 'A', text: '', href: '/a' }]);
  });
});

describe('siteConfigSchema', () => {
  it('is the schema parseSiteConfig applies', () => {
    expect(siteConfigSchema.safeParse({ name: 'x' }).success).toBe(true);
    expect(siteConfigSchema.safeParse({}).success).toBe(false);
  });
});

describe('isCalendarDate', () => {
  it.each(['2026-01-31', '2024-02-29', '2000-02-29', '1999-12-31'])('accepts %j', (date) => {
    expect(isCalendarDate(date)).toBe(true);
  });

  it.each(['2026-13-45', '2026-02-29', '1900-02-29', '2026-06-31', '2026-1-5', '2026-01-31T00:00:00Z', ''])('rejects %j', (date) => {
    expect(isCalendarDate(date)).toBe(false);
  });
});

describe('site.json host rules: names no site may claim (tenant isolation, rule 1)', () => {
  // PLATFORM_DOMAIN is unset in the test process: the platform domain is `localhost`, as for the server.
  const refused: Array<[string, RegExp]> = [
    ['acme.localhost', /under the platform domain localhost/],
    ['www.docs.localhost', /under the platform domain localhost/],
    ['LOCALHOST.', /is the platform domain/],
    ['127.0.0.1', /IP address/],
    ['10.1.2.3', /IP address/],
    ['127.1', /IP address/],
    ['2130706433', /IP address/],
    ['0x7f.0.0.1', /IP address/],
    ['[::1]', /IP address/],
    ['[2001:db8::1]', /IP address/],
  ];

  it.each(refused)('refuses %s in domains and in aliases, at the exact entry', (host, reason) => {
    expect(issueFor(issues({ name: 'x', domains: ['ok.example', host] }), 'domains.1').reason).toMatch(reason);
    expect(issueFor(issues({ name: 'x', domains: ['ok.example'], aliases: [host] }), 'aliases.0').reason).toMatch(reason);
  });

  it('refuses loopback names under any platform domain (RFC 6761), and the platform domain it is given', async () => {
    const { siteConfigSchemaFor } = await import('../../astro-multi-tenant/server/sites/schema.ts');
    const schema = siteConfigSchemaFor(() => 'sites.example');
    const reasons = (domains: string[]) => (schema.safeParse({ name: 'x', domains }).error?.issues ?? []).map((i) => `${i.path.join('.')}: ${i.message}`);
    expect(reasons(['localhost', 'app.localhost'])).toEqual([expect.stringMatching(/^domains\.0: .*loopback/), expect.stringMatching(/^domains\.1: .*loopback/)]);
    expect(reasons(['sites.example', 'acme.sites.example'])).toEqual([expect.stringMatching(/^domains\.0: .*is the platform domain/), expect.stringMatching(/^domains\.1: .*under the platform domain sites\.example/)]);
    // Names that merely end with the same text are someone's own domain.
    expect(reasons(['mysites.example', 'acme.localhost-shop.example', 'v6.example', 'x1.example'])).toEqual([]);
  });

  it('accepts custom domains that only look like numbers inside (a number is refused only as the last label)', () => {
    expect(valid({ name: 'x', domains: ['1.example', '123abc.example', 'a.0x1g'] }).domains).toEqual(['1.example', '123abc.example', 'a.0x1g']);
  });
});
