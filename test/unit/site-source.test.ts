import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import * as fs from 'node:fs/promises';
import { mkdir, mkdtemp, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createFolderSiteSource, type SourceFs } from '../../astro-multi-tenant/server/sites/site-source.ts';

let root: string;
let sitesDir: string;

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'amt-source-'));
  sitesDir = join(root, 'sites');
  await mkdir(sitesDir);
});

afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

async function site(id: string, dir = sitesDir) {
  await mkdir(join(dir, id), { recursive: true });
  await writeFile(join(dir, id, 'site.json'), JSON.stringify({ name: id }));
}

/** The real file system, counting calls by kind. */
function countingFs() {
  const calls = { stat: 0, readdir: 0, realpath: 0 };
  const wrapped: SourceFs = {
    stat: (p) => (calls.stat++, fs.stat(p)),
    readdir: (p, o) => (calls.readdir++, fs.readdir(p, o)),
    realpath: (p) => (calls.realpath++, fs.realpath(p)),
  };
  return { fs: wrapped, calls };
}

describe('the folder site source', () => {
  it('lists plain and symlinked site folders as sites, sorted', async () => {
    await site('zeta');
    await site('alpha');
    await site('outside', join(root, 'elsewhere'));
    await symlink(join(root, 'elsewhere', 'outside'), join(sitesDir, 'linked'));
    expect(await createFolderSiteSource(sitesDir).listSiteIds()).toEqual(['alpha', 'linked', 'zeta']);
  });

  it('does not list a dangling symlink, a symlink to a file, a file, a dot-folder or an invalid id as a site', async () => {
    await site('real');
    await symlink(join(root, 'nowhere'), join(sitesDir, 'dangling'));
    await writeFile(join(root, 'a-file'), 'x');
    await symlink(join(root, 'a-file'), join(sitesDir, 'to-file'));
    await writeFile(join(sitesDir, 'plain-file'), 'x');
    await site('.hidden');
    await site('Bad_Id');
    const source = createFolderSiteSource(sitesDir);
    expect(await source.listSiteIds()).toEqual(['real']);
    // `sites check` still sees the invalid name, to report it.
    expect(await source.listEntries()).toEqual(['Bad_Id', 'dangling', 'real', 'to-file']);
  });

  it('stats only symlinks while listing: plain folders are known from the listing', async () => {
    for (const id of ['a', 'b', 'c', 'd']) await site(id);
    await site('outside', join(root, 'elsewhere'));
    await symlink(join(root, 'elsewhere', 'outside'), join(sitesDir, 'linked'));
    const { fs: counted, calls } = countingFs();
    expect(await createFolderSiteSource(sitesDir, counted).listSiteIds()).toHaveLength(5);
    expect(calls).toEqual({ stat: 1, readdir: 1, realpath: 0 });
  });

  it.each([
    ['a site folder added', () => site('added')],
    ['a site folder removed', () => rm(join(sitesDir, 'one'), { recursive: true })],
    ['a site folder renamed', () => rename(join(sitesDir, 'one'), join(sitesDir, 'uno'))],
    ['a symlinked site folder added', async () => {
      await site('outside', join(root, 'elsewhere'));
      await symlink(join(root, 'elsewhere', 'outside'), join(sitesDir, 'linked'));
    }],
  ])('changes its listing version when %s', async (_name, change) => {
    await site('one');
    const source = createFolderSiteSource(sitesDir);
    const before = await source.listingVersion();
    await change();
    expect(await source.listingVersion()).not.toBe(before);
  });

  it('keeps its listing version when a site.json is edited in place (that is what config versions are for)', async () => {
    await site('one');
    const source = createFolderSiteSource(sitesDir);
    const before = await source.listingVersion();
    await writeFile(join(sitesDir, 'one', 'site.json'), JSON.stringify({ name: 'changed' }));
    expect(await source.listingVersion()).toBe(before);
  });

  it.each([
    ['rewritten in place', (file: string) => writeFile(file, JSON.stringify({ name: 'one', domains: ['x.example'] }))],
    ['replaced by rename', async (file: string) => {
      await writeFile(`${file}.tmp`, JSON.stringify({ name: 'one' }));
      await rename(`${file}.tmp`, file);
    }],
  ])('changes a config version when site.json is %s', async (_name, change) => {
    await site('one');
    const source = createFolderSiteSource(sitesDir);
    const before = await source.configVersion('one');
    expect(before).not.toBeNull();
    await change(join(sitesDir, 'one', 'site.json'));
    expect(await source.configVersion('one')).not.toBe(before);
  });

  it('reads a config with its version, and answers null for a folder without site.json or no folder', async () => {
    await site('one');
    await mkdir(join(sitesDir, 'bare'));
    const source = createFolderSiteSource(sitesDir);
    const read = await source.readConfig('one');
    expect(read?.text).toBe(JSON.stringify({ name: 'one' }));
    expect(read?.version).toBe(await source.configVersion('one'));
    expect(await source.readConfig('bare')).toBeNull();
    expect(await source.readConfig('nope')).toBeNull();
    expect(await source.configVersion('bare')).toBeNull();
  });

  it('reads a symlinked site\'s files through the link, and resolves its real folder', async () => {
    await site('outside', join(root, 'elsewhere'));
    await symlink(join(root, 'elsewhere', 'outside'), join(sitesDir, 'linked'));
    const source = createFolderSiteSource(sitesDir);
    expect((await source.readConfig('linked'))?.text).toContain('outside');
    expect(source.siteDir('linked')).toBe(join(sitesDir, 'linked'));
    expect(await source.realSiteDir('linked')).toBe(await fs.realpath(join(root, 'elsewhere', 'outside')));
  });

  it.each([
    ['a link to a file outside the site folder', 'outside'],
    ['larger than 256 KiB', 'large'],
  ])('refuses to read a site.json that is %s, saying why, with empty text no schema accepts', async (_kind, what) => {
    await mkdir(join(sitesDir, 'tricky'));
    await writeFile(join(root, 'foreign.json'), JSON.stringify({ name: 'foreign' }));
    if (what === 'outside') await symlink(join(root, 'foreign.json'), join(sitesDir, 'tricky', 'site.json'));
    else await writeFile(join(sitesDir, 'tricky', 'site.json'), JSON.stringify({ name: 'x'.repeat(300 * 1024) }));
    const source = createFolderSiteSource(sitesDir);
    const read = await source.readConfig('tricky');
    expect(read?.text).toBe('');
    expect(read?.refused).toMatch(what === 'outside' ? /leads outside the site folder/ : /over the limit of 256 KiB/);
    expect(read?.version).toBe(await source.configVersion('tricky'));
  });

  it('says why an id names no site', async () => {
    await site('one');
    await mkdir(join(sitesDir, 'bare'));
    const source = createFolderSiteSource(sitesDir);
    expect(await source.siteProblem('one')).toBeUndefined();
    expect(await source.siteProblem('nope')).toBe(`no site folder ${join(sitesDir, 'nope')}`);
    expect(await source.siteProblem('bare')).toBe(`${join(sitesDir, 'bare')} has no site.json, so it is not a site`);
  });
});
