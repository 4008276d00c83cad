/** sitemap.xml for one site; `routes` are path segment lists, `origin` is scheme://primary-host. */
export function buildSitemap(origin: string, routes: readonly string[][]): string {
  const urls = routes
    .map((segments) => `  <url><loc>${escapeXml(origin + routePath(segments))}</loc></url>`)
    .join('\n');
  return `<?xml version="1.0" encoding="UTF-8"?>\n<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">\n${urls}\n</urlset>\n`;
}

export function routePath(segments: readonly string[]): string {
  return '/' + segments.map(encodeURIComponent).join('/');
}

function escapeXml(text: string): string {
  return text.replace(/[<>&'"]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', "'": '&apos;', '"': '&quot;' })[c]!);
}
