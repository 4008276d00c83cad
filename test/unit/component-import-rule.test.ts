import { describe, it, expect } from 'vitest';
import { decideImport, IMPORT_RULE } from '../../astro-multi-tenant/server/components/import-rule.ts';
import type { ComponentFile } from '../../astro-multi-tenant/server/components/component-file.ts';

const component: ComponentFile = { area: 'site', site: 'acme', path: 'components/Pricing.astro' };
const layout: ComponentFile = { area: 'site', site: 'acme', path: 'layouts/landing.astro' };
const shared: ComponentFile = { area: 'shared', path: 'layouts/SiteShell.astro' };

describe('which imports a site component may use', () => {
  it.each([
    [component, './Badge.astro', { area: 'site', site: 'acme', path: 'components/Badge.astro' }],
    [component, '../components/Badge.astro', { area: 'site', site: 'acme', path: 'components/Badge.astro' }],
    [layout, '../components/Badge.astro', { area: 'site', site: 'acme', path: 'components/Badge.astro' }],
    [component, '@shared/Hero.astro', { area: 'shared', path: 'Hero.astro' }],
    [layout, '@shared/layouts/SiteShell.astro', { area: 'shared', path: 'layouts/SiteShell.astro' }],
    [shared, '../Header.astro', { area: 'shared', path: 'Header.astro' }],
    [shared, './PageLayout.astro', { area: 'shared', path: 'layouts/PageLayout.astro' }],
  ])('from %o allows "%s", resolved inside its own area', (importer, specifier, target) => {
    expect(decideImport(importer, specifier)).toEqual({ ok: true, target });
  });

  it.each([
    ['node:fs', 'a Node.js built-in module'],
    ['fs', 'a Node.js built-in module'],
    ['child_process', 'a Node.js built-in module'],
    ['node:worker_threads', 'a Node.js built-in module'],
    ['astro:content', 'an absolute path, a URL or a virtual module'],
    ['lodash', 'a package'],
    ['@astrojs/node', 'a package'],
    ['../../../astro-multi-tenant/server/config.ts', "which leaves the site's folder"],
    ['../../other-site/components/Secret.astro', "which leaves the site's folder"],
    ['./../../../etc/passwd', "which leaves the site's folder"],
    ['../pages/index.md', 'which is not an .astro component'],
    ['../layouts/page.astro', "which is outside the site's components folder"],
    ['../site.json', 'which is not an .astro component'],
    ['./sub/Deep.astro', 'which is not directly in the components folder'],
    ['./badge.astro', 'whose name is not PascalCase'],
    ['./Badge.ts', 'which is not an .astro component'],
    ['./data.json', 'which is not an .astro component'],
    ['./Badge.astro?raw', 'with a query or fragment'],
    ['./Badge.astro#x', 'with a query or fragment'],
    ['./Bad%2e.astro', 'with characters a component path never has'],
    ['.\\Badge.astro', 'with characters a component path never has'],
    ['./Bad ge.astro', 'with characters a component path never has'],
    ['./Bad\u0000.astro', 'with characters a component path never has'],
    ['/etc/passwd', 'an absolute path, a URL or a virtual module'],
    ['file:///etc/passwd', 'an absolute path, a URL or a virtual module'],
    ['data:text/javascript,export default 1', 'an absolute path, a URL or a virtual module'],
    ['https://cdn.example/x.astro', 'an absolute path, a URL or a virtual module'],
    ['@shared/../astro-multi-tenant/server/config.ts', 'which leaves the shared components folder'],
    ['@shared/../../sites/other/components/X.astro', 'which leaves the shared components folder'],
    ['@shared/', 'which leaves the shared components folder'],
    ['', 'which is not a component path'],
  ])('refuses "%s" from a component: %s', (specifier, why) => {
    const decision = decideImport(component, specifier);
    expect(decision.ok).toBe(false);
    if (decision.ok) return;
    expect(decision.reason).toContain(why);
    expect(decision.reason).toContain(IMPORT_RULE);
  });

  it('never lets a shared component reach into a site, nor out of shared-components/', () => {
    for (const specifier of ['../../sites/acme/components/Pricing.astro', '../../../etc/x.astro', 'node:path']) {
      expect(decideImport(shared, specifier).ok, specifier).toBe(false);
    }
  });
});
