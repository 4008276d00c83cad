import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { chmod, mkdir, mkdtemp, readFile, rm, stat, symlink, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createFileClaimStore } from '../../astro-multi-tenant/server/tenant/host-claims.ts';

let root: string;
let stateDir: string;
const sitesDir = '/srv/sites';

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'amt-claims-'));
  stateDir = join(root, 'state');
});

afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('the file claim store', () => {
  it('creates a private folder (0700) and a private file (0600), and keeps the records for the next process', async () => {
    const store = createFileClaimStore({ dir: stateDir, sitesDir });
    expect(await store.claim(new Map([['shop.example', 'acme']]))).toEqual(new Map([['shop.example', 'acme']]));
    expect((await stat(stateDir)).mode & 0o777).toBe(0o700);
    expect((await stat(store.location)).mode & 0o777).toBe(0o600);
    const next = createFileClaimStore({ dir: stateDir, sitesDir });
    expect(await next.load()).toEqual(new Map([['shop.example', 'acme']]));
    expect(JSON.parse(await readFile(store.location, 'utf8')).claims['shop.example']).toMatchObject({ site: 'acme', since: expect.stringMatching(/^\d{4}-/) });
  });

  it('keeps each sites folder\'s records apart', async () => {
    await createFileClaimStore({ dir: stateDir, sitesDir: '/srv/one' }).claim(new Map([['shop.example', 'acme']]));
    expect(await createFileClaimStore({ dir: stateDir, sitesDir: '/srv/two' }).load()).toEqual(new Map());
  });

  it('records the first claim of a host and tells every later claimant who holds it', async () => {
    const store = createFileClaimStore({ dir: stateDir, sitesDir });
    await store.claim(new Map([['shop.example', 'zzz']]));
    expect(await store.claim(new Map([['shop.example', 'aaa'], ['new.example', 'aaa']]))).toEqual(new Map([['shop.example', 'zzz'], ['new.example', 'aaa']]));
  });

  it('releases a record only for the site it names (compare and delete)', async () => {
    const store = createFileClaimStore({ dir: stateDir, sitesDir });
    await store.claim(new Map([['shop.example', 'zzz']]));
    await store.release(new Map([['shop.example', 'aaa']]));
    expect(await store.load()).toEqual(new Map([['shop.example', 'zzz']]));
    await store.release(new Map([['shop.example', 'zzz']]));
    expect(await store.load()).toEqual(new Map());
  });

  it('gives one owner to a host claimed through many stores at once (each with its own lock attempts, as processes have), and tells each the same one', async () => {
    for (let round = 0; round < 5; round++) {
      const host = `race-${round}.example`;
      const stores = Array.from({ length: 8 }, () => createFileClaimStore({ dir: stateDir, sitesDir }));
      const answers = await Promise.all(stores.map((s, i) => s.claim(new Map([[host, `site-${i}`]]))));
      const owners = new Set(answers.map((a) => a.get(host)));
      expect(owners.size).toBe(1);
      expect((await stores[0]!.load()).get(host)).toBe([...owners][0]);
    }
  });

  it('changes its version whenever a record is added or removed', async () => {
    const store = createFileClaimStore({ dir: stateDir, sitesDir });
    const v0 = await store.version();
    await store.claim(new Map([['a.example', 'a']]));
    const v1 = await store.version();
    await store.release(new Map([['a.example', 'a']]));
    const v2 = await store.version();
    expect(new Set([v0, v1, v2]).size).toBe(3);
  });

  it('takes over a lock left by a process that died holding it', async () => {
    const store = createFileClaimStore({ dir: stateDir, sitesDir, staleLockMs: 1000, lockTimeoutMs: 3000 });
    await store.load();
    const lock = `${store.location}.lock`;
    await writeFile(lock, '999999');
    const old = new Date(Date.now() - 5000);
    await utimes(lock, old, old);
    expect(await store.claim(new Map([['a.example', 'a']]))).toEqual(new Map([['a.example', 'a']]));
  });

  it.each([
    ['a folder others may read and write (0755)', async () => { await mkdir(stateDir, { mode: 0o700 }); await chmod(stateDir, 0o755); }, /has mode 755/],
    ['a folder that is a symlink', async () => { await mkdir(join(root, 'real'), { mode: 0o700 }); await symlink(join(root, 'real'), stateDir); }, /is not a folder/],
  ])('refuses %s, naming STATE_DIR', async (_name, prepare, reason) => {
    await prepare();
    const store = createFileClaimStore({ dir: stateDir, sitesDir });
    await expect(store.load()).rejects.toMatchObject({ code: 'CONFIG_INVALID', message: expect.stringMatching(reason) });
    await expect(store.claim(new Map([['a.example', 'a']]))).rejects.toMatchObject({ code: 'CONFIG_INVALID', message: expect.stringContaining('STATE_DIR') });
  });

  it('refuses a folder or a records file that belongs to another user', async () => {
    const me = process.getuid!();
    await expect(createFileClaimStore({ dir: stateDir, sitesDir, uid: me + 1 }).load()).rejects.toMatchObject({ code: 'CONFIG_INVALID', message: expect.stringMatching(/belongs to uid/) });
    const store = createFileClaimStore({ dir: stateDir, sitesDir });
    await store.claim(new Map([['a.example', 'a']]));
    await chmod(store.location, 0o644);
    await expect(createFileClaimStore({ dir: stateDir, sitesDir }).load()).rejects.toMatchObject({ code: 'CONFIG_INVALID', message: expect.stringMatching(/not a private regular file/) });
  });
});
