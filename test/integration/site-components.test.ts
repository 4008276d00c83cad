import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ROOT, copySites, get, removeDir, startServer, waitFor, type RunningServer } from '../helpers/server.ts';
import { startCluster, type RunningCluster } from '../helpers/cluster.ts';
import { redisForTests } from '../helpers/redis.ts';
import { eventually, freshnessDeadlineMs } from '../helpers/eventually.ts';

/**
 * Sites' own Astro components and layouts (issue 15), compiled for real by the server from the
 * site folder, over HTTP. `lab` is on a plan with "components": true; `plain` is on the file's
 * default plan, which does not allow them.
 */
const CONTENT_CHECK_MS = 500;
/**
 * A component edit: two content checks and the loaded-machine margin (freshnessDeadlineMs), plus
 * one compile of the edited file in the compiler's child process on each worker (a few ms idle,
 * up to ~1 s on this 2-core VM under a parallel test load).
 */
const COMPILE_MARGIN_MS = 1000;
const EDIT_DEADLINE_MS = freshnessDeadlineMs({ contentCheckMs: CONTENT_CHECK_MS }) + COMPILE_MARGIN_MS;

const page = (title: string, body: string, layout?: string) => `---\ntitle: ${title}\n${layout ? `layout: ${layout}\n` : ''}---\n\n${body}\n`;

async function writeLab(sitesDir: string): Promise<void> {
  const lab = join(sitesDir, 'lab');
  for (const folder of ['pages', 'components', 'layouts']) await mkdir(join(lab, folder), { recursive: true });
  await writeFile(join(lab, 'site.json'), JSON.stringify({ name: 'Lab', domains: ['lab.example'], layout: 'page' }));
  const files: Record<string, string> = {
    'components/Greeting.astro': '---\nconst { name, count } = Astro.props;\n---\n<p class="greeting" data-count-type={typeof count}>Hello {name}, {count + 1} times</p>\n<style>.greeting { color: rgb(1, 2, 3); }</style>\n',
    'components/Box.astro': '---\nimport Greeting from \'./Greeting.astro\';\nconst { title } = Astro.props;\n---\n<section class="box" data-title={title}><Greeting name="from the box" count={0} /><slot /></section>\n',
    'components/Broken.astro': '---\nconst x = 1;\n---\n<div>\n  <p>{x</p>\n</div>\n',
    'components/Explodes.astro': '---\nexport const parts = (() => { throw new Error(\'module code failed on purpose\'); })();\n---\n<p>{parts}</p>\n',
    'components/Throws.astro': '---\nconst { when } = Astro.props;\nif (when === \'now\') throw new Error(\'render failed on purpose\');\n---\n<p>fine</p>\n',
    'components/Sneaky.astro': '---\nimport fs from \'node:fs\';\n---\n<p>{fs.readFileSync(\'/etc/hostname\', \'utf8\')}</p>\n',
    'layouts/article.astro': '---\nimport PageBody from \'@shared/PageBody.astro\';\nconst { site, page, canonical, stylesheets } = Astro.props;\n---\n<html><head><title>{page.title}</title>{stylesheets.map((href) => <link rel="stylesheet" href={href} />)}<link rel="canonical" href={canonical} /></head><body data-site={site.id}><main data-layout="lab-article"><h1>{page.title}</h1><PageBody page={page} /></main></body></html>\n',
    'pages/index.md': page('Lab home', 'Intro.\n\n::Greeting{name="Ada" count=41}\n\n:::Box{title="Outer"}\nInside *the box*.\n\n::Greeting{name="nested" count=1}\n:::\n\nAfter.'),
    'pages/plain.md': page('Plain', 'No components here.'),
    'pages/broken.md': page('Broken', '::Broken'),
    'pages/sneaky.md': page('Sneaky', '::Sneaky'),
    'pages/explodes.md': page('Explodes', '::Explodes'),
    'pages/throws.md': page('Throws', '::Throws{when="now"}'),
    'pages/unknown.md': page('Unknown', 'Text.\n\n::Nowhere{a=1}'),
    'pages/story.md': page('A story', 'Once upon a time.\n\n::Greeting{name="reader" count=2}', 'article'),
  };
  for (const [file, text] of Object.entries(files)) await writeFile(join(lab, file), text);

  const plain = join(sitesDir, 'plain');
  for (const folder of ['pages', 'components']) await mkdir(join(plain, folder), { recursive: true });
  await writeFile(join(plain, 'site.json'), JSON.stringify({ name: 'Plain', domains: ['plain.example'], layout: 'page' }));
  await writeFile(join(plain, 'components/Greeting.astro'), files['components/Greeting.astro']!);
  await writeFile(join(plain, 'pages/index.md'), page('Plain home', '::Greeting{name="Ada" count=1}'));
  await writeFile(join(plain, 'pages/text.md'), page('Text only', 'Just text.'));
}

async function writePlans(dir: string): Promise<string> {
  const file = join(dir, 'plans.json');
  await writeFile(file, JSON.stringify({ plans: { studio: { components: true } }, sites: { lab: 'studio' } }));
  return file;
}

describe('site components on one server', () => {
  let server: RunningServer;
  let sitesDir: string;
  let plansFile: string;

  beforeAll(async () => {
    sitesDir = await copySites();
    await writeLab(sitesDir);
    plansFile = await writePlans(sitesDir);
    server = await startServer(sitesDir, { CONTENT_CHECK_MS: String(CONTENT_CHECK_MS), PLANS_FILE: plansFile });
  }, 60_000);

  afterAll(async () => {
    await server?.stop();
    await removeDir(sitesDir);
  });

  const logged = (pattern: (line: string) => boolean) => waitFor(async () => server.logs.some(pattern), 5000);
  /** A 503 log line of `site` with an issue of `file` whose reason has every one of `words`. */
  const loggedIssue = (site: string, file: string, words: string[]) =>
    logged((line) => {
      if (!line.startsWith('{')) return false;
      const entry = JSON.parse(line) as { site?: string; issues?: Array<{ file: string; reason: string }> };
      return entry.site === site && (entry.issues ?? []).some((i) => i.file === file && words.every((w) => i.reason.includes(w)));
    });

  it('renders a page’s component calls with typed props, a container’s children as its slot, and nested calls', async () => {
    const res = await get(server.port, 'lab.example', '/');
    expect(res.status).toBe(200);
    expect(res.body).toMatch(/<p class="greeting"[^>]*data-count-type="number"[^>]*>Hello Ada, 42 times<\/p>/);
    expect(res.body).toMatch(/<section class="box"[^>]*data-title="Outer"[^>]*>/);
    expect(res.body).toMatch(/Hello from the box, 1 times/);
    expect(res.body).toMatch(/<em>the box<\/em>/);
    expect(res.body).toMatch(/Hello nested, 2 times/);
    expect(res.body).toContain('<p>After.</p>');
  });

  it('serves the components’ scoped CSS as the site’s hashed stylesheet, linked from the page, on its own hosts only', async () => {
    const res = await get(server.port, 'lab.example', '/');
    const href = /href="(\/_platform\/css\/lab\/components\.[0-9a-f]{16}\.css)"/.exec(res.body)?.[1];
    expect(href).toBeDefined();
    const css = await get(server.port, 'lab.example', href!);
    expect(css.status).toBe(200);
    expect(css.headers['content-type']).toBe('text/css; charset=utf-8');
    expect(css.headers['cache-control']).toContain('immutable');
    expect(css.body).toMatch(/\.greeting\[data-astro-cid-[a-z0-9]+\]\s*\{\s*color:\s*(rgb\(1, 2, 3\)|#010203)/);
    expect((await get(server.port, 'acme.example', href!)).status).toBe(404);
  });

  it('isolates a compile error to the pages that use the component, naming file:line:column in the log', async () => {
    expect((await get(server.port, 'lab.example', '/broken')).status).toBe(503);
    await logged((l) => l.includes('COMPONENT_INVALID') && /sites\/lab\/components\/Broken\.astro:\d+:\d+/.test(l));
    expect((await get(server.port, 'lab.example', '/')).status).toBe(200);
    expect((await get(server.port, 'lab.example', '/plain')).status).toBe(200);
    expect((await get(server.port, 'acme.example', '/')).status).toBe(200);
  });

  it('answers 503, not a render failure, for a page whose component’s module code throws, naming the file', async () => {
    expect((await get(server.port, 'lab.example', '/explodes')).status).toBe(503);
    await logged((l) => l.includes('COMPONENT_INVALID') && l.includes('sites/lab/components/Explodes.astro') && l.includes('module code failed on purpose'));
    expect((await get(server.port, 'lab.example', '/')).status).toBe(200);
  });

  it('answers 503 for a page whose component throws while rendering, naming the component file', async () => {
    expect((await get(server.port, 'lab.example', '/throws')).status).toBe(503);
    await loggedIssue('lab', 'sites/lab/components/Throws.astro', ['threw while rendering sites/lab/pages/throws.md', 'render failed on purpose']);
    expect((await get(server.port, 'lab.example', '/plain')).status).toBe(200);
  });

  it('refuses a component importing a Node built-in, with a clear error, and never runs it', async () => {
    const res = await get(server.port, 'lab.example', '/sneaky');
    expect(res.status).toBe(503);
    expect(res.body).not.toContain((await readFile('/etc/hostname', 'utf8').catch(() => 'no-hostname-file')).trim() || 'no-hostname-file');
    await logged((l) => l.includes('sites/lab/components/Sneaky.astro') && l.includes('node:fs') && l.includes('may import only'));
  });

  it('answers 503 for a call of a component the site does not have, naming site, page file and name', async () => {
    expect((await get(server.port, 'lab.example', '/unknown')).status).toBe(503);
    await loggedIssue('lab', 'sites/lab/pages/unknown.md', ['line 7', 'calls the component "Nowhere"', 'sites/lab/components/Nowhere.astro does not exist']);
  });

  it('answers 503 on a site whose plan does not allow components, saying why, while its other pages work', async () => {
    expect((await get(server.port, 'plain.example', '/')).status).toBe(503);
    await loggedIssue('plain', 'sites/plain/pages/index.md', ['calls the site component "Greeting"', 'plan "default" does not allow site components']);
    expect((await get(server.port, 'plain.example', '/text')).status).toBe(200);
  });

  it('replaces a shared layout with the site’s own for pages of that layout, with the same props', async () => {
    const story = await get(server.port, 'lab.example', '/story');
    expect(story.status).toBe(200);
    expect(story.body).toContain('data-layout="lab-article"');
    expect(story.body).toContain('<h1>A story</h1>');
    expect(story.body).toContain('<link rel="canonical" href="http://lab.example/story"');
    expect(story.body).toMatch(/Hello reader, 3 times/);
    expect(story.body).not.toContain('data-layout="article"');
    // Pages of another layout keep the shared one.
    expect((await get(server.port, 'lab.example', '/plain')).body).toContain('data-layout="page"');
  });

  it('reports the plan, unknown names and component errors in sites check, with file:line:column', () => {
    const run = spawnSync(process.execPath, [join(ROOT, 'astro-multi-tenant/server/cli/sites.ts'), 'check'], { cwd: ROOT, env: { ...process.env, SITES_DIR: sitesDir, PLANS_FILE: plansFile }, encoding: 'utf8' });
    expect(run.status).toBe(1);
    const out = run.stdout;
    expect(out).toMatch(/sites\/lab\/components\/Broken\.astro:\d+:\d+: /);
    expect(out).toMatch(/sites\/lab\/components\/Sneaky\.astro:\d+:\d+: imports "node:fs"/);
    expect(out).toContain('sites/lab/pages/unknown.md: body: line 7: calls the component "Nowhere", but sites/lab/components/Nowhere.astro does not exist');
    expect(out).toContain('sites/plain/pages/index.md: body: calls the site component "Greeting", but the site\'s plan "default" does not allow site components and layouts');
    expect(out).toMatch(/^ok {4}acme /m);
  });
});

describe('site components on a two-worker cluster', () => {
  let cluster: RunningCluster;
  let sitesDir: string;
  let redis: { url: string; stop(): Promise<void> };

  beforeAll(async () => {
    sitesDir = await copySites();
    await writeLab(sitesDir);
    redis = await redisForTests();
    cluster = await startCluster(sitesDir, {
      instances: 2,
      env: { REDIS_URL: redis.url, SESSION_KEYS: 'k1:site-components-test-secret-0123456789abcdef', CONTENT_CHECK_MS: String(CONTENT_CHECK_MS), PLANS_FILE: await writePlans(sitesDir) },
    });
  }, 120_000);

  afterAll(async () => {
    await cluster?.stop();
    await redis?.stop();
    await removeDir(sitesDir);
  }, 60_000);

  /** Several requests in a row: connections go to the workers in turn, so both answer. */
  const fourAnswers = async () => Promise.all(Array.from({ length: 4 }, () => get(cluster.port, 'lab.example', '/')));

  it('shows an edit of a component on every worker within two content checks', async () => {
    const before = await fourAnswers();
    for (const res of before) expect(res.body).toContain('Hello Ada, 42 times');
    const file = join(sitesDir, 'lab/components/Greeting.astro');
    await writeFile(file, (await readFile(file, 'utf8')).replace('Hello {name}', 'Welcome back {name}'));
    await eventually(fourAnswers, (all) => all.every((res) => res.status === 200 && res.body.includes('Welcome back Ada, 42 times')), {
      what: `lab.example/ shows the edited Greeting on every worker (CONTENT_CHECK_MS=${CONTENT_CHECK_MS})`,
      deadlineMs: EDIT_DEADLINE_MS,
      describe: (all) => all.map((res) => `${res.status} ${/Hello Ada|Welcome back Ada/.exec(res.body)?.[0] ?? '?'}`).join(', '),
    });
  });
});
