import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, readdir, rename, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { copySites, removeDir, ROOT } from '../helpers/server.ts';

/** `timeoutMs`: SIGTERM after that long (a start.ts that does not refuse would otherwise serve on). */
function run(script: string, args: string[], env: Record<string, string>, timeoutMs?: number) {
  const result = spawnSync(process.execPath, [join(ROOT, 'astro-multi-tenant/server/cli', script), ...args], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    encoding: 'utf8',
    timeout: timeoutMs,
  });
  return { code: result.status, out: result.stdout + result.stderr };
}

let sitesDir: string;
let cssDir: string;

beforeAll(async () => {
  sitesDir = await copySites();
  cssDir = await mkdtemp(join(tmpdir(), 'amt-css-'));
});

afterAll(async () => {
  await removeDir(sitesDir);
  await removeDir(cssDir);
});

describe('npm run sites', () => {
  it('check passes on the sample sites', () => {
    const { code, out } = run('sites.ts', ['check'], { SITES_DIR: join(ROOT, 'sites') });
    expect(out).toContain('5 site(s) checked, 0 with errors');
    expect(code).toBe(0);
  });

  it('check exits non-zero and names file, field and reason for a broken folder', () => {
    const { code, out } = run('sites.ts', ['check'], { SITES_DIR: join(ROOT, 'test/fixtures/broken-sites') });
    expect(code).toBe(1);
    expect(out).toContain('FAIL  broken');
    expect(out).toContain('sites/broken/site.json: name: must not be empty');
    expect(out).toContain('sites/broken/site.json: theme.primary: must be a CSS color');
    expect(out).toContain('unknown field(s) "colour"');
  });

  it('new scaffolds a site that passes check, and refuses to overwrite one', async () => {
    const created = run('sites.ts', ['new', 'fresh-site', '--domain', 'Fresh.Example'], { SITES_DIR: sitesDir });
    expect(created.code).toBe(0);
    const config = JSON.parse(await readFile(join(sitesDir, 'fresh-site/site.json'), 'utf8'));
    expect(config.domains).toEqual(['fresh.example']);
    expect(run('sites.ts', ['check'], { SITES_DIR: sitesDir }).code).toBe(0);
    const again = run('sites.ts', ['new', 'fresh-site'], { SITES_DIR: sitesDir });
    expect(again.code).toBe(1);
    expect(again.out).toContain('already exists');
    expect(run('sites.ts', ['new', 'Bad_Id'], { SITES_DIR: sitesDir }).code).toBe(2);
  });

  it('start refuses an INSTANCES that is neither a count nor max, naming the variable, before starting PM2', () => {
    const started = run('start.ts', [], { SITES_DIR: sitesDir, INSTANCES: 'abc', REDIS_URL: '' }, 30_000);
    expect(started.code).toBe(78);
    expect(started.out).toContain('INSTANCES: "abc" must be a number of workers or max');
    expect(started.out).not.toContain('PM2');
  });

  it('start refuses a WORKER_HEAP_MB or MAX_MEMORY_RESTART PM2 would not read, naming the variable', () => {
    const heap = run('start.ts', [], { SITES_DIR: sitesDir, REDIS_URL: '', WORKER_HEAP_MB: '1.5G' }, 30_000);
    expect(heap.code).toBe(78);
    expect(heap.out).toContain('WORKER_HEAP_MB: "1.5G" must be a whole number of MiB');
    const restart = run('start.ts', [], { SITES_DIR: sitesDir, REDIS_URL: '', MAX_MEMORY_RESTART: '1GB' }, 30_000);
    expect(restart.code).toBe(78);
    expect(restart.out).toContain('MAX_MEMORY_RESTART: "1GB" must be bytes');
  });

  it('new prints the custom domain on the server\'s port, and as not yet live while it awaits its DNS check', () => {
    const plain = run('sites.ts', ['new', 'port-site', '--domain', 'port.example'], { SITES_DIR: sitesDir, PORT: '4321' });
    expect(plain.code).toBe(0);
    expect(plain.out).toContain('live at http://port-site.localhost:4321/ and http://port.example:4321/\n');
    const checked = run('sites.ts', ['new', 'dns-site', '--domain', 'dns.example'], { SITES_DIR: sitesDir, PORT: '80', DOMAIN_VERIFICATION: 'dns', DOMAIN_TOKEN_SECRET: 'x'.repeat(32) });
    expect(checked.code).toBe(0);
    expect(checked.out).toContain('live at http://dns-site.localhost/\nhttp://dns.example/ once its TXT record is in place: npm run sites -- domains dns-site\n');
  });

  it('check reports a domain claimed by two sites', async () => {
    const dir = await copySites();
    const { writeFile } = await import('node:fs/promises');
    const docs = JSON.parse(await readFile(join(dir, 'docs/site.json'), 'utf8'));
    docs.domains.push('acme.example');
    await writeFile(join(dir, 'docs/site.json'), JSON.stringify(docs));
    const { code, out } = run('sites.ts', ['check'], { SITES_DIR: dir });
    expect(code).toBe(1);
    expect(out).toContain('host "acme.example" is already claimed by site "acme"');
    await removeDir(dir);
  });

  it('list shows each site with its domains, platform subdomain and aliases', () => {
    const { code, out } = run('sites.ts', ['list'], { SITES_DIR: join(ROOT, 'sites'), PLATFORM_DOMAIN: 'sites.test' });
    expect(code).toBe(0);
    expect(out).toContain('acme.example, acme.sites.test');
    expect(out).toContain('aliases: www.acme.example, acme-tools.example');
    expect(out).toContain('blog.sites.test');
  });
});

describe('npm run css', () => {
  it('builds one site\'s stylesheet from that site\'s pages and the shared components only', async () => {
    const blog = run('css.ts', ['blog'], { SITES_DIR: sitesDir, CSS_DIR: cssDir });
    const acme = run('css.ts', ['acme'], { SITES_DIR: sitesDir, CSS_DIR: cssDir });
    expect(blog.code).toBe(0);
    expect(acme.code).toBe(0);
    const read = async (id: string) => {
      const manifest = JSON.parse(await readFile(join(cssDir, id, 'manifest.json'), 'utf8'));
      expect(manifest.file).toMatch(/^site\.[a-f0-9]{16}\.css$/);
      return readFile(join(cssDir, id, manifest.file), 'utf8');
    };
    const blogCss = await read('blog');
    const acmeCss = await read('acme');
    // `ring-accent` appears only in the blog's Markdown; `bg-primary` in a shared component.
    expect(blogCss).toContain('.ring-accent');
    expect(acmeCss).not.toContain('.ring-accent');
    expect(blogCss).toContain('.bg-primary');
    expect(acmeCss).toContain('.bg-primary');
    expect(await readdir(join(cssDir))).toEqual(expect.arrayContaining(['acme', 'blog']));
  });

  it('refuses a site id with no site folder, naming the folder, and builds nothing', async () => {
    const { code, out } = run('css.ts', ['blog', 'no-such-site'], { SITES_DIR: sitesDir, CSS_DIR: cssDir });
    expect(code).toBe(2);
    expect(out).toContain(`css: site "no-such-site" does not exist: no site folder ${join(sitesDir, 'no-such-site')}`);
    expect(await readdir(cssDir)).not.toContain('no-such-site');
  });

  it('builds the stylesheet of a symlinked site folder, as the server serves it, both for all sites and by id', async () => {
    const dir = await copySites();
    const outside = await mkdtemp(join(tmpdir(), 'amt-linked-'));
    const out = await mkdtemp(join(tmpdir(), 'amt-css-'));
    try {
      // The blog lives elsewhere and is linked in, as a shared volume or a checkout would be.
      await rename(join(dir, 'blog'), join(outside, 'blog'));
      await symlink(join(outside, 'blog'), join(dir, 'linked-blog'));
      const all = run('css.ts', [], { SITES_DIR: dir, CSS_DIR: out });
      expect(all.out).toContain('css: linked-blog →');
      expect(all.code).toBe(0);
      const manifest = JSON.parse(await readFile(join(out, 'linked-blog', 'manifest.json'), 'utf8'));
      expect(await readFile(join(out, 'linked-blog', manifest.file), 'utf8')).toContain('.ring-accent');
      const one = run('css.ts', ['linked-blog'], { SITES_DIR: dir, CSS_DIR: out });
      expect(one.code).toBe(0);
      expect(one.out).toContain('css: linked-blog →');
    } finally {
      await removeDir(dir);
      await removeDir(outside);
      await removeDir(out);
    }
  });

  it('rejects a site id that is not one', () => {
    const { code, out } = run('css.ts', ['../etc'], { SITES_DIR: sitesDir, CSS_DIR: cssDir });
    expect(code).toBe(2);
    expect(out).toContain('not a valid site id');
  });
});
