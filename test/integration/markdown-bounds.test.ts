import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { request } from 'node:http';
import { join } from 'node:path';
import { copySites, get, removeDir, startServer, waitFor, type RunningServer } from '../helpers/server.ts';
import { checkSite } from '../../astro-multi-tenant/server/sites/check.ts';
import { closeMarkdownRenderer } from '../../astro-multi-tenant/server/sites/markdown.ts';

/**
 * A site owner's Markdown cannot stall a worker (docs/security.md). The earlier micromark pipeline
 * took 16.7 s for 180 KB of `[a](b ` on the event loop, with /_platform/healthz waiting behind it,
 * and every request paid it again. markdown-it renders that shape in a fraction of a second (it
 * is served below); the trap pages are the shapes still costly to the pipeline: raw HTML nested
 * past the tree's recursion, emphasis nested as deep, and misnested formatting tags that parse5
 * rebuilds into a tree as deep. Each renders on a render thread within its bounds, the page answers
 * 503, the refusal is remembered, and nothing else waits.
 */
const HOST = 'acme.example';
const nested = (open: string, close: string, depth: number) => open.repeat(depth) + 'a' + close.repeat(depth);
const TRAPS: Record<string, string> = {
  'nested-divs': '<div>'.repeat(30_000),
  'nested-emphasis': nested('*a **', '** a*', 8_000),
  'misnested-formatting': '<a><b><i>'.repeat(20_000),
};
/** The shape that stalled the earlier parser for 16.7 s. */
const FORMER_TRAP = '[a](b '.repeat(30_000);

/** GET by Host without the shared helper's 10 s timeout: a refusal takes its whole CPU budget, and a loaded machine stretches that. */
function slowGet(port: number, host: string, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, headers: { host }, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', reject);
    req.setTimeout(150_000, () => req.destroy(new Error(`timeout: ${host}${path}`)));
    req.end();
  });
}

let server: RunningServer;
let sitesDir: string;
let cacheDir: string;

beforeAll(async () => {
  sitesDir = await copySites();
  cacheDir = await mkdtemp(join(tmpdir(), 'amt-md-bounds-'));
  for (const [name, body] of Object.entries(TRAPS)) await writeFile(join(sitesDir, 'acme', 'pages', `${name}.md`), `---\ntitle: ${name}\n---\n${body}`);
  await writeFile(join(sitesDir, 'acme', 'pages', 'unclosed-links.md'), `---\ntitle: unclosed links\n---\n${FORMER_TRAP}`);
  server = await startServer(sitesDir, { MARKDOWN_CACHE_DIR: cacheDir });
});

afterAll(async () => {
  await server?.stop();
  await closeMarkdownRenderer();
  await removeDir(sitesDir);
  await rm(cacheDir, { recursive: true, force: true });
});

/** Requests `path` while asking healthz every 20 ms; each healthz answer's status and latency. */
async function whileHealthzPolls(path: string) {
  const health: Array<{ status: number; ms: number }> = [];
  let done = false;
  const poller = (async () => {
    while (!done) {
      const started = performance.now();
      const res = await get(server.port, HOST, '/_platform/healthz');
      health.push({ status: res.status, ms: performance.now() - started });
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  })();
  const started = performance.now();
  const page = await slowGet(server.port, HOST, path);
  const pageMs = performance.now() - started;
  done = true;
  await poller;
  return { page, pageMs, health };
}

describe('a page whose Markdown is hostile', { timeout: 300_000 }, () => {
  for (const name of Object.keys(TRAPS)) {
    it(`${name}: answers 503 after at most its CPU budget, while healthz keeps answering`, async () => {
      const { page, pageMs, health } = await whileHealthzPolls(`/${name}`);
      expect(page.status).toBe(503);
      expect(page.body).toContain('Page unavailable');
      expect(page.body).not.toContain(`${name}.md`);
      expect(health.length).toBeGreaterThan(0);
      expect(health.every((h) => h.status === 200)).toBe(true);
      // Had the render run on the event loop, healthz would have waited for all of it.
      const slowest = Math.max(...health.map((h) => h.ms));
      expect(slowest).toBeLessThan(Math.max(500, pageMs / 2));
      // The log line is written before the answer but reaches us through another pipe: wait for it.
      await waitFor(async () => server.logs.join('\n').includes(`sites/acme/pages/${name}.md`), 5000);
      expect(server.logs.join('\n')).toContain(`sites/acme/pages/${name}.md`);
    });
  }

  it('is refused at once the next time: the refusal is remembered, nothing renders again', async () => {
    for (const name of Object.keys(TRAPS)) {
      const { page, pageMs } = await whileHealthzPolls(`/${name}`);
      expect(page.status).toBe(503);
      // Each first answer took its CPU budget (seconds); a remembered refusal is a cache lookup.
      expect(pageMs).toBeLessThan(1_000);
    }
  });

  it('serves the shape that stalled the earlier parser, 180 KB of `[a](b `, while healthz keeps answering', async () => {
    const { page, health } = await whileHealthzPolls('/unclosed-links');
    expect(page.status).toBe(200);
    expect(page.body).toContain('[a](b [a](b');
    expect(health.every((h) => h.status === 200)).toBe(true);
  });

  it('leaves other pages of the same site served', async () => {
    const res = await get(server.port, HOST, '/about');
    expect(res.status).toBe(200);
  });

  it('is listed in the sitemap, which is built from frontmatter and renders nothing', async () => {
    const res = await get(server.port, HOST, '/sitemap.xml');
    expect(res.status).toBe(200);
    for (const name of Object.keys(TRAPS)) expect(res.body).toContain(`/${name}</loc>`);
  });

  it('is reported by sites check, naming the file, the body and why', async () => {
    const report = await checkSite(sitesDir, 'acme');
    for (const name of Object.keys(TRAPS)) {
      expect(report.issues).toContainEqual({
        file: `sites/acme/pages/${name}.md`,
        field: 'body',
        reason: expect.stringMatching(/^the Markdown (takes more than \d+ ms of CPU to render|is nested too deeply|needs more than \d+ MiB of memory)/),
      });
    }
  });
});
