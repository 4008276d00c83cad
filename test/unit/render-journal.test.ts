import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { chmod, mkdir, mkdtemp, readFile, readdir, rm, symlink, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRenderJournal } from '../../astro-multi-tenant/server/sites/render-journal.ts';

const key = (c: string) => c.repeat(64);
const journalOf = async (dir: string, pid: number) => (await readdir(join(dir, 'journals'))).filter((name) => name.startsWith(`${pid}-`));

describe('the render journal', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'amt-journal-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('names exactly the renders in flight, in one file of this process rewritten in place', async () => {
    const journal = createRenderJournal({ dir, pid: 4242 });
    expect(journal.begin(key('a'))).toBe(true);
    expect(journal.begin(key('b'))).toBe(true);
    const [name] = await journalOf(dir, 4242);
    expect(name).toMatch(/^4242-[a-f0-9]{16}$/);
    expect(await readFile(join(dir, 'journals', name!), 'utf8')).toBe(`${key('a')}\n${key('b')}\n`);
    journal.end(key('a'));
    expect(await readFile(join(dir, 'journals', name!), 'utf8')).toBe(`${key('b')}\n`);
    journal.end(key('b'));
    expect(await readFile(join(dir, 'journals', name!), 'utf8')).toBe('');
    expect(await readdir(join(dir, 'journals'))).toEqual([name]);
  });

  it('keeps a text named while a second render of the same text still runs', async () => {
    const journal = createRenderJournal({ dir, pid: 4747 });
    journal.begin(key('a'));
    journal.begin(key('a'));
    journal.end(key('a'));
    const [name] = await journalOf(dir, 4747);
    expect(await readFile(join(dir, 'journals', name!), 'utf8')).toBe(`${key('a')}\n`);
    journal.end(key('a'));
    expect(await readFile(join(dir, 'journals', name!), 'utf8')).toBe('');
  });

  it('gives the keys of journals whose process is gone, once, and leaves live ones and its own', async () => {
    await mkdir(join(dir, 'journals'), { mode: 0o700 });
    await writeFile(join(dir, 'journals', '101-00000000000000aa'), `${key('c')}\n${key('d')}\nnot a key\n${'e'.repeat(63)}\n`);
    await writeFile(join(dir, 'journals', '102-00000000000000bb'), `${key('f')}\n`);
    await writeFile(join(dir, 'journals', 'notes'), `${key('0')}\n`);
    const alive = new Set([102, 7]);
    const journal = createRenderJournal({ dir, pid: 7, isAlive: (pid) => alive.has(pid) });
    journal.begin(key('9'));
    expect(journal.takeCrashed().sort()).toEqual([key('c'), key('d')]);
    expect(journal.takeCrashed()).toEqual([]);
    expect((await readdir(join(dir, 'journals'))).filter((n) => !n.startsWith('7-')).sort()).toEqual(['102-00000000000000bb', 'notes']);
    alive.delete(102);
    expect(journal.takeCrashed()).toEqual([key('f')]);
    expect(await journalOf(dir, 7)).toHaveLength(1);
  });

  it('takes the journal a dead process with this same pid left (a restarted container), and never truncates it first', async () => {
    await mkdir(join(dir, 'journals'), { mode: 0o700 });
    await writeFile(join(dir, 'journals', '1-0123456789abcdef'), `${key('a')}\n`);
    const journal = createRenderJournal({ dir, pid: 1, isAlive: () => true });
    expect(journal.begin(key('b'))).toBe(true);
    expect(journal.takeCrashed()).toEqual([key('a')]);
    expect(await journalOf(dir, 1)).toHaveLength(1);
  });

  it('starts a new file when its file is removed while open, so the keys are never written nowhere', async () => {
    const journal = createRenderJournal({ dir, pid: 4545 });
    journal.begin(key('a'));
    const [first] = await journalOf(dir, 4545);
    await unlink(join(dir, 'journals', first!));
    expect(journal.begin(key('b'))).toBe(true);
    const [second] = await journalOf(dir, 4545);
    expect(second).not.toBe(first);
    expect(await readFile(join(dir, 'journals', second!), 'utf8')).toBe(`${key('a')}\n${key('b')}\n`);
  });

  it('uses no journals folder that group or others can write, and tries again later', async () => {
    await mkdir(join(dir, 'journals'));
    await chmod(join(dir, 'journals'), 0o777);
    await writeFile(join(dir, 'journals', '101-00000000000000aa'), `${key('c')}\n`);
    let now = 0;
    const journal = createRenderJournal({ dir, pid: 4646, isAlive: () => false, now: () => now });
    expect(journal.begin(key('a'))).toBe(false);
    expect(journal.takeCrashed()).toEqual([]);
    await chmod(join(dir, 'journals'), 0o700);
    expect(journal.begin(key('b'))).toBe(false);
    now = 60_001;
    expect(journal.begin(key('c'))).toBe(true);
  });

  it('never writes through a link planted at its folder, and lets renders go on without it', async () => {
    const target = join(dir, 'elsewhere');
    await mkdir(target, { mode: 0o700 });
    await symlink(target, join(dir, 'journals'));
    const journal = createRenderJournal({ dir, pid: 4343 });
    expect(journal.begin(key('a'))).toBe(false);
    journal.end(key('a'));
    expect(await readdir(target)).toEqual([]);
  });

  it('reads no planted journal that is a link to another file', async () => {
    await mkdir(join(dir, 'journals'), { mode: 0o700 });
    const target = join(dir, 'secret');
    await writeFile(target, `${key('a')}\n`);
    await symlink(target, join(dir, 'journals', '555-00000000000000aa'));
    const journal = createRenderJournal({ dir, pid: 1, isAlive: () => false });
    expect(journal.takeCrashed()).toEqual([]);
  });
});
