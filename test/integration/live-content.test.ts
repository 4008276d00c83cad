import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cp, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { copySites, get, removeDir, startServer, waitFor, type RunningServer } from '../helpers/server.ts';
import { eventually, freshnessDeadlineMs } from '../helpers/eventually.ts';
import { startAll } from '../helpers/processes.ts';

/**
 * Two server processes on one sites folder stand in for two workers (or two machines sharing the
 * content volume): neither gets a message from the other, both must see every change.
 */
let a: RunningServer;
let b: RunningServer;
let sitesDir: string;
// Set explicitly (they are the defaults) because the deadlines below are derived from them.
const INTERVALS = { contentCheckMs: 500, sitesRescanMs: 500 };
const ENV = { CONTENT_CHECK_MS: String(INTERVALS.contentCheckMs), SITES_RESCAN_MS: String(INTERVALS.sitesRescanMs) };
/** An edit to a known site's files: two content-check intervals plus a margin (see freshnessDeadlineMs). */
const EDIT_DEADLINE_MS = freshnessDeadlineMs({ contentCheckMs: INTERVALS.contentCheckMs });
/** A change of which folder owns a host (new site, moved domain): one sites rescan more. */
const HOSTS_DEADLINE_MS = freshnessDeadlineMs(INTERVALS);

/** GET host+path on every server until each body passes `accept`; fails naming the server and what it last answered. */
async function everyServerShows(host: string, path: string, accept: (body: string) => boolean, deadlineMs: number, servers = [a, b]) {
  await Promise.all(
    servers.map((s, i) =>
      eventually(() => get(s.port, host, path), (res) => res.status === 200 && accept(res.body), {
        what: `server ${i + 1} (CONTENT_CHECK_MS=${ENV.CONTENT_CHECK_MS}, SITES_RESCAN_MS=${ENV.SITES_RESCAN_MS}): ${host}${path}`,
        deadlineMs,
        describe: (res) => `${res.status} ${/<title>([^<]*)<\/title>/.exec(res.body)?.[1] ?? res.body.slice(0, 120)} ${/data-site="[^"]*"/.exec(res.body)?.[0] ?? ''}`,
      }),
    ),
  );
}

beforeAll(async () => {
  sitesDir = await copySites();
  [a, b] = await startAll([startServer(sitesDir, ENV), startServer(sitesDir, ENV)]);
  // Warm both caches so the tests below measure invalidation, not a first load.
  for (const s of [a, b]) {
    await get(s.port, 'docs.example', '/guide');
    await get(s.port, 'acme.example');
  }
});

afterAll(async () => {
  await Promise.allSettled([a?.stop(), b?.stop()]);
  await removeDir(sitesDir);
});

describe('live content', () => {
  it('serves an edited page within two content-check intervals on every worker, with no restart', async () => {
    const file = join(sitesDir, 'docs/pages/guide/index.md');
    const before = await readFile(file, 'utf8');
    await writeFile(file, before.replace('title: Guide', 'title: Guide (edited)'));
    await everyServerShows('docs.example', '/guide', (body) => body.includes('Guide (edited)'), EDIT_DEADLINE_MS);
  });

  it('applies an edited site.json (theme and name) within two content-check intervals on every worker', async () => {
    const file = join(sitesDir, 'acme/site.json');
    const config = JSON.parse(await readFile(file, 'utf8'));
    config.name = 'Acme Tools & Sons';
    config.theme.primary = '#123456';
    await writeFile(file, JSON.stringify(config));
    await everyServerShows('acme.example', '/', (body) => body.includes('Acme Tools &amp; Sons') && body.includes('--site-primary:#123456'), EDIT_DEADLINE_MS);
  });

  it('puts a new site folder live within a sites rescan and two content checks, on its platform subdomain and its custom domain', async () => {
    const dir = join(sitesDir, 'newshop');
    await mkdir(join(dir, 'pages'), { recursive: true });
    await writeFile(join(dir, 'pages/index.md'), '---\ntitle: Brand new shop\n---\nOpen today.');
    await writeFile(join(dir, 'site.json'), JSON.stringify({ name: 'New Shop', domains: ['newshop.example'] }));
    await Promise.all(['newshop.localhost', 'newshop.example'].map((host) => everyServerShows(host, '/', (body) => body.includes('Brand new shop'), HOSTS_DEADLINE_MS)));
  });

  it('moves a custom domain from one site to another within a sites rescan and two content checks', async () => {
    const from = join(sitesDir, 'docs/site.json');
    const to = join(sitesDir, 'bakery/site.json');
    const docs = JSON.parse(await readFile(from, 'utf8'));
    const bakery = JSON.parse(await readFile(to, 'utf8'));
    docs.domains = docs.domains.filter((d: string) => d !== 'docs.example');
    bakery.domains.push('docs.example');
    await writeFile(from, JSON.stringify(docs));
    await writeFile(to, JSON.stringify(bakery));
    await everyServerShows('docs.example', '/', (body) => body.includes('data-site="bakery"'), HOSTS_DEADLINE_MS);
  });

  it('answers 503 for a page whose frontmatter becomes invalid, and recovers when it is fixed', async () => {
    const file = join(sitesDir, 'acme/pages/about.md');
    const good = await readFile(file, 'utf8');
    await writeFile(file, '---\ntitle: [unclosed\n---\nbody');
    await waitFor(async () => (await get(a.port, 'acme.example', '/about')).status === 503, 5000);
    expect((await get(a.port, 'acme.example', '/products')).status).toBe(200);
    await waitFor(async () => a.logs.some((l) => l.includes('sites/acme/pages/about.md') && l.includes('not valid YAML')), 5000);
    expect(a.logs.some((l) => l.includes('sites/acme/pages/about.md') && l.includes('not valid YAML'))).toBe(true);
    await writeFile(file, good);
    await waitFor(async () => (await get(a.port, 'acme.example', '/about')).status === 200, 5000);
  });

  it('serves a new static file and a removed page\'s 404 without restart', async () => {
    await cp(join(sitesDir, 'acme/public/logo.svg'), join(sitesDir, 'acme/public/new-logo.svg'));
    expect((await get(b.port, 'acme.example', '/new-logo.svg')).status).toBe(200);
    await writeFile(join(sitesDir, 'acme/pages/products/hammer.md'), '');
    await import('node:fs/promises').then((fs) => fs.rm(join(sitesDir, 'acme/pages/products/hammer.md')));
    await waitFor(async () => (await get(b.port, 'acme.example', '/products/hammer')).status === 404, 5000);
  });
});
