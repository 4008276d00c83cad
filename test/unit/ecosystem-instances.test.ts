import { describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { resolve } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const ROOT = resolve(import.meta.dirname, '../..');

/**
 * The worker count PM2 would start from ecosystem.config.js under the given environment. The file
 * reads process.env when it is loaded, so each case loads it in a fresh Node process.
 */
async function instancesWith(env: Record<string, string>): Promise<unknown> {
  const clean = Object.fromEntries(Object.entries(process.env).filter(([name]) => !/^(REDIS_|INSTANCES$)/.test(name)));
  const { stdout } = await run(process.execPath, ['--input-type=module', '-e', "const m = await import('./ecosystem.config.js'); console.log(JSON.stringify(m.apps[0].instances));"], {
    cwd: ROOT,
    env: { ...clean, ...env },
  });
  return JSON.parse(stdout);
}

describe('ecosystem.config.js worker count', () => {
  it('runs one worker without Redis and every core with REDIS_URL', async () => {
    expect(await instancesWith({})).toBe(1);
    expect(await instancesWith({ REDIS_URL: 'redis://127.0.0.1:6379/0' })).toBe('max');
  });

  it('counts a REDIS_URL kept in a secret file (REDIS_URL_FILE) as Redis, as the server does', async () => {
    expect(await instancesWith({ REDIS_URL_FILE: '/run/secrets/redis_url' })).toBe('max');
  });

  it('takes INSTANCES as given', async () => {
    expect(await instancesWith({ INSTANCES: '3', REDIS_URL_FILE: '/run/secrets/redis_url' })).toBe(3);
  });
});
