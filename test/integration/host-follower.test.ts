import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { get, removeDir, startServer, type RunningServer } from '../helpers/server.ts';
import { eventually } from '../helpers/eventually.ts';

/**
 * The follower alone keeps routing in step: with unknown-host rescans pushed out of reach
 * (SITES_RESCAN_MS at its maximum, and the startup scan just done), a new host added to a site
 * nobody is visiting, and a new site folder, go live within CONTENT_CHECK_MS plus a margin for a
 * loaded machine. Only the follower's ticks can have found them.
 */
const CONTENT_CHECK_MS = 400;
const DEADLINE_MS = 2 * CONTENT_CHECK_MS + 1500;

const siteJson = (name: string, domains: string[], aliases: string[] = []) => JSON.stringify({ name, domains, aliases });

let dir: string;
let server: RunningServer;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'amt-follower-'));
  for (const id of ['quiet', 'busy']) {
    await mkdir(join(dir, id, 'pages'), { recursive: true });
    await writeFile(join(dir, id, 'site.json'), siteJson(`Site ${id}`, [`${id}.example`]));
    await writeFile(join(dir, id, 'pages', 'index.md'), `---\ntitle: Home of ${id}\n---\n`);
  }
  server = await startServer(dir, { CONTENT_CHECK_MS: String(CONTENT_CHECK_MS), SITES_RESCAN_MS: '60000' });
});

afterAll(async () => {
  await server?.stop();
  await removeDir(dir);
});

const siteOf = async (host: string) => {
  const res = await get(server.port, host, '/');
  return res.status === 200 ? /data-site="([^"]+)"/.exec(res.body)?.[1] ?? `200 without a site` : res.status === 301 ? `301 → ${res.headers.location}` : String(res.status);
};

describe('the host follower', () => {
  it('routes a domain and an alias added to an idle site, with no rescan to help', async () => {
    expect(await siteOf('fresh.example')).toBe('404');
    await writeFile(join(dir, 'quiet', 'site.json'), siteJson('Site quiet', ['quiet.example', 'fresh.example'], ['www.fresh.example']));
    const seen = await eventually(() => siteOf('fresh.example'), (v) => v === 'quiet', { what: 'fresh.example serves quiet', deadlineMs: DEADLINE_MS });
    expect(seen.value).toBe('quiet');
    expect(await siteOf('www.fresh.example')).toBe('301 → http://quiet.example/');
  });

  it('routes a new site folder\'s custom domain, with no rescan to help', async () => {
    expect(await siteOf('newcomer.example')).toBe('404');
    await mkdir(join(dir, 'newcomer', 'pages'), { recursive: true });
    await writeFile(join(dir, 'newcomer', 'pages', 'index.md'), '---\ntitle: Hello\n---\n');
    await writeFile(join(dir, 'newcomer', 'site.json'), siteJson('Newcomer', ['newcomer.example']));
    const seen = await eventually(() => siteOf('newcomer.example'), (v) => v === 'newcomer', { what: 'newcomer.example serves newcomer', deadlineMs: DEADLINE_MS });
    expect(seen.value).toBe('newcomer');
  });
});
