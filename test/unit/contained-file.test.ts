import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, realpath, rename, rm, symlink, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { isWithin, openContained, readContainedText, refusalReason } from '../../astro-multi-tenant/server/sites/contained-file.ts';
import { useContentIo } from '../../astro-multi-tenant/server/sites/content-fs.ts';

let root: string;
let site: string;

beforeAll(async () => {
  root = await realpath(await mkdtemp(join(tmpdir(), 'amt-contained-')));
  site = join(root, 'site');
  await mkdir(join(site, 'pages/sub'), { recursive: true });
  await mkdir(join(root, 'outside'));
  await writeFile(join(site, 'pages/page.md'), 'inside page');
  await writeFile(join(site, 'pages/sub/deep.md'), 'deep page');
  await writeFile(join(root, 'outside/secret.md'), 'OUTSIDE SECRET');
  await writeFile(join(root, 'site-other.md'), 'OUTSIDE SECRET next door');
  await symlink(join(root, 'outside/secret.md'), join(site, 'pages/link-out.md'));
  await symlink(join(root, 'outside'), join(site, 'pages/dir-out'));
  await symlink('../../site-other.md', join(site, 'pages/prefix-sibling.md'));
  await symlink('page.md', join(site, 'pages/link-in.md'));
  await symlink('sub', join(site, 'pages/dir-in'));
  await promisify(execFile)('mkfifo', [join(site, 'pages/pipe.md')]);
  await promisify(execFile)('mkfifo', [join(root, 'outside/pipe.md')]);
  await symlink(join(root, 'outside/pipe.md'), join(site, 'pages/pipe-out.md'));
  // 700 MB that take no disk: a sparse file.
  await writeFile(join(site, 'pages/huge.md'), '');
  await truncate(join(site, 'pages/huge.md'), 700 * 1024 * 1024);
});

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

const read = (name: string, maxBytes = 1024 * 1024) => readContainedText(join(site, 'pages', name), site, { maxBytes });

// Every rule holds whichever way the file calls are made (CONTENT_IO, sites/content-fs.ts).
describe.each(['sync', 'thread-pool'] as const)('with CONTENT_IO=%s', (mode) => {
  beforeAll(() => useContentIo(mode));
  afterAll(() => useContentIo('sync'));

  describe('readContainedText: only files inside the folder are read', () => {
    it.each([
      ['a file', 'page.md', 'inside page'],
      ['a link that stays inside', 'link-in.md', 'inside page'],
      ['a file below a folder link that stays inside', 'dir-in/deep.md', 'deep page'],
    ])('reads %s', async (_kind, name, text) => {
      expect(await read(name)).toMatchObject({ kind: 'text', text });
    });

    it.each([
      ['a link to a file elsewhere', 'link-out.md'],
      ['a file below a folder link that leads elsewhere', 'dir-out/secret.md'],
      ['a link to a sibling whose name starts like the folder ("site-other")', 'prefix-sibling.md'],
      ['a link to a FIFO elsewhere (without blocking on it)', 'pipe-out.md'],
    ])('refuses %s as outside, unread', async (_kind, name) => {
      const result = await read(name);
      expect(result).toEqual({ kind: 'refused', reason: 'outside' });
      expect(refusalReason({ reason: 'outside' })).toContain('leads outside the site folder');
    });

    it('refuses a FIFO inside the folder as not a file, without blocking on it', async () => {
      expect(await read('pipe.md')).toEqual({ kind: 'refused', reason: 'not-a-file' });
    });

    it('refuses a folder as not a file', async () => {
      expect(await read('sub')).toEqual({ kind: 'refused', reason: 'not-a-file' });
    });

    it('answers missing for a name with nothing behind it, or a folder on the way that is gone', async () => {
      expect(await read('nope.md')).toEqual({ kind: 'missing' });
      expect(await read('gone/page.md')).toEqual({ kind: 'missing' });
      expect(await read('page.md/x')).toEqual({ kind: 'missing' });
    });
  });

  describe('readContainedText: sizes are checked before reading', () => {
    it('refuses a 700 MB sparse file by its descriptor\'s size, without reading it', async () => {
      const before = process.memoryUsage().rss;
      const started = performance.now();
      const result = await read('huge.md');
      expect(result).toEqual({ kind: 'refused', reason: 'too-large', size: 700 * 1024 * 1024, limit: 1024 * 1024 });
      // Reading 700 MB of zeroes takes far longer and far more memory than an fstat.
      expect(performance.now() - started).toBeLessThan(1000);
      expect(process.memoryUsage().rss - before).toBeLessThan(50 * 1024 * 1024);
      expect(refusalReason(result as { reason: 'too-large'; size: number; limit: number })).toBe('is 734,003,200 bytes, over the limit of 1 MiB (1,048,576 bytes)');
    });

    it.each([
      [10, 'text'],
      [11, 'text'],
      [9, 'refused'],
    ])('with a limit of %i bytes, a 10-byte file is %s', async (limit, kind) => {
      await writeFile(join(site, 'pages/ten.md'), '0123456789');
      expect((await read('ten.md', limit)).kind).toBe(kind);
    });
  });

  describe('openContained: the descriptor is the file that was checked', () => {
    it('keeps reading the checked file through its descriptor path after the name is swapped for a link out', async () => {
      const name = join(site, `pages/swapped-${mode}.md`);
      await writeFile(name, 'checked content');
      const opened = await openContained(name, site);
      if (opened.kind !== 'open') throw new Error(`not opened: ${JSON.stringify(opened)}`);
      try {
        await symlink(join(root, 'outside/secret.md'), `${name}.tmp`);
        await rename(`${name}.tmp`, name);
        expect(await readFile(name, 'utf8')).toBe('OUTSIDE SECRET');
        // What a library given the descriptor path (send) reads: still the checked file.
        expect(await readFile(opened.file.descriptorPath, 'utf8')).toBe('checked content');
        expect(opened.file.realPath).toBe(name);
      } finally {
        await opened.file.close();
      }
    });
  });
});

describe('isWithin', () => {
  it.each([
    ['/srv/sites/a', '/srv/sites/a/pages/x.md', true],
    ['/srv/sites/a', '/srv/sites/a', false],
    ['/srv/sites/a', '/srv/sites/ab/x.md', false],
    ['/srv/sites/a', '/srv/sites/x.md', false],
    ['/srv/sites/a/', '/srv/sites/a/x.md', true],
  ])('%s contains %s: %s', (folder, path, inside) => {
    expect(isWithin(folder, path)).toBe(inside);
  });
});
