import { describe, expect, it } from 'vitest';
import { readFile, readdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';

const ROOT = resolve(import.meta.dirname, '../..');

/**
 * Names read by the server (every file under astro-multi-tenant/server) and the PM2 file, in the
 * forms the code uses: env.X, process.env.X, env['X'], integer(env, 'X', …), secret(env, 'X')
 * (which also reads X_FILE), ecosystem.config.js's ms('X', …).
 */
async function namesTheCodeReads(): Promise<Set<string>> {
  const dir = join(ROOT, 'astro-multi-tenant/server');
  const files = (await readdir(dir, { recursive: true })).filter((f) => f.endsWith('.ts')).map((f) => join(dir, f));
  files.push(join(ROOT, 'ecosystem.config.js'));
  const patterns = [/\benv\.([A-Z][A-Z0-9_]*)\b/g, /\benv\[\s*'([A-Z][A-Z0-9_]*)'\s*\]/g, /\(\s*env\s*,\s*'([A-Z][A-Z0-9_]*)'/g, /\bms\(\s*'([A-Z][A-Z0-9_]*)'/g];
  const names = new Set<string>();
  for (const file of files) {
    const source = await readFile(file, 'utf8');
    for (const pattern of patterns) for (const match of source.matchAll(pattern)) names.add(match[1]!);
  }
  return names;
}

/** Set by PM2 for its workers, or by cli/start.ts for PM2: not the operator's to set. */
const INTERNAL = new Set(['NODE_APP_INSTANCE', 'PM2_OUT_FILE', 'PM2_ERROR_FILE']);
/** The edge's own variables, documented (and tested) in docs/edge.md. */
const EDGE_ONLY = /^(NGINX_|TLS_CERT$|TLS_KEY$|OPENSSL_BIN$)/;

describe("README's Environment table", () => {
  it('has a row for every variable the server and the PM2 file read', async () => {
    const readme = await readFile(join(ROOT, 'README.md'), 'utf8');
    const table = readme.slice(readme.indexOf('## Environment'), readme.indexOf('\n## ', readme.indexOf('## Environment') + 1));
    const rows = table.split('\n').filter((line) => line.startsWith('| `'));
    const documented = new Set(rows.flatMap((row) => [...row.split(' | ')[0]!.matchAll(/`([A-Z][A-Z0-9_]*)`/g)].map((m) => m[1]!)));
    const names = [...(await namesTheCodeReads())].filter((name) => !INTERNAL.has(name) && !EDGE_ONLY.test(name));
    expect(names.length).toBeGreaterThan(40);
    for (const name of names) expect(documented.has(name) || documented.has(name.replace(/_FILE$/, '')), name).toBe(true);
  });
});
