import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { copySites, removeDir, ROOT } from '../helpers/server.ts';

/**
 * Rule 11 (first half) of the threat model (docs/security.md): `sites check` and `sites list`
 * print tenant text (folder and file names, names, field values) with every control character
 * escaped, so a site folder cannot send escape sequences to the operator's terminal or forge
 * report lines.
 */
const run = promisify(execFile);
const ESC = '\u001b';
/** Anything that would act on a terminal: C0 controls except the newline we print, DEL, C1, bidi controls. */
const ACTIVE = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/;

let sitesDir: string;

async function sites(...args: string[]): Promise<{ code: number; out: string }> {
  return run(process.execPath, [join(ROOT, 'astro-multi-tenant/server/cli/sites.ts'), ...args], { cwd: ROOT, env: { ...process.env, SITES_DIR: sitesDir } }).then(
    (r) => ({ code: 0, out: r.stdout + r.stderr }),
    (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, out: e.stdout + e.stderr }),
  );
}

beforeAll(async () => {
  sitesDir = await copySites();
  // A folder whose name is an escape sequence (not a valid id: reported by name).
  await mkdir(join(sitesDir, `bad${ESC}[31mred`));
  // A site whose name clears the screen and sets the window title.
  await mkdir(join(sitesDir, 'named/pages'), { recursive: true });
  await writeFile(join(sitesDir, 'named/site.json'), JSON.stringify({ name: `Evil ${ESC}[2J${ESC}]0;owned\u0007 Name` }));
  await writeFile(join(sitesDir, 'named/pages/index.md'), '---\ntitle: Home\n---\n');
  // A site whose errors quote tenant text: an unknown field named with escapes, a page file name
  // with escapes and a forged line, a frontmatter value quoted back.
  await mkdir(join(sitesDir, 'quoted/pages'), { recursive: true });
  await writeFile(join(sitesDir, 'quoted/site.json'), JSON.stringify({ name: 'Quoted', [`x${ESC}[8m`]: 1 }));
  await mkdir(join(sitesDir, 'pages-esc/pages'), { recursive: true });
  await writeFile(join(sitesDir, 'pages-esc/site.json'), JSON.stringify({ name: 'Pages' }));
  await writeFile(join(sitesDir, 'pages-esc/pages/index.md'), '---\ntitle: Home\n---\n');
  await writeFile(join(sitesDir, 'pages-esc/pages', `evil${ESC}[2K\rok    acme.md`), `---\ntitle: ""\nlayout: "fancy${ESC}[5m"\n---\n`);
});

afterAll(async () => {
  await removeDir(sitesDir);
});

describe('sites check and sites list print tenant text escaped', () => {
  it('check: reports every problem with its escape sequences shown, not acted on, one line each', async () => {
    const { code, out } = await sites('check');
    expect(code).toBe(1);
    expect(out).not.toMatch(ACTIVE);
    expect(out).toContain('FAIL  bad\\x1b[31mred');
    expect(out).toContain('x\\x1b[8m');
    expect(out).toContain('sites/pages-esc/pages/evil\\x1b[2K\\x0dok    acme.md');
    // The forged "ok    acme" never starts a line of its own.
    expect(out.split('\n').filter((line) => line.startsWith('ok    acme'))).toEqual([expect.stringMatching(/^ok {4}acme \(\d+ pages?\)$/)]);
  });

  it('list: prints a site name that would clear the screen as text', async () => {
    const { out } = await sites('list');
    expect(out).not.toMatch(ACTIVE);
    expect(out).toContain('Evil \\x1b[2J\\x1b]0;owned\\x07 Name');
  });
});
