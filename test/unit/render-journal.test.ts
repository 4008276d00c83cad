import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdir, mkdtemp, readFile, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRenderJournal } from '../../astro-multi-tenant/server/sites/render-journal.ts';

const key = (c: string) => c.repeat(64);

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
    expect(await readFile(join(dir, 'journals', '4242'), 'utf8')).toBe(`${key('a')}\n${key('b')}\n`);
    journal.end(key('a'));
    expect(await readFile(join(dir, 'journals', '4242'), 'utf8')).toBe(`${key('b')}\n`);
    journal.end(key('b'));
    expect(await readFile(join(dir, 'journals', '4242'), 'utf8')).toBe('');
    expect(await readdir(join(dir, 'journals'))).toEqual(['4242']);
  });

  it('gives the keys of journals whose process is gone, once, and leaves live ones and its own', async () => {
    await mkdir(join(dir, 'journals'));
    await writeFile(join(dir, 'journals', '101'), `${key('c')}\n${key('d')}\nnot a key\n${'e'.repeat(63)}\n`);
    await writeFile(join(dir, 'journals', '102'), `${key('f')}\n`);
    await writeFile(join(dir, 'journals', 'notes'), `${key('0')}\n`);
    const alive = new Set([102, 7]);
    const journal = createRenderJournal({ dir, pid: 7, isAlive: (pid) => alive.has(pid) });
    journal.begin(key('9'));
    expect(journal.takeCrashed().sort()).toEqual([key('c'), key('d')]);
    expect(journal.takeCrashed()).toEqual([]);
    expect((await readdir(join(dir, 'journals'))).sort()).toEqual(['102', '7', 'notes']);
    alive.delete(102);
    expect(journal.takeCrashed()).toEqual([key('f')]);
  });

  it('never writes through a link planted at its file, and lets renders go on without it', async () => {
    await mkdir(join(dir, 'journals'));
    const target = join(dir, 'elsewhere');
    await writeFile(target, 'keep');
    await symlink(target, join(dir, 'journals', '4343'));
    const journal = createRenderJournal({ dir, pid: 4343 });
    expect(journal.begin(key('a'))).toBe(false);
    journal.end(key('a'));
    expect(await readFile(target, 'utf8')).toBe('keep');
  });

  it('reads a planted journal without following a link to another file', async () => {
    await mkdir(join(dir, 'journals'));
    const target = join(dir, 'secret');
    await writeFile(target, `${key('a')}\n`);
    await symlink(target, join(dir, 'journals', '555'));
    const journal = createRenderJournal({ dir, pid: 1, isAlive: () => false });
    expect(journal.takeCrashed()).toEqual([]);
  });
});
