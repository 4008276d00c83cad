import type { SiteConfig } from './schema.ts';

/** robots.txt for one site, from its `robots` settings; always points at that site's own sitemap. */
export function buildRobots(origin: string, robots: SiteConfig['robots']): string {
  const lines = ['User-agent: *'];
  if (!robots.index) lines.push('Disallow: /');
  else {
    for (const path of robots.disallow) lines.push(`Disallow: ${path}`);
    if (robots.disallow.length === 0) lines.push('Allow: /');
  }
  lines.push('', `Sitemap: ${origin}/sitemap.xml`, '');
  return lines.join('\n');
}
