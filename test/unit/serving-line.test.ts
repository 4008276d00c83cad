import { describe, expect, it } from 'vitest';
import { httpOrigin, servingLine } from '../../astro-multi-tenant/server/cli/serving-line.ts';

const ids = (n: number) => Array.from({ length: n }, (_, i) => `site-${String(i + 1).padStart(2, '0')}`);
const line = (siteIds: string[], overrides: Partial<Parameters<typeof servingLine>[0]> = {}) =>
  servingLine({ siteIds, platformDomain: 'localhost', port: 4321, host: undefined, sitesDir: '/srv/sites', ...overrides });

describe('the line npm start prints once the cluster answers', () => {
  it('names the four sample sites by their platform subdomain, and the status page', () => {
    expect(line(['acme', 'bakery', 'blog', 'docs'])).toBe(
      'astro-multi-tenant: serving 4 sites on http://localhost:4321 — open http://acme.localhost:4321/, http://bakery.localhost:4321/, http://blog.localhost:4321/, http://docs.localhost:4321/ · status page http://localhost:4321/_platform/status',
    );
  });

  it('lists a few sites and counts the rest, for any number of sites', () => {
    const cases: Array<[number, string]> = [
      [1, 'serving 1 site on'],
      [3, 'serving 3 sites on'],
      [4, 'serving 4 sites on'],
      [5, 'serving 5 sites on'],
      [10_000, 'serving 10000 sites on'],
    ];
    for (const [count, head] of cases) {
      const text = line(ids(count));
      expect(text, String(count)).toContain(head);
      expect(text.match(/http:\/\/site-\d+\.localhost:4321\//g), String(count)).toHaveLength(Math.min(count, 4));
      if (count > 4) expect(text, String(count)).toContain(`http://site-04.localhost:4321/ and ${count - 4} more (npm run sites -- list) · status page`);
      else expect(text, String(count)).not.toContain('more');
      expect(text.includes('\n'), String(count)).toBe(false);
    }
    expect(line(ids(6), { limit: 2 })).toContain('open http://site-01.localhost:4321/, http://site-02.localhost:4321/ and 4 more');
  });

  it('says how to add a site when the folder holds none', () => {
    expect(line([])).toBe(
      'astro-multi-tenant: serving 0 sites on http://localhost:4321 — no site yet: add one with npm run sites -- new <id> (folder /srv/sites) · status page http://localhost:4321/_platform/status',
    );
  });

  it('uses the platform domain it is given for the site URLs', () => {
    expect(line(['acme'], { platformDomain: 'sites.example.com' })).toContain('open http://acme.sites.example.com:4321/ ·');
    expect(line(['acme'], { platformDomain: 'xn--bckerei-5wa.example' })).toContain('open http://acme.xn--bckerei-5wa.example:4321/ ·');
  });

  it('names the address it is bound to, or localhost when bound to every interface', () => {
    for (const host of [undefined, '0.0.0.0', '::', '[::]']) expect(line(['acme'], { host }), String(host)).toContain('on http://localhost:4321 —');
    expect(line(['acme'], { host: '127.0.0.1' })).toContain('on http://127.0.0.1:4321 — ');
    expect(line(['acme'], { host: '127.0.0.1' })).toContain('status page http://127.0.0.1:4321/_platform/status');
    expect(line(['acme'], { host: '::1' })).toContain('on http://[::1]:4321 — ');
    expect(line(['acme'], { host: '[::1]' })).toContain('on http://[::1]:4321 — ');
  });
});

describe('httpOrigin', () => {
  it('leaves out the default port 80 only, and brackets IPv6 literals', () => {
    expect(httpOrigin('localhost', 80)).toBe('http://localhost');
    expect(httpOrigin('localhost', 8080)).toBe('http://localhost:8080');
    expect(httpOrigin('localhost', 443)).toBe('http://localhost:443');
    expect(httpOrigin('acme.localhost', 1)).toBe('http://acme.localhost:1');
    expect(httpOrigin('::1', 80)).toBe('http://[::1]');
    expect(httpOrigin('[::1]', 4321)).toBe('http://[::1]:4321');
    expect(httpOrigin('10.0.0.5', 65535)).toBe('http://10.0.0.5:65535');
  });
});
