import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cp, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { copySites, get, removeDir, startServer, waitFor, type RunningServer } from '../helpers/server.ts';

/**
 * Two server processes on one sites folder stand in for two workers (or two machines sharing the
 * content volume): neither gets a message from the other, both must see every change.
 */
let a: RunningServer;
let b: RunningServer;
let sitesDir: string;
const ONE_SECOND = 1000;

beforeAll(async () => {
  sitesDir = await copySites();
  [a, b] = await Promise.all([startServer(sitesDir), startServer(sitesDir)]);
  // Warm both caches so the tests below measure invalidation, not a first load.
  for (const s of [a, b]) {
    await get(s.port, 'docs.example', '/guide');
    await get(s.port, 'acme.example');
  }
});

afterAll(async () => {
  await Promise.all([a?.stop(), b?.stop()]);
  await removeDir(sitesDir);
});

describe('live content', () => {
  it('serves an edited page within 1 s on every worker, with no restart', async () => {
    const file = join(sitesDir, 'docs/pages/guide/index.md');
    const before = await readFile(file, 'utf8');
    await writeFile(file, before.replace('title: Guide', 'title: Guide (edited)'));
    const elapsed = await Promise.all(
      [a, b].map((s) => waitFor(async () => (await get(s.port, 'docs.example', '/guide')).body.includes('Guide (edited)'), 5000)),
    );
    for (const ms of elapsed) expect(ms).toBeLessThanOrEqual(ONE_SECOND);
  });

  it('applies an edited site.json (theme and name) within 1 s on every worker', async () => {
    const file = join(sitesDir, 'acme/site.json');
    const config = JSON.parse(await readFile(file, 'utf8'));
    config.name = 'Acme Tools & Sons';
    config.theme.primary = '#123456';
    await writeFile(file, JSON.stringify(config));
    const elapsed = await Promise.all(
      [a, b].map((s) => waitFor(async () => {
        const body = (await get(s.port, 'acme.example')).body;
        return body.includes('Acme Tools &amp; Sons') && body.includes('--site-primary:#123456');
      }, 5000)),
    );
    for (const ms of elapsed) expect(ms).toBeLessThanOrEqual(ONE_SECOND);
  });

  it('puts a new site folder live within 1 s on its platform subdomain and its custom domain', async () => {
    const dir = join(sitesDir, 'newshop');
    await mkdir(join(dir, 'pages'), { recursive: true });
    await writeFile(join(dir, 'pages/index.md'), '---\ntitle: Brand new shop\n---\nOpen today.');
    await writeFile(join(dir, 'site.json'), JSON.stringify({ name: 'New Shop', domains: ['newshop.example'] }));
    const elapsed = await Promise.all(
      [a, b].flatMap((s) => ['newshop.localhost', 'newshop.example'].map((host) =>
        waitFor(async () => (await get(s.port, host)).body.includes('Brand new shop'), 5000))),
    );
    for (const ms of elapsed) expect(ms).toBeLessThanOrEqual(ONE_SECOND);
  });

  it('moves a custom domain from one site to another within 1 s', async () => {
    const from = join(sitesDir, 'docs/site.json');
    const to = join(sitesDir, 'bakery/site.json');
    const docs = JSON.parse(await readFile(from, 'utf8'));
    const bakery = JSON.parse(await readFile(to, 'utf8'));
    docs.domains = docs.domains.filter((d: string) => d !== 'docs.example');
    bakery.domains.push('docs.example');
    await writeFile(from, JSON.stringify(docs));
    await writeFile(to, JSON.stringify(bakery));
    const elapsed = await Promise.all(
      [a, b].map((s) => waitFor(async () => (await get(s.port, 'docs.example')).body.includes('data-site="bakery"'), 5000)),
    );
    for (const ms of elapsed) expect(ms).toBeLessThanOrEqual(ONE_SECOND);
  });

  it('answers 503 for a page whose frontmatter becomes invalid, and recovers when it is fixed', async () => {
    const file = join(sitesDir, 'acme/pages/about.md');
    const good = await readFile(file, 'utf8');
    await writeFile(file, '---\ntitle: [unclosed\n---\nbody');
    await waitFor(async () => (await get(a.port, 'acme.example', '/about')).status === 503, 5000);
    expect((await get(a.port, 'acme.example', '/products')).status).toBe(200);
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
