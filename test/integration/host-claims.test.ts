import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { copySites, get, removeDir, ROOT, startServer, type RunningServer } from '../helpers/server.ts';
import { startAll } from '../helpers/processes.ts';
import { eventually, freshnessDeadlineMs } from '../helpers/eventually.ts';

/**
 * Rule 1 of the tenant-isolation issue, on the real built server: no site takes a host that is
 * not its own. `<id>.<PLATFORM_DOMAIN>` is site `<id>`'s alone; nobody claims the platform domain,
 * a name under it, a loopback name or an IP literal; a custom host stays with the site that already
 * serves it until that site drops it, whatever the ids, across restarts and on every server of a
 * sites folder. Each test owns its sites folder and STATE_DIR.
 */
const CONTENT_CHECK_MS = 300;
const ENV = { CONTENT_CHECK_MS: String(CONTENT_CHECK_MS), SITES_RESCAN_MS: String(CONTENT_CHECK_MS), PLATFORM_DOMAIN: 'localhost' };
const DEADLINE_MS = freshnessDeadlineMs({ contentCheckMs: CONTENT_CHECK_MS });

const cleanup: Array<() => Promise<void>> = [];
afterEach(async () => {
  while (cleanup.length) await cleanup.pop()!().catch(() => {});
});

async function folders(): Promise<{ sitesDir: string; stateDir: string }> {
  const sitesDir = await copySites();
  const stateDir = await mkdtemp(join(tmpdir(), 'amt-state-'));
  cleanup.push(() => removeDir(sitesDir), () => removeDir(stateDir));
  return { sitesDir, stateDir };
}

async function server(sitesDir: string, stateDir: string): Promise<RunningServer> {
  const s = await startServer(sitesDir, { ...ENV, STATE_DIR: stateDir });
  cleanup.push(() => s.stop());
  return s;
}

async function writeSite(sitesDir: string, id: string, config: Record<string, unknown>): Promise<void> {
  await mkdir(join(sitesDir, id, 'pages'), { recursive: true });
  await writeFile(join(sitesDir, id, 'pages', 'index.md'), `---\ntitle: Home of ${id}\n---\n\nThis is ${id}.\n`);
  await writeFile(join(sitesDir, id, 'site.json'), JSON.stringify({ name: `Site ${id}`, ...config }));
}

async function editSite(sitesDir: string, id: string, change: (config: Record<string, unknown>) => void): Promise<void> {
  const file = join(sitesDir, id, 'site.json');
  const config = JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>;
  change(config);
  await writeFile(file, JSON.stringify(config));
}

/** What a host answers, in one short string: `site <id>`, `redirect <location>`, `status <code>`. */
async function look(port: number, host: string): Promise<string> {
  const res = await get(port, host, '/');
  if (res.status === 200) return `site ${/data-site="([^"]+)"/.exec(res.body)?.[1] ?? '(none)'}`;
  if (res.status === 301) return `redirect ${res.headers.location}`;
  return `status ${res.status}`;
}

async function looks(port: number, hosts: string[]): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const host of hosts) out[host] = await look(port, host);
  return out;
}

/** Waits until every host answers as wanted (a new folder goes live, an edit is followed). */
async function until(port: number, wants: Record<string, string>, what: string): Promise<void> {
  await eventually(() => looks(port, Object.keys(wants)), (seen) => Object.entries(wants).every(([h, w]) => seen[h] === w), { what, deadlineMs: DEADLINE_MS });
}

/**
 * Asserts the hosts keep answering as wanted for two follower deadlines: a refused claim must not
 * win later either (after the next rescan, the next sweep, the next tick).
 */
async function holds(port: number, wants: Record<string, string>): Promise<void> {
  const until = Date.now() + DEADLINE_MS;
  do {
    expect(await looks(port, Object.keys(wants))).toEqual(wants);
    await new Promise((r) => setTimeout(r, 100));
  } while (Date.now() < until);
}

function sitesCheck(sitesDir: string, stateDir: string): { code: number | null; out: string } {
  const result = spawnSync(process.execPath, [join(ROOT, 'astro-multi-tenant/server/cli/sites.ts'), 'check'], {
    cwd: ROOT,
    env: { ...process.env, SITES_DIR: sitesDir, STATE_DIR: stateDir, PLATFORM_DOMAIN: 'localhost' },
    encoding: 'utf8',
  });
  return { code: result.status, out: result.stdout + result.stderr };
}

/** The lines `sites check` prints for one site, from its `ok`/`FAIL` line to the next site's. */
function checkBlock(out: string, id: string): string {
  const lines = out.split('\n');
  const start = lines.findIndex((l) => new RegExp(`^(ok|FAIL)\\s+${id}\\b`).test(l));
  if (start === -1) return '';
  const end = lines.findIndex((l, i) => i > start && /^(ok|FAIL)\s/.test(l));
  return lines.slice(start, end === -1 ? undefined : end).join('\n');
}

async function statusJson(port: number): Promise<{ sites: Array<{ id: string; refused: Array<{ host: string; owner: string }> }>; totals: { refusedClaims: number } }> {
  const res = await get(port, 'localhost', '/_platform/status.json');
  expect(res.status).toBe(200);
  return JSON.parse(res.body);
}

describe('names no site may claim', () => {
  it('a site listing another site\'s platform subdomain, the platform domain, a name under it, a loopback name or an IP literal gets none of them, fails sites check, and the owner keeps serving', async () => {
    const { sitesDir, stateDir } = await folders();
    // Claims present at start, in domains and in aliases, by ids sorting before and after the victims.
    const forbidden: Record<string, Record<string, unknown>> = {
      zzz: { domains: ['acme.localhost'] },
      aaa: { domains: ['shop.example'], aliases: ['blog.localhost'] },
      'plat-root': { domains: ['localhost'] },
      'plat-deep': { domains: ['www.docs.localhost'] },
      'ip-four': { domains: ['127.0.0.1'] },
      'ip-short': { domains: ['127.1'] },
      'ip-six': { domains: ['[::1]'] },
      loopback: { domains: ['app.localhost.'] },
    };
    for (const [id, config] of Object.entries(forbidden)) await writeSite(sitesDir, id, config);
    const s = await server(sitesDir, stateDir);

    // And one added while the server runs: taken "after the next rescan" before this was fixed.
    await writeSite(sitesDir, 'late', { domains: ['bakery.localhost'], aliases: ['docs.localhost'] });
    await until(s.port, { 'late.localhost': 'status 503' }, 'the late claimant is listed (and invalid)');

    await holds(s.port, {
      'acme.localhost': 'site acme',
      'blog.localhost': 'site blog',
      'bakery.localhost': 'site bakery',
      'docs.localhost': 'site docs',
      // Each claimant answers 503 on its own platform subdomain: its site.json is invalid.
      'zzz.localhost': 'status 503',
      'aaa.localhost': 'status 503',
      'ip-four.localhost': 'status 503',
      'ip-six.localhost': 'status 503',
    });
    for (const host of ['127.0.0.1', '127.1', '[::1]', 'localhost', 'www.docs.localhost', 'app.localhost', 'shop.example']) {
      expect(await look(s.port, host), host).not.toMatch(/^site (zzz|aaa|plat-root|plat-deep|ip-four|ip-short|ip-six|loopback|late)$/);
    }

    const check = sitesCheck(sitesDir, stateDir);
    expect(check.code, check.out).toBe(1);
    for (const id of ['acme', 'blog', 'bakery', 'docs']) expect(checkBlock(check.out, id), check.out).toMatch(/^ok /);
    expect(checkBlock(check.out, 'zzz')).toMatch(/domains\.0.*under the platform domain localhost/);
    expect(checkBlock(check.out, 'aaa')).toMatch(/aliases\.0.*under the platform domain/);
    expect(checkBlock(check.out, 'plat-root')).toMatch(/domains\.0.*is the platform domain/);
    expect(checkBlock(check.out, 'plat-deep')).toMatch(/domains\.0.*under the platform domain/);
    expect(checkBlock(check.out, 'ip-four')).toMatch(/domains\.0.*IP address/);
    expect(checkBlock(check.out, 'ip-short')).toMatch(/domains\.0.*IP address/);
    expect(checkBlock(check.out, 'ip-six')).toMatch(/domains\.0.*IP address/);
    expect(checkBlock(check.out, 'late')).toMatch(/domains\.0.*under the platform domain[\s\S]*aliases\.0.*under the platform domain/);
  }, 60_000);
});

describe('a custom host stays with the site that already serves it', () => {
  it('refuses a newcomer\'s claim whether its id sorts before or after the owner\'s, by domain or by alias, reports it once, and keeps refusing after a restart', async () => {
    const { sitesDir, stateDir } = await folders();
    // An owner whose id sorts last, next to the sample sites (acme, bakery, docs own their domains).
    await writeSite(sitesDir, 'zz-owner', { domains: ['owned.example'] });
    let s = await server(sitesDir, stateDir);
    const owners = { 'acme.example': 'site acme', 'sweet-crumbs.example': 'site bakery', 'docs.example': 'site docs', 'owned.example': 'site zz-owner' };
    await until(s.port, owners, 'the owners serve their hosts');

    await writeSite(sitesDir, 'aaa', { domains: ['acme.example'] }); // sorts before the owner
    await writeSite(sitesDir, 'zzz', { domains: ['sweet-crumbs.example'] }); // sorts after it
    await writeSite(sitesDir, 'aab', { domains: ['aab.example'], aliases: ['docs.example'] }); // an alias at docs' only host
    await writeSite(sitesDir, 'a-first', { domains: ['owned.example'] }); // before an owner that sorts last
    await until(s.port, { 'aaa.localhost': 'site aaa', 'zzz.localhost': 'site zzz', 'aab.localhost': 'site aab', 'a-first.localhost': 'site a-first' }, 'the newcomers are live');
    await holds(s.port, owners);

    const newcomers = { aaa: 'acme.example', zzz: 'sweet-crumbs.example', aab: 'docs.example', 'a-first': 'owned.example' };
    const conflictLogs = () => s.logs.filter((l) => l.includes('the newcomer\'s claim is refused'));
    for (const [loser, host] of Object.entries(newcomers)) {
      const lines = conflictLogs().filter((l) => l.includes(`"loser":"${loser}"`) && l.includes(`"host":"${host}"`));
      expect(lines, `one log line for ${loser} → ${host}:\n${s.logs.join('\n')}`).toHaveLength(1);
    }

    const status = await statusJson(s.port);
    for (const [loser, host] of Object.entries(newcomers)) {
      expect(status.sites.find((r) => r.id === loser)?.refused, loser).toEqual([{ host, owner: owners[host as keyof typeof owners].slice(5) }]);
    }
    for (const owner of ['acme', 'bakery', 'docs', 'zz-owner']) expect(status.sites.find((r) => r.id === owner)?.refused, owner).toEqual([]);
    expect(status.totals.refusedClaims).toBe(4);
    const page = await get(s.port, 'localhost', '/_platform/status');
    expect(page.body).toContain('acme.example: refused, already served by acme');

    const check = sitesCheck(sitesDir, stateDir);
    expect(check.code, check.out).toBe(1);
    for (const id of ['acme', 'bakery', 'docs', 'zz-owner']) expect(checkBlock(check.out, id), check.out).toMatch(/^ok /);
    for (const [loser, host] of Object.entries(newcomers)) {
      expect(checkBlock(check.out, loser), check.out).toContain(`host "${host}" is already claimed by site "${owners[host as keyof typeof owners].slice(5)}"`);
    }
    expect(checkBlock(check.out, 'aab')).toContain('sites/aab/site.json: aliases: host "docs.example"');

    // A restart reads both claims from disk at once; the records, not the ids, decide.
    await s.stop();
    s = await server(sitesDir, stateDir);
    expect(await looks(s.port, Object.keys(owners))).toEqual(owners);
    await holds(s.port, owners);
  }, 90_000);

  it('hands the host to the newcomer within the edit promise once the owner drops it, and keeps it there after a restart', async () => {
    const { sitesDir, stateDir } = await folders();
    let s = await server(sitesDir, stateDir);
    await writeSite(sitesDir, 'aaa', { domains: ['acme.example'] });
    await writeSite(sitesDir, 'zzz', { domains: ['zzz.example'], aliases: ['docs.example'] });
    await until(s.port, { 'aaa.localhost': 'site aaa', 'zzz.localhost': 'site zzz' }, 'the newcomers are live');
    await holds(s.port, { 'acme.example': 'site acme', 'docs.example': 'site docs' });

    await editSite(sitesDir, 'acme', (c) => (c.domains = ['acme-renamed.example']));
    await editSite(sitesDir, 'docs', (c) => (c.domains = ['docs-renamed.example']));
    await until(s.port, { 'acme.example': 'site aaa', 'docs.example': 'redirect http://zzz.example/', 'acme-renamed.example': 'site acme' }, 'the dropped hosts go to the newcomers');

    // The former owner asks for it back: it is now the newcomer, and is refused, also after a restart.
    await editSite(sitesDir, 'acme', (c) => (c.domains = ['acme-renamed.example', 'acme.example']));
    await holds(s.port, { 'acme.example': 'site aaa', 'acme-renamed.example': 'site acme' });
    await s.stop();
    s = await server(sitesDir, stateDir);
    expect(await looks(s.port, ['acme.example', 'docs.example'])).toEqual({ 'acme.example': 'site aaa', 'docs.example': 'redirect http://zzz.example/' });
  }, 90_000);
});

describe('every server of one sites folder decides the same', () => {
  let sitesDir: string;
  let stateDir: string;
  let servers: RunningServer[] = [];

  beforeAll(async () => {
    sitesDir = await mkdtemp(join(tmpdir(), 'amt-claims-pair-'));
    stateDir = await mkdtemp(join(tmpdir(), 'amt-state-'));
    // No record exists yet and two sites already list one host: both servers start at once.
    await writeSite(sitesDir, 'p-two', { domains: ['race.example'] });
    await writeSite(sitesDir, 'p-one', { domains: ['race.example'] });
    await writeSite(sitesDir, 'mid', { domains: ['shared.example'] });
    servers = [...(await startAll([startServer(sitesDir, { ...ENV, STATE_DIR: stateDir }), startServer(sitesDir, { ...ENV, STATE_DIR: stateDir })]))];
  }, 60_000);

  afterAll(async () => {
    await Promise.all(servers.map((s) => s.stop()));
    await removeDir(sitesDir);
    await removeDir(stateDir);
  });

  it('two servers started together agree on a host two sites listed before any record existed', async () => {
    const [a, b] = servers;
    const first = await look(a!.port, 'race.example');
    expect(first).toMatch(/^site p-(one|two)$/);
    await holds(a!.port, { 'race.example': first });
    expect(await look(b!.port, 'race.example')).toBe(first);
  }, 30_000);

  it('two servers refuse the same newcomers and hand a dropped host to the same one', async () => {
    const [a, b] = servers;
    await writeSite(sitesDir, 'zz-new', { domains: ['shared.example'] });
    await writeSite(sitesDir, 'aa-new', { domains: ['shared.example'] });
    for (const s of [a!, b!]) await until(s.port, { 'zz-new.localhost': 'site zz-new', 'aa-new.localhost': 'site aa-new' }, 'the newcomers are live');
    for (const s of [a!, b!]) expect(await look(s.port, 'shared.example')).toBe('site mid');
    await editSite(sitesDir, 'mid', (c) => (c.domains = []));
    await until(a!.port, { 'shared.example': 'site aa-new' }, 'server A hands the host over');
    await until(b!.port, { 'shared.example': 'site aa-new' }, 'server B hands it to the same site');
    await holds(a!.port, { 'shared.example': 'site aa-new' });
    expect(await look(b!.port, 'shared.example')).toBe('site aa-new');
  }, 60_000);
});
