import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { mkdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { copySites, get, removeDir, startServer, waitFor, type RunningServer } from '../helpers/server.ts';
import { compileComponent } from '../../astro-multi-tenant/server/components/compile-component.ts';
import { siteComponentFile } from '../../astro-multi-tenant/server/components/component-file.ts';

/**
 * Site components (issue 15) against a hostile site owner, over HTTP with the real server:
 * `lab` is on a plan with "components": true, `plain` on the default plan, which does not allow them.
 */
const GREETING = '---\nconst { name } = Astro.props;\n---\n<p class="greeting">Hello {name}</p>\n<style>.greeting { color: rgb(1, 2, 3); }</style>\n';

/** The component stylesheet name the server would give a site whose only component is `name` (css/component-stylesheet.ts). */
function stylesheetNameOf(site: string, name: string, source: string): string {
  const compiled = compileComponent(source, siteComponentFile(site, name));
  const text = compiled.css.map((code) => `/* sites/${site}/components/${name}.astro */\n${code}`).join('\n');
  return `components.${createHash('sha256').update(text).digest('hex').slice(0, 16)}.css`;
}

describe('site components against a hostile site owner', () => {
  let server: RunningServer;
  let sitesDir: string;

  beforeAll(async () => {
    sitesDir = await copySites();
    const page = (title: string, body: string) => `---\ntitle: ${title}\n---\n\n${body}\n`;
    for (const [id, plan] of [['lab', true], ['plain', false]] as const) {
      const dir = join(sitesDir, id);
      for (const folder of ['pages', 'components']) await mkdir(join(dir, folder), { recursive: true });
      await writeFile(join(dir, 'site.json'), JSON.stringify({ name: id, domains: [`${id}.example`], layout: 'page' }));
      await writeFile(join(dir, 'components/Greeting.astro'), GREETING);
      await writeFile(join(dir, 'pages/index.md'), page(`${id} home`, plan ? '::Greeting{name="Ada"}' : 'Just text.'));
      await writeFile(join(dir, 'components/Leaky.astro'), `---\nthrow new Error('leaky message ' + process.cwd());\n---\n<p>never</p>\n`);
      await writeFile(join(dir, 'components/Unclosed.astro'), '<div>\n  <p>{1</p>\n</div>\n');
      await writeFile(join(dir, 'pages/leaky.md'), page('leaky', '::Leaky'));
      await writeFile(join(dir, 'pages/unclosed.md'), page('unclosed', '::Unclosed'));
      await writeFile(join(dir, 'pages/island.md'), page('island', 'Text.\n\n::Greeting{name="x" server:component-directive="defer" server:component-path="/site/components/Greeting.astro" server:component-export="default"}'));
    }
    // crowd: more component files than a site may have (256), each one cheap, one page calling one.
    const crowd = join(sitesDir, 'crowd');
    for (const folder of ['pages', 'components']) await mkdir(join(crowd, folder), { recursive: true });
    await writeFile(join(crowd, 'site.json'), JSON.stringify({ name: 'crowd', domains: ['crowd.example'], layout: 'page' }));
    for (let i = 0; i < 300; i++) await writeFile(join(crowd, `components/Many${i}.astro`), `<p class="m${i}">${i}</p>\n<style>.m${i} { color: red; }</style>\n`);
    await writeFile(join(crowd, 'pages/index.md'), page('crowd home', '::Many1'));
    await writeFile(join(crowd, 'pages/text.md'), page('crowd text', 'Just text.'));
    // vault: a site with a secret component and layout; thief: its components/ and layouts/ folders are links to vault's.
    const vault = join(sitesDir, 'vault');
    for (const folder of ['pages', 'components', 'layouts']) await mkdir(join(vault, folder), { recursive: true });
    await writeFile(join(vault, 'site.json'), JSON.stringify({ name: 'vault', domains: ['vault.example'], layout: 'page' }));
    await writeFile(join(vault, 'components/Secret.astro'), '<p class="vault-secret">vault secret text</p>\n<style>.vault-secret { color: rgb(9, 8, 7); }</style>\n');
    await writeFile(join(vault, 'layouts/page.astro'), '---\nimport PageBody from \'@shared/PageBody.astro\';\nconst { page, stylesheets } = Astro.props;\n---\n<html><head>{stylesheets.map((href) => <link rel="stylesheet" href={href} />)}</head><body><p>vault layout text</p><PageBody page={page} /></body></html>\n');
    await writeFile(join(vault, 'pages/index.md'), page('vault home', '::Secret'));
    const thief = join(sitesDir, 'thief');
    await mkdir(join(thief, 'pages'), { recursive: true });
    await writeFile(join(thief, 'site.json'), JSON.stringify({ name: 'thief', domains: ['thief.example'], layout: 'page' }));
    await symlink('../vault/components', join(thief, 'components'));
    await symlink('../vault/layouts', join(thief, 'layouts'));
    await writeFile(join(thief, 'pages/index.md'), page('thief home', '::Secret'));
    const plans = join(sitesDir, 'plans.json');
    await writeFile(plans, JSON.stringify({ plans: { studio: { components: true } }, sites: { lab: 'studio', crowd: 'studio', vault: 'studio', thief: 'studio' } }));
    server = await startServer(sitesDir, { CONTENT_CHECK_MS: '500', PLANS_FILE: plans });
  }, 60_000);

  afterAll(async () => {
    await server?.stop();
    await removeDir(sitesDir);
  });

  it('never compiles or serves the component stylesheet of a site whose plan does not allow components', async () => {
    // The name is computed the way the server names it, so a 404 means "not served", not "wrong name".
    const labName = stylesheetNameOf('lab', 'Greeting', GREETING);
    expect((await get(server.port, 'lab.example', '/')).body).toContain(`/_platform/css/lab/${labName}`);
    const res = await get(server.port, 'plain.example', `/_platform/css/plain/${stylesheetNameOf('plain', 'Greeting', GREETING)}`);
    expect(res.status).toBe(404);
    expect(res.body).not.toContain('greeting');
  });

  it('answers 503 for the pages that use components of a site with more component files than a site may have, naming the limit, and compiles none of them', async () => {
    expect((await get(server.port, 'crowd.example', '/')).status).toBe(503);
    await waitFor(async () => server.logs.some((l) => l.includes('COMPONENT_INVALID') && l.includes('sites/crowd/components: the site has more than 256 component and layout files, the most a site may have')), 5000);
    expect((await get(server.port, 'crowd.example', '/text')).status).toBe(200);
    expect((await get(server.port, 'lab.example', '/')).status).toBe(200);
  });

  it('never lets a page turn on an Astro directive through a prop (server:…, client:…, set:…): the page is refused naming the line', async () => {
    const res = await get(server.port, 'lab.example', '/island');
    expect(res.status).toBe(503);
    expect(res.body).not.toContain('server-islands');
    await waitFor(async () => server.logs.some((l) => l.includes('sites/lab/pages/island.md') && l.includes('line 4 of the body: the prop \\"server:component-directive\\" of \\"Greeting\\" is named like an Astro directive')), 5000);
  });

  it('never renders or styles another site’s component or layout through components/ and layouts/ folders linked to it', async () => {
    const own = await get(server.port, 'vault.example', '/');
    expect(own.status).toBe(200);
    expect(own.body).toContain('vault secret text');
    const res = await get(server.port, 'thief.example', '/');
    expect(res.status).toBe(503);
    expect(res.body).not.toContain('vault');
    await waitFor(async () => server.logs.some((l) => l.includes('sites/thief/layouts/page.astro') && l.includes('outside the site folder')), 5000);
    // Its component stylesheet, named as the server would name one holding vault's CSS, is not served either.
    const vaultCss = own.body.match(/\/_platform\/css\/vault\/(components\.[0-9a-f]{16}\.css)/)![1];
    const vaultText = (await get(server.port, 'vault.example', `/_platform/css/vault/${vaultCss}`)).body.replaceAll('sites/vault/', 'sites/thief/');
    const thiefName = `components.${createHash('sha256').update(vaultText).digest('hex').slice(0, 16)}.css`;
    const css = await get(server.port, 'thief.example', `/_platform/css/thief/${thiefName}`);
    expect(css.status).toBe(404);
    expect(css.body).not.toContain('vault-secret');
  });

  it('answers a component that throws or does not compile with the plain 503 page: no message, file, server path or stack frame reaches the visitor', async () => {
    for (const path of ['/leaky', '/unclosed']) {
      const res = await get(server.port, 'lab.example', path);
      expect(res.status).toBe(503);
      expect(res.headers['cache-control']).toBe('no-store');
      for (const secret of ['leaky message', process.cwd(), 'sites/lab', '.astro', 'Error', '    at ']) expect(res.body).not.toContain(secret);
    }
    await waitFor(async () => server.logs.some((l) => l.includes('sites/lab/components/Leaky.astro') && l.includes('leaky message')), 5000);
  });
});
