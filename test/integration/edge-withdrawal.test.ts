import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdir, rm, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { copySites, get, removeDir, startServer, type Response, type RunningServer } from '../helpers/server.ts';
import { startNginx, type RunningNginx } from '../helpers/nginx.ts';
import { freshnessDeadlineMs } from '../helpers/eventually.ts';

/**
 * Withdrawn content leaves every cache: a page or public file that its owner withdraws — made a
 * draft, deleted, made members-only, its site.json removed or broken, its folder removed, its host
 * moved to another site — stops being served through a real nginx within CONTENT_CHECK_MS +
 * EDGE_CACHE_S (plus the margin every freshness test allows), and does not come back while
 * visitors keep asking (nginx used to answer STALE from its cache for minutes).
 */
const CONTENT_CHECK_MS = 300;
const SITES_RESCAN_MS = 300;
/** Longer than production's 1 s, so the edge cache really holds every entry when it is withdrawn. */
const EDGE_CACHE_S = 2;
const DEADLINE_MS = freshnessDeadlineMs({ contentCheckMs: CONTENT_CHECK_MS, sitesRescanMs: SITES_RESCAN_MS }) + EDGE_CACHE_S * 1000;
const MOVED_HOST = 'moving-shop.example';

let sitesDir: string;
let app: RunningServer;
let edge: RunningNginx;

const page = (marker: string, extra = '') => `---\ntitle: ${marker}\n${extra}---\n${marker} is published.\n`;

async function writeSite(id: string, config: Record<string, unknown>, pages: Record<string, string>, files: Record<string, string>) {
  const dir = join(sitesDir, id);
  await mkdir(join(dir, 'pages'), { recursive: true });
  await mkdir(join(dir, 'public'), { recursive: true });
  for (const [name, text] of Object.entries(pages)) await writeFile(join(dir, 'pages', name), text);
  for (const [name, text] of Object.entries(files)) await writeFile(join(dir, 'public', name), text);
  await writeFile(join(dir, 'site.json'), JSON.stringify(config));
}

interface Kind {
  name: string;
  host: string;
  path: string;
  /** Unique text in the published page or file. */
  marker: string;
  /** The owner's action that withdraws it. */
  withdraw(): Promise<void>;
  /** Pages are micro-cached at the edge: the test first sees them stored (HIT). */
  page: boolean;
}

const KINDS: Kind[] = [
  { name: 'page made a draft', host: 'wpages.localhost', path: '/drafted', marker: 'MARK-drafted', page: true, withdraw: () => writeFile(join(sitesDir, 'wpages/pages/drafted.md'), page('MARK-drafted', 'draft: true\n')) },
  { name: 'page deleted', host: 'wpages.localhost', path: '/deleted', marker: 'MARK-deleted', page: true, withdraw: () => unlink(join(sitesDir, 'wpages/pages/deleted.md')) },
  { name: 'page made members-only', host: 'wpages.localhost', path: '/private', marker: 'MARK-private', page: true, withdraw: () => writeFile(join(sitesDir, 'wpages/pages/private.md'), page('MARK-private', 'access: members\n')) },
  { name: 'public file deleted', host: 'wpages.localhost', path: '/deleted.txt', marker: 'FILE-deleted', page: false, withdraw: () => unlink(join(sitesDir, 'wpages/public/deleted.txt')) },
  { name: "page of a site whose site.json was removed", host: 'wnojson.localhost', path: '/about', marker: 'MARK-nojson', page: true, withdraw: () => unlink(join(sitesDir, 'wnojson/site.json')) },
  { name: "public file of a site whose site.json was removed", host: 'wnojson2.localhost', path: '/file.txt', marker: 'FILE-nojson', page: false, withdraw: () => unlink(join(sitesDir, 'wnojson2/site.json')) },
  { name: "page of a site whose site.json broke", host: 'wbroken.localhost', path: '/about', marker: 'MARK-broken', page: true, withdraw: () => writeFile(join(sitesDir, 'wbroken/site.json'), '{ "name": ') },
  { name: "public file of a site whose site.json broke", host: 'wbroken2.localhost', path: '/file.txt', marker: 'FILE-broken', page: false, withdraw: () => writeFile(join(sitesDir, 'wbroken2/site.json'), '{ "name": 42 }') },
  { name: 'page of a site folder removed', host: 'wgone.localhost', path: '/about', marker: 'MARK-gone', page: true, withdraw: () => rm(join(sitesDir, 'wgone'), { recursive: true, force: true }) },
  { name: 'public file of a site folder removed', host: 'wgone2.localhost', path: '/file.txt', marker: 'FILE-gone', page: false, withdraw: () => rm(join(sitesDir, 'wgone2'), { recursive: true, force: true }) },
  { name: 'page on a host moved to another site', host: MOVED_HOST, path: '/about', marker: 'MARK-moved', page: true, withdraw: moveHost },
  { name: 'public file on a host moved to another site', host: MOVED_HOST, path: '/file.txt', marker: 'FILE-moved', page: false, withdraw: async () => {} },
];

/** The old site drops the domain, then the new one claims it (a newcomer cannot take a host that is still served). */
async function moveHost() {
  await writeFile(join(sitesDir, 'wfrom/site.json'), JSON.stringify({ name: 'From' }));
  await new Promise((r) => setTimeout(r, 2 * SITES_RESCAN_MS));
  await writeFile(join(sitesDir, 'wto/site.json'), JSON.stringify({ name: 'To', domains: [MOVED_HOST] }));
}

beforeAll(async () => {
  sitesDir = await copySites();
  await writeSite('wpages', { name: 'Pages' }, { 'drafted.md': page('MARK-drafted'), 'deleted.md': page('MARK-deleted'), 'private.md': page('MARK-private') }, { 'deleted.txt': 'FILE-deleted' });
  for (const [id, mark] of [['wnojson', 'nojson'], ['wnojson2', 'nojson'], ['wbroken', 'broken'], ['wbroken2', 'broken'], ['wgone', 'gone'], ['wgone2', 'gone']] as const) {
    await writeSite(id, { name: id }, { 'about.md': page(`MARK-${mark}`) }, { 'file.txt': `FILE-${mark}` });
  }
  await writeSite('wfrom', { name: 'From', domains: [MOVED_HOST] }, { 'about.md': page('MARK-moved') }, { 'file.txt': 'FILE-moved' });
  await writeSite('wto', { name: 'To' }, { 'about.md': page('MARK-arrived') }, { 'file.txt': 'FILE-arrived' });
  app = await startServer(sitesDir, { CONTENT_CHECK_MS: String(CONTENT_CHECK_MS), SITES_RESCAN_MS: String(SITES_RESCAN_MS), EDGE_CACHE_S: String(EDGE_CACHE_S), PLATFORM_DOMAIN: 'localhost' });
  edge = await startNginx(app.port, sitesDir);
}, 60_000);

afterAll(async () => {
  await edge?.stop();
  await app?.stop();
  await removeDir(sitesDir);
});

const shows = (res: Response, kind: Kind) => res.status === 200 && res.body.includes(kind.marker);
const describeRes = (res: Response) => `${res.status} ${res.headers['x-cache-status'] ?? '-'} ${res.headers['x-served-by'] ?? ''} ${res.body.slice(0, 60).replace(/\s+/g, ' ')}`;

describe('withdrawn content through a real nginx', () => {
  it(`is gone within CONTENT_CHECK_MS + EDGE_CACHE_S (+ margin: ${DEADLINE_MS} ms) and stays gone, whichever way it is withdrawn`, async () => {
    // Published, and (pages) stored at the edge.
    for (const kind of KINDS) {
      const first = await get(edge.port, kind.host, kind.path);
      expect(shows(first, kind), `${kind.name}: ${describeRes(first)}`).toBe(true);
      // Files are sent by nginx from disk once the app has said which.
      if (!kind.page) expect(first.headers['x-served-by'], kind.name).toBe('nginx-static');
      if (kind.page) {
        const second = await get(edge.port, kind.host, kind.path);
        expect(second.headers['x-cache-status'], `${kind.name}: stored at the edge`).toBe('HIT');
      }
    }

    const outcomes = await Promise.all(
      KINDS.map(async (kind) => {
        const started = performance.now();
        await kind.withdraw();
        // Visitors keep asking all along (every request used to refresh a STALE answer).
        let goneAfter: number | undefined;
        const seen: string[] = [];
        while (performance.now() - started < DEADLINE_MS) {
          const res = await get(edge.port, kind.host, kind.path);
          seen.push(describeRes(res));
          if (!shows(res, kind)) {
            goneAfter = performance.now() - started;
            break;
          }
          await new Promise((r) => setTimeout(r, 100));
        }
        // And it does not come back: one more edge cache lifetime of requests.
        const after: string[] = [];
        if (goneAfter !== undefined) {
          const until = performance.now() + EDGE_CACHE_S * 1000 + 500;
          while (performance.now() < until) {
            const res = await get(edge.port, kind.host, kind.path);
            if (shows(res, kind)) after.push(describeRes(res));
            await new Promise((r) => setTimeout(r, 100));
          }
        }
        return { kind: kind.name, goneAfter, cameBack: after, last: seen.slice(-2) };
      }),
    );
    const failures = outcomes.filter((o) => o.goneAfter === undefined || o.cameBack.length > 0);
    expect(failures, JSON.stringify(failures, null, 1)).toEqual([]);
  }, 60_000);

  it('keeps serving what was not withdrawn, and the moved host serves its new site', async () => {
    const kept = await get(edge.port, 'acme.example', '/about');
    expect(kept.status).toBe(200);
    expect(kept.body).toContain('data-site="acme"');
    const moved = await get(edge.port, MOVED_HOST, '/about');
    expect(moved.status).toBe(200);
    expect(moved.body).toContain('MARK-arrived');
    const movedFile = await get(edge.port, MOVED_HOST, '/file.txt');
    expect(movedFile.body).toBe('FILE-arrived');
  });
});
