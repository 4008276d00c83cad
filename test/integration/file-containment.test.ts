import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile, spawn } from 'node:child_process';
import { lstat, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { copySites, get, removeDir, ROOT, startServer, waitFor, type Response, type RunningServer } from '../helpers/server.ts';

/**
 * Rule 2 of the threat model (docs/security.md): no file outside a site's folder is ever read,
 * even while the site's owner swaps symlinks or renames folders as fast as they can. The outside
 * files carry OUTSIDE so that a single leaked byte of them is visible in a response.
 */
const OUTSIDE = 'OUTSIDE-SECRET-7f3a';
const INSIDE = 'INSIDE-RACE-PAGE';
const DEMO = { email: 'demo@docs.example', password: 'docs-demo-password' };
/** How long each race runs at least: long enough for thousands of link flips, short enough for CI. */
const RACE_MS = 2500;
/** Answers each race collects at least (a loaded machine answers slowly), within RACE_CAP_MS. */
const RACE_MIN_ANSWERS = 80;
const RACE_CAP_MS = 12_000;

let server: RunningServer;
let sitesDir: string;
let outside: string;

const page = (title: string, body: string) => `---\ntitle: ${title}\n---\n\n${body}\n`;

beforeAll(async () => {
  sitesDir = await copySites();
  outside = await mkdtemp(join(tmpdir(), 'amt-outside-'));
  // Files elsewhere on the machine, each a valid page / file / config so that reading it would show.
  await writeFile(join(outside, 'secret.md'), page(OUTSIDE, `${OUTSIDE} page body`));
  await writeFile(join(outside, 'secret.txt'), `${OUTSIDE} plain file\n`);
  await mkdir(join(outside, 'dir'));
  await writeFile(join(outside, 'dir/page.md'), page(OUTSIDE, `${OUTSIDE} in a folder`));
  await writeFile(join(outside, 'dir/file.txt'), `${OUTSIDE} in a folder\n`);
  await writeFile(join(outside, 'site.json'), JSON.stringify({ name: OUTSIDE, domains: [] }));

  const acme = join(sitesDir, 'acme');
  // Static links out of the folder, one of each kind.
  await symlink(join(outside, 'secret.md'), join(acme, 'pages/linked-out.md'));
  await symlink(join(outside, 'dir'), join(acme, 'pages/folder-out'));
  await symlink(join(outside, 'secret.txt'), join(acme, 'public/linked-out.txt'));
  await symlink(join(outside, 'dir'), join(acme, 'public/folder-out'));
  await symlink(join(sitesDir, 'docs/members.json'), join(acme, 'pages/members-of-docs.md'));
  // Links that stay inside are fine.
  await writeFile(join(acme, 'pages/race-inside.md'), page('Inside', INSIDE));
  await symlink('race-inside.md', join(acme, 'pages/linked-in.md'));
  await writeFile(join(acme, 'public/inside.txt'), `${INSIDE}\n`);
  await symlink('inside.txt', join(acme, 'public/linked-in.txt'));
  // Folders the races flip between.
  await mkdir(join(acme, 'pages/racedir-inside'));
  await writeFile(join(acme, 'pages/racedir-inside/page.md'), page('Inside', INSIDE));
  await mkdir(join(acme, 'public/raced-inside'));
  await writeFile(join(acme, 'public/raced-inside/file.txt'), `${INSIDE}\n`);

  for (const folder of ['pages/renamed', 'public/renamed']) {
    await mkdir(join(acme, folder));
    await writeFile(join(acme, folder, 'page.md'), page('Inside', INSIDE));
    await writeFile(join(acme, folder, 'file.txt'), `${INSIDE}\n`);
  }
  await writeFile(join(acme, 'pages/race-file.md'), page('Inside', INSIDE));
  await writeFile(join(acme, 'public/race-file.txt'), `${INSIDE}\n`);

  // acme signs members in from a members.json that is docs' file.
  const config = JSON.parse(await readFile(join(acme, 'site.json'), 'utf8'));
  await writeFile(join(acme, 'site.json'), JSON.stringify({ ...config, auth: { members: true } }));
  await symlink(join(sitesDir, 'docs/members.json'), join(acme, 'members.json'));
  await writeFile(join(acme, 'members-own.json'), JSON.stringify({ members: [] }));

  // A site whose site.json is a link to a config elsewhere.
  await mkdir(join(sitesDir, 'borrowed/pages'), { recursive: true });
  await writeFile(join(sitesDir, 'borrowed/pages/index.md'), page('Borrowed', 'borrowed home'));
  await symlink(join(outside, 'site.json'), join(sitesDir, 'borrowed/site.json'));

  // Every request re-checks the disk, so each flip is seen; the sign-in limit is out of the way.
  server = await startServer(sitesDir, { CONTENT_CHECK_MS: '0', SIGNIN_MAX_FAILURES: '10000' });
});

afterAll(async () => {
  await server?.stop();
  await removeDir(sitesDir);
  await rm(outside, { recursive: true, force: true });
});

/**
 * How a swapper changes one name, over and over, each step atomic (a rename over the name, as
 * git-sync or an editor does it):
 * - `links`: a symlink re-pointed between two targets;
 * - `file-or-link`: a regular file replaced by a symlink to `outside`, and back;
 * - `dir-or-link`: a real folder renamed away and a symlink to `outside` renamed into its place,
 *   and back (the folder is kept next to it as `<name>.dir`).
 */
type Swap = { kind: 'links'; a: string; b: string } | { kind: 'file-or-link'; content: string; outside: string } | { kind: 'dir-or-link'; outside: string };

/** Runs `swap` on `path` in a separate process as fast as it can until stopped; resolves with the number of swaps. */
function startSwapper(path: string, swap: Swap): { stop(): Promise<number> } {
  const script = `
    const fs = require('node:fs');
    const [path, json] = process.argv.slice(1);
    const swap = JSON.parse(json);
    const tmp = path + '.swap';
    const link = (target) => { try { fs.unlinkSync(tmp); } catch {} fs.symlinkSync(target, tmp); fs.renameSync(tmp, path); };
    const steps = {
      // Each cycle ends where it started (the inside target), so a stopped swapper leaves the site as it was.
      'links': [() => link(swap.b), () => link(swap.a)],
      'file-or-link': [() => link(swap.outside), () => { fs.writeFileSync(tmp, swap.content); fs.renameSync(tmp, path); }],
      'dir-or-link': [
        () => { fs.renameSync(path, path + '.dir'); link(swap.outside); },
        () => { fs.renameSync(path, path + '.link'); fs.renameSync(path + '.dir', path); fs.unlinkSync(path + '.link'); },
      ],
    }[swap.kind];
    let swaps = 0, stop = false;
    process.on('SIGTERM', () => { stop = true; });
    (function loop() {
      const until = Date.now() + 20;
      while (Date.now() < until) for (const step of steps) { step(); swaps++; }
      if (stop) { process.stdout.write(String(swaps)); process.exit(0); }
      setImmediate(loop);
    })();`;
  const child = spawn(process.execPath, ['-e', script, path, JSON.stringify(swap)], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout!.on('data', (d) => (out += d.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    async stop() {
      child.kill('SIGTERM');
      await exited;
      return Number(out);
    },
  };
}

/**
 * Requests `path` from `clients` parallel clients for RACE_MS, and on until RACE_MIN_ANSWERS
 * answers are in (at most RACE_CAP_MS); every answer is kept.
 */
async function hammer(path: string, clients = 6): Promise<Response[]> {
  const started = Date.now();
  const answers: Response[] = [];
  const more = () => Date.now() - started < RACE_MS || (answers.length < RACE_MIN_ANSWERS && Date.now() - started < RACE_CAP_MS);
  await Promise.all(
    Array.from({ length: clients }, async () => {
      while (more()) answers.push(await get(server.port, 'acme.example', path));
    }),
  );
  return answers;
}

function tally(answers: Response[]) {
  const counts = { outside: 0, inside: 0, other: 0, statuses: new Map<number, number>() };
  for (const a of answers) {
    counts.statuses.set(a.status, (counts.statuses.get(a.status) ?? 0) + 1);
    if (a.body.includes(OUTSIDE)) counts.outside++;
    else if (a.body.includes(INSIDE)) counts.inside++;
    else counts.other++;
  }
  return counts;
}

describe('links out of a site folder are never followed', () => {
  it.each([
    ['a page that is a link to a file elsewhere', '/linked-out'],
    ['a page below a folder link that leads elsewhere', '/folder-out/page'],
    ['a public file that is a link to a file elsewhere', '/linked-out.txt'],
    ['a public file below a folder link that leads elsewhere', '/folder-out/file.txt'],
  ])('answers 404 for %s (%s), showing nothing of it', async (_kind, path) => {
    const res = await get(server.port, 'acme.example', path);
    expect(res.status).toBe(404);
    expect(res.body).not.toContain(OUTSIDE);
  });

  it('never renders another site\'s members.json as a page', async () => {
    const res = await get(server.port, 'acme.example', '/members-of-docs');
    expect(res.status).toBe(404);
    expect(res.body).not.toContain('scrypt$');
  });

  it.each([
    ['a page', '/linked-in'],
    ['a public file', '/linked-in.txt'],
  ])('still serves %s that is a link to a file inside the site (%s)', async (_kind, path) => {
    const res = await get(server.port, 'acme.example', path);
    expect(res.status).toBe(200);
    expect(res.body).toContain(INSIDE);
  });

  it('does not use a site.json that is a link to a file elsewhere: the site is unavailable, not someone else\'s', async () => {
    const res = await get(server.port, 'borrowed.localhost', '/');
    expect(res.status).toBe(503);
    expect(res.headers['cache-control']).toBe('no-store');
    expect(res.body).not.toContain(OUTSIDE);
    // The log line travels through a pipe: it may arrive a moment after the answer.
    await waitFor(async () => server.logs.some((l) => l.includes('sites/borrowed/site.json') && l.includes('outside the site folder')), 3000);
    // The status page says why, too.
    const status = JSON.parse((await get(server.port, 'localhost', '/_platform/status.json')).body) as { sites: Array<{ id: string; issues: Array<{ reason: string }> }> };
    expect(status.sites.find((s) => s.id === 'borrowed')?.issues).toEqual([expect.objectContaining({ reason: expect.stringContaining('leads outside the site folder') })]);
    expect(JSON.stringify(status)).not.toContain(OUTSIDE);
  });
});

describe('members of another site cannot sign in through a linked members.json', () => {
  /** A browser's sign-in: load the form (cookies and hidden fields), post it with the same cookies. */
  async function signIn(host: string): Promise<number> {
    const form = await get(server.port, host, '/_platform/session/sign-in');
    const cookies = (form.headers['set-cookie'] ?? []).map((c) => c.split(';')[0]).join('; ');
    const fields = Object.fromEntries([...form.body.matchAll(/<input[^>]*type="hidden"[^>]*name="([^"]+)"[^>]*value="([^"]*)"/g)].map((m) => [m[1]!, m[2]!.replaceAll('&amp;', '&')]));
    const body = new URLSearchParams({ ...fields, ...DEMO, next: '/' }).toString();
    return new Promise((resolve, reject) => {
      const req = request(
        { host: '127.0.0.1', port: server.port, path: '/_platform/session/sign-in', method: 'POST', agent: false, headers: { host, origin: `http://${host}`, cookie: cookies, 'content-type': 'application/x-www-form-urlencoded', 'content-length': Buffer.byteLength(body) } },
        (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        },
      );
      req.on('error', reject);
      req.end(body);
    });
  }

  it('signs docs\' member in on docs, and refuses the same credentials on acme, whose members.json links to docs\'', async () => {
    expect(await signIn('docs.example')).toBe(303);
    expect(await signIn('acme.example')).toBe(401);
    // The log line travels through a pipe: it may arrive a moment after the answer.
    await waitFor(async () => server.logs.some((l) => l.includes('sites/acme/members.json') && l.includes('outside the site folder')), 3000);
  });

  it('`sites add-member` refuses to extend a members.json that links to docs\' file, leaving both files as they were', async () => {
    const docsBefore = await readFile(join(sitesDir, 'docs/members.json'), 'utf8');
    const { code, out } = await new Promise<{ code: number | null; out: string }>((resolve) => {
      const child = execFile(process.execPath, [join(ROOT, 'astro-multi-tenant/server/cli/sites.ts'), 'add-member', 'acme', 'new@acme.example'], { cwd: ROOT, env: { ...process.env, SITES_DIR: sitesDir } }, (error, stdout, stderr) =>
        resolve({ code: error ? (error.code as number) : 0, out: stdout + stderr }),
      );
      child.stdin!.end('a long enough password\n');
    });
    expect(code).toBe(1);
    expect(out).toContain('sites/acme/members.json is a link that leads outside the site folder');
    expect((await lstat(join(sitesDir, 'acme/members.json'))).isSymbolicLink()).toBe(true);
    expect(await readFile(join(sitesDir, 'docs/members.json'), 'utf8')).toBe(docsBefore);
  });

  it('refuses them while acme\'s members.json is flipped between its own file and docs\' file', async () => {
    const link = join(sitesDir, 'acme/members.json');
    const swapper = startSwapper(link, { kind: 'links', a: 'members-own.json', b: join(sitesDir, 'docs/members.json') });
    const started = Date.now();
    const statuses: number[] = [];
    // Each attempt costs a password check (scrypt): fewer attempts than page requests, so at least 12.
    const more = () => Date.now() - started < RACE_MS || (statuses.length < 12 && Date.now() - started < RACE_CAP_MS * 2);
    try {
      await Promise.all(
        Array.from({ length: 3 }, async () => {
          while (more()) statuses.push(await signIn('acme.example'));
        }),
      );
    } finally {
      const swaps = await swapper.stop();
      expect(swaps).toBeGreaterThan(100);
    }
    expect(statuses.length).toBeGreaterThanOrEqual(12);
    expect(statuses.filter((s) => s === 303)).toEqual([]);
    expect(statuses.every((s) => s === 401)).toBe(true);
  }, 60_000);
});

describe('a bounded race: names re-pointed between inside and outside while requested', () => {
  const dirs = () => ({ outside: join(outside, 'dir') });
  it.each<[string, string, () => Swap, string]>([
    ['a page link re-pointed', 'pages/race.md', () => ({ kind: 'links', a: 'race-inside.md', b: join(outside, 'secret.md') }), '/race'],
    ['a page file replaced by a link', 'pages/race-file.md', () => ({ kind: 'file-or-link', content: page('Inside', INSIDE), outside: join(outside, 'secret.md') }), '/race-file'],
    ['a folder on the way to a page re-pointed', 'pages/racedir', () => ({ kind: 'links', a: 'racedir-inside', b: join(outside, 'dir') }), '/racedir/page'],
    ['a folder on the way to a page renamed away for a link', 'pages/renamed', () => ({ kind: 'dir-or-link', ...dirs() }), '/renamed/page'],
    ['a public file link re-pointed', 'public/race.txt', () => ({ kind: 'links', a: 'inside.txt', b: join(outside, 'secret.txt') }), '/race.txt'],
    ['a public file replaced by a link', 'public/race-file.txt', () => ({ kind: 'file-or-link', content: `${INSIDE}\n`, outside: join(outside, 'secret.txt') }), '/race-file.txt'],
    ['a folder on the way to a public file re-pointed', 'public/raced', () => ({ kind: 'links', a: 'raced-inside', b: join(outside, 'dir') }), '/raced/file.txt'],
    ['a folder on the way to a public file renamed away for a link', 'public/renamed', () => ({ kind: 'dir-or-link', ...dirs() }), '/renamed/file.txt'],
  ])('never answers with the outside file while %s (%s)', async (_kind, name, swap, path) => {
    const swapper = startSwapper(join(sitesDir, 'acme', name), swap());
    let answers: Response[];
    try {
      answers = await hammer(path);
    } finally {
      const swaps = await swapper.stop();
      expect(swaps, 'the name was swapped many times').toBeGreaterThan(100);
    }
    const counts = tally(answers);
    const seen = `${answers.length} answers: ${counts.outside} outside, ${counts.inside} inside, ${counts.other} other; statuses ${JSON.stringify([...counts.statuses])}`;
    // The race was real: both the inside file and a refusal were answered...
    expect(counts.inside, seen).toBeGreaterThan(0);
    expect(counts.statuses.get(404) ?? 0, seen).toBeGreaterThan(0);
    // ...and not one answer carried a byte of the outside file.
    expect(counts.outside, seen).toBe(0);
    expect([...counts.statuses.keys()].every((s) => s === 200 || s === 404), seen).toBe(true);
  }, 60_000);
});
