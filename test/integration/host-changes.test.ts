import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdir, mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { get, removeDir, startServer, type RunningServer } from '../helpers/server.ts';
import { startCluster, type RunningCluster } from '../helpers/cluster.ts';
import { redisForTests } from '../helpers/redis.ts';

/**
 * The routing promise, on the real built server: a change to a site's hosts, made by editing
 * site.json in place, is followed on every worker within CONTENT_CHECK_MS (plus a margin for a
 * busy test machine), and no request for some other, unknown host is needed to make it happen.
 * Every kind of host change is one example here, each on its own sites and hosts.
 */
const CONTENT_CHECK_MS = 500;
const DEADLINE_MS = CONTENT_CHECK_MS + 1500;
/** Requests per look: new connections each, so a 2-worker cluster answers from both workers. */
const LOOKS_PER_ROUND = 4;

type Want = { site: string } | { redirect: string } | { status: 404 | 503 };

interface Kind {
  name: string;
  /** Site folders (id → hosts) present before the server starts. */
  sites: Record<string, { domains?: string[]; aliases?: string[] }>;
  before: Record<string, Want>;
  edit: (dir: string) => Promise<void>;
  after: Record<string, Want>;
}

const json = (id: string, hosts: { domains?: string[]; aliases?: string[] }) => JSON.stringify({ name: `Site ${id}`, domains: hosts.domains ?? [], aliases: hosts.aliases ?? [] }, null, 2);
/** In place: truncate and rewrite the same inode, as most editors and `cat >` do. */
const writeInPlace = (dir: string, id: string, hosts: { domains?: string[]; aliases?: string[] }) => writeFile(join(dir, id, 'site.json'), json(id, hosts));

const KINDS: Kind[] = [
  {
    name: 'domain and alias swapped in place',
    sites: { qa: { domains: ['qa.example'], aliases: ['www.qa.example'] } },
    before: { 'qa.example': { site: 'qa' }, 'www.qa.example': { redirect: 'qa.example' } },
    edit: (dir) => writeInPlace(dir, 'qa', { domains: ['www.qa.example'], aliases: ['qa.example'] }),
    after: { 'www.qa.example': { site: 'qa' }, 'qa.example': { redirect: 'www.qa.example' } },
  },
  {
    name: 'domain moved from site A to site B',
    sites: { 'mover-a': { domains: ['mover-a.example', 'shop.example'] }, 'mover-b': { domains: ['mover-b.example'] } },
    before: { 'shop.example': { site: 'mover-a' } },
    edit: async (dir) => {
      await writeInPlace(dir, 'mover-a', { domains: ['mover-a.example'] });
      await writeInPlace(dir, 'mover-b', { domains: ['mover-b.example', 'shop.example'] });
    },
    after: { 'shop.example': { site: 'mover-b' }, 'mover-a.example': { site: 'mover-a' } },
  },
  {
    name: 'domain removed',
    sites: { shrink: { domains: ['shrink.example', 'dropped.example'], aliases: ['www.dropped.example'] } },
    before: { 'dropped.example': { site: 'shrink' }, 'www.dropped.example': { redirect: 'shrink.example' } },
    edit: (dir) => writeInPlace(dir, 'shrink', { domains: ['shrink.example'] }),
    after: { 'dropped.example': { status: 404 }, 'www.dropped.example': { status: 404 }, 'shrink.example': { site: 'shrink' } },
  },
  {
    name: 'alias added',
    sites: { grow: { domains: ['grow.example'] } },
    before: { 'grow.example': { site: 'grow' } },
    edit: (dir) => writeInPlace(dir, 'grow', { domains: ['grow.example'], aliases: ['www.grow.example'] }),
    after: { 'www.grow.example': { redirect: 'grow.example' }, 'grow.example': { site: 'grow' } },
  },
  {
    name: 'new site folder',
    sites: {},
    before: {},
    edit: async (dir) => {
      await mkdir(join(dir, 'newcomer', 'pages'), { recursive: true });
      await writeFile(join(dir, 'newcomer', 'pages', 'index.md'), '---\ntitle: Newcomer\n---\n\nHello.\n');
      await writeFile(join(dir, 'newcomer', 'site.json'), json('newcomer', { domains: ['newcomer.example'], aliases: ['www.newcomer.example'] }));
    },
    after: { 'newcomer.example': { site: 'newcomer' }, 'www.newcomer.example': { redirect: 'newcomer.example' } },
  },
  {
    name: 'deleted site folder',
    sites: { doomed: { domains: ['doomed.example'], aliases: ['www.doomed.example'] } },
    before: { 'doomed.example': { site: 'doomed' } },
    edit: (dir) => rm(join(dir, 'doomed'), { recursive: true }),
    after: { 'doomed.example': { status: 404 }, 'www.doomed.example': { status: 404 }, 'doomed.localhost': { status: 404 } },
  },
  {
    name: 'renamed site folder',
    sites: { 'old-name': { domains: ['renamed.example'] } },
    before: { 'renamed.example': { site: 'old-name' } },
    edit: (dir) => rename(join(dir, 'old-name'), join(dir, 'new-name')),
    after: { 'renamed.example': { site: 'new-name' }, 'new-name.localhost': { site: 'new-name' }, 'old-name.localhost': { status: 404 } },
  },
  {
    name: 'site.json that stops parsing (its hosts answer 503, not 404)',
    sites: { fragile: { domains: ['fragile.example'], aliases: ['www.fragile.example'] } },
    before: { 'fragile.example': { site: 'fragile' } },
    edit: (dir) => writeFile(join(dir, 'fragile', 'site.json'), '{ "name": "Site fragile", "domains": ['),
    after: { 'fragile.example': { status: 503 }, 'www.fragile.example': { status: 503 } },
  },
];

async function makeSites(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'amt-host-changes-'));
  for (const kind of KINDS) {
    for (const [id, hosts] of Object.entries(kind.sites)) {
      await mkdir(join(dir, id, 'pages'), { recursive: true });
      await writeFile(join(dir, id, 'pages', 'index.md'), `---\ntitle: Home of ${id}\n---\n\nThis is ${id}.\n`);
      await writeFile(join(dir, id, 'site.json'), json(id, hosts));
    }
  }
  return dir;
}

/** What one request for a host got, in the same terms as `Want`. */
async function look(port: number, host: string): Promise<string> {
  const res = await get(port, host, '/');
  if (res.status === 200) return `site ${/data-site="([^"]+)"/.exec(res.body)?.[1] ?? '?'}`;
  if (res.status === 301) return `redirect ${res.headers.location}`;
  return `status ${res.status}`;
}

function describeWant(want: Want): string {
  if ('site' in want) return `site ${want.site}`;
  if ('redirect' in want) return `redirect http://${want.redirect}/`;
  return `status ${want.status}`;
}

/**
 * Polls every host until all of them answer as wanted on LOOKS_PER_ROUND fresh connections in a
 * row, or the deadline passes; then fails with what each host answered last.
 */
async function expectWithin(port: number, wants: Record<string, Want>, deadlineMs: number): Promise<number> {
  const started = Date.now();
  let seen: Record<string, string[]> = {};
  for (;;) {
    seen = {};
    let all = true;
    for (const [host, want] of Object.entries(wants)) {
      const answers: string[] = [];
      for (let i = 0; i < LOOKS_PER_ROUND; i++) answers.push(await look(port, host));
      seen[host] = answers;
      if (answers.some((a) => a !== describeWant(want))) all = false;
    }
    if (all) return Date.now() - started;
    if (Date.now() - started > deadlineMs) {
      const wanted = Object.fromEntries(Object.entries(wants).map(([h, w]) => [h, describeWant(w)]));
      expect({ afterMs: Date.now() - started, seen }).toEqual({ afterMs: expect.any(Number), seen: Object.fromEntries(Object.entries(wanted).map(([h, w]) => [h, Array(LOOKS_PER_ROUND).fill(w)])) });
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

function runKinds(target: () => { port: number; sitesDir: string }) {
  it.each(KINDS.map((k) => [k.name, k] as const))('follows a %s within CONTENT_CHECK_MS + margin', async (_name, kind) => {
    const { port, sitesDir } = target();
    await expectWithin(port, kind.before, DEADLINE_MS);
    await kind.edit(sitesDir);
    const tookMs = await expectWithin(port, kind.after, DEADLINE_MS);
    expect(tookMs).toBeLessThanOrEqual(DEADLINE_MS + 1000);
  });
}

describe('host changes on a single server process', () => {
  let server: RunningServer;
  let sitesDir: string;
  beforeAll(async () => {
    sitesDir = await makeSites();
    server = await startServer(sitesDir, { CONTENT_CHECK_MS: String(CONTENT_CHECK_MS), PLATFORM_DOMAIN: 'localhost' });
  });
  afterAll(async () => {
    await server?.stop();
    await removeDir(sitesDir);
  });
  runKinds(() => ({ port: server.port, sitesDir }));
});

describe('host changes on a 2-worker PM2 cluster (every worker follows)', () => {
  let cluster: RunningCluster;
  let sitesDir: string;
  let redis: { url: string; stop(): Promise<void> };
  beforeAll(async () => {
    sitesDir = await makeSites();
    // More than one worker needs shared sessions: Redis and shared signing keys.
    redis = await redisForTests();
    cluster = await startCluster(sitesDir, {
      instances: 2,
      env: { CONTENT_CHECK_MS: String(CONTENT_CHECK_MS), PLATFORM_DOMAIN: 'localhost', REDIS_URL: redis.url, SESSION_KEYS: 'k1:host-changes-test-signing-secret-0123456789' },
    });
  }, 120_000);
  afterAll(async () => {
    await cluster?.stop();
    await redis?.stop();
    await removeDir(sitesDir);
  }, 60_000);
  runKinds(() => ({ port: cluster.port, sitesDir }));
});
