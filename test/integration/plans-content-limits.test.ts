import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { copySites, get, removeDir, startServer, waitFor, type Response, type RunningServer } from '../helpers/server.ts';

/**
 * The operator's plans for this test: "few" allows 3 pages of at most 300 bytes each and 1,000
 * bytes under public/. crowded (5 small pages), bulky (one 400-byte page, 2,000 public bytes) and
 * roomy (within every limit) are on it; twin has bulky's and crowded's files on the default plan.
 */
const PLANS = {
  plans: { few: { maxPages: 3, maxPageBytes: 300, maxPublicBytes: 1000 } },
  sites: { crowded: 'few', bulky: 'few', roomy: 'few' },
};

const SITE_JSON = (name: string) => JSON.stringify({ name, description: '', domains: [], aliases: [], locale: 'en', layout: 'page', nav: [{ label: 'Home', href: '/' }] });
const page = (title: string, padding = 0) => `---\ntitle: ${title}\n---\n\n${title}.${' x'.repeat(padding)}\n`;

async function makeSite(sitesDir: string, id: string, pages: Record<string, string>, publicFiles: Record<string, number> = {}) {
  const dir = join(sitesDir, id);
  await mkdir(join(dir, 'pages'), { recursive: true });
  await mkdir(join(dir, 'public'), { recursive: true });
  await writeFile(join(dir, 'site.json'), SITE_JSON(id));
  for (const [file, text] of Object.entries(pages)) await writeFile(join(dir, 'pages', file), text);
  for (const [file, bytes] of Object.entries(publicFiles)) await writeFile(join(dir, 'public', file), Buffer.alloc(bytes, 0x61));
}

/** A 427-byte page whose frontmatter is not YAML. */
const broken = `---\ntitle: [unclosed\n---\n\n${'y'.repeat(400)}\n`;

/** The content issues logged with 503 answers so far. */
function loggedIssues(server: RunningServer): Array<{ file: string; field: string; reason: string }> {
  return server.logs.flatMap((line) => {
    try {
      return (JSON.parse(line) as { issues?: Array<{ file: string; field: string; reason: string }> }).issues ?? [];
    } catch {
      return [];
    }
  });
}

/** Waits (up to 2 s: the server's log reaches this process through a pipe, after its answer) for an issue to be logged. */
async function expectLogged(server: RunningServer, issue: { file: string; field: string; reason: string }) {
  const same = (i: { file: string; field: string; reason: string }) => i.file === issue.file && i.field === issue.field && i.reason === issue.reason;
  await waitFor(async () => loggedIssues(server).some(same), 2000).catch(() => undefined);
  expect(loggedIssues(server)).toContainEqual(issue);
}

/** A refusal by a plan limit: 503, never stored, and the log names the file, the field and the numbers. */
function expectRefused(res: Response) {
  expect(res.status).toBe(503);
  expect(res.headers['cache-control']).toBe('no-store');
  expect(res.headers['retry-after']).toMatch(/^\d+$/);
}

describe('size and count limits of a plan, enforced when serving', () => {
  let sitesDir: string;
  let plansFile: string;
  let server: RunningServer;
  const pagesOf = (n: number) => Object.fromEntries(['a', 'b', 'c', 'd', 'e'].slice(0, n).map((name) => [`${name}.md`, page(name.toUpperCase())]));

  beforeAll(async () => {
    sitesDir = await copySites();
    // Path order: a.md, b.md, c.md, d.md, index.md; "few" serves the first three.
    await makeSite(sitesDir, 'crowded', { ...pagesOf(4), 'index.md': page('Home') });
    // broken.md is over the size and its frontmatter is not YAML: refused unread, only the size is reported.
    await makeSite(sitesDir, 'bulky', { 'index.md': page('Home'), 'big.md': page('Big', 160), 'broken.md': broken }, { 'logo.png': 1200, 'notes.txt': 800, README: 10 });
    await makeSite(sitesDir, 'roomy', { 'index.md': page('Home'), 'a.md': page('A') }, { 'logo.png': 500, README: 10 });
    await makeSite(sitesDir, 'twin', { ...pagesOf(4), 'index.md': page('Home'), 'big.md': page('Big', 160) }, { 'logo.png': 1200, 'notes.txt': 800 });
    plansFile = join(sitesDir, '..', `plans-content-${process.pid}-${Date.now()}.json`);
    await writeFile(plansFile, JSON.stringify(PLANS));
    server = await startServer(sitesDir, { PLANS_FILE: plansFile, EDGE_CACHE_S: '0' });
  }, 60_000);

  afterAll(async () => {
    await server?.stop();
    await removeDir(sitesDir);
    await rm(plansFile, { force: true });
  });

  it('answers a page over its plan\'s size with 503 naming the file, its size and the limit, on the first request', async () => {
    const big = await get(server.port, 'bulky.localhost', '/big');
    expectRefused(big);
    expect(big.body).toContain('Page unavailable');
    expect(big.body).not.toContain('big.md');
    await expectLogged(server, { file: 'sites/bulky/pages/big.md', field: 'plan.maxPageBytes', reason: 'is 345 bytes, over the limit of 300 bytes (300 bytes) of plan "few"' });
    // Its other pages, and the same page on a plan that allows it, are served.
    expect((await get(server.port, 'bulky.localhost', '/')).status).toBe(200);
    expect((await get(server.port, 'twin.localhost', '/big')).status).toBe(200);
    // A revalidation of the refused page is refused too (the check comes before the ETag).
    expectRefused(await get(server.port, 'bulky.localhost', '/big', { 'If-None-Match': '*' }));
  });

  it('refuses a page over its plan\'s size before reading it: what is wrong inside is never parsed', async () => {
    expectRefused(await get(server.port, 'bulky.localhost', '/broken'));
    await expectLogged(server, { file: 'sites/bulky/pages/broken.md', field: 'plan.maxPageBytes', reason: `is ${Buffer.byteLength(broken)} bytes, over the limit of 300 bytes (300 bytes) of plan "few"` });
    const issues = loggedIssues(server).filter((i) => i.file === 'sites/bulky/pages/broken.md');
    expect(issues.filter((i) => i.field.startsWith('frontmatter'))).toEqual([]);
    // On a plan that allows its size, the same file is read, and its frontmatter refused.
    await writeFile(join(sitesDir, 'twin', 'pages', 'broken.md'), broken);
    expectRefused(await get(server.port, 'twin.localhost', '/broken'));
    await waitFor(async () => loggedIssues(server).some((i) => i.file === 'sites/twin/pages/broken.md'), 2000);
    expect(loggedIssues(server).filter((i) => i.file === 'sites/twin/pages/broken.md').map((i) => i.field)).toEqual(['frontmatter']);
  });

  it('serves the first pages of a site in path order up to its plan\'s count and answers the others 503', async () => {
    // The count comes from a background walk of the folder, started by the site's first page request.
    await get(server.port, 'crowded.localhost', '/a');
    await waitFor(async () => (await get(server.port, 'crowded.localhost', '/d')).status === 503, 5000);
    for (const path of ['/a', '/b', '/c']) expect((await get(server.port, 'crowded.localhost', path)).status, path).toBe(200);
    for (const path of ['/d', '/']) expectRefused(await get(server.port, 'crowded.localhost', path));
    await expectLogged(server, { file: 'sites/crowded/pages/index.md', field: 'plan.maxPages', reason: 'is not among the first 3 pages (in path order) that plan "few" allows; the site has 5 pages' });
    // The same five pages on the default plan are all served.
    await get(server.port, 'twin.localhost', '/a');
    await new Promise((r) => setTimeout(r, 300));
    for (const path of ['/a', '/b', '/c', '/d', '/']) expect((await get(server.port, 'twin.localhost', path)).status, `twin ${path}`).toBe(200);
    // A path with no page is still a 404, not a refusal.
    expect((await get(server.port, 'crowded.localhost', '/nothing-here')).status).toBe(404);
  });

  it('lists in the sitemap only the pages its plan\'s count serves, and every page on a roomier plan', async () => {
    await get(server.port, 'crowded.localhost', '/a');
    await waitFor(async () => (await get(server.port, 'crowded.localhost', '/d')).status === 503, 5000);
    // The sitemap of a site is rebuilt at most every 500 ms: wait until it reflects the walk.
    const locs = async (host: string) => [...(await get(server.port, host, '/sitemap.xml')).body.matchAll(/<loc>http:\/\/[^/]+([^<]*)<\/loc>/g)].map((m) => m[1]).sort();
    await waitFor(async () => (await locs('crowded.localhost')).length === 3, 3000);
    expect(await locs('crowded.localhost')).toEqual(['/a', '/b', '/c']);
    expect(await locs('twin.localhost')).toEqual(expect.arrayContaining(['/', '/a', '/b', '/c', '/d']));
  });

  it('answers public files 503 while the site\'s public/ is over its plan\'s total, and keeps its pages and 404s', async () => {
    await get(server.port, 'bulky.localhost', '/');
    await waitFor(async () => (await get(server.port, 'bulky.localhost', '/logo.png')).status === 503, 5000);
    for (const path of ['/logo.png', '/notes.txt', '/README']) expectRefused(await get(server.port, 'bulky.localhost', path));
    await expectLogged(server, { file: 'sites/bulky/public', field: 'plan.maxPublicBytes', reason: 'holds 2,010 bytes, over the limit of 1000 bytes (1,000 bytes) of plan "few"; its files are not served until it is back under' });
    expect((await get(server.port, 'bulky.localhost', '/')).status).toBe(200);
    expect((await get(server.port, 'bulky.localhost', '/missing.png')).status).toBe(404);
    // Within the plan (roomy) or on the default plan (twin), the files are served.
    await get(server.port, 'roomy.localhost', '/');
    await get(server.port, 'twin.localhost', '/');
    await new Promise((r) => setTimeout(r, 300));
    for (const [host, path] of [['roomy', '/logo.png'], ['roomy', '/README'], ['twin', '/logo.png'], ['twin', '/notes.txt']]) {
      const res = await get(server.port, `${host}.localhost`, path!);
      expect(res.status, `${host} ${path}`).toBe(200);
    }
    expect((await get(server.port, 'roomy.localhost', '/a')).status).toBe(200);
  });
});
