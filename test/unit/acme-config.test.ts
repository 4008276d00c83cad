import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../astro-multi-tenant/server/config.ts';
import { PlatformError } from '../../astro-multi-tenant/server/errors.ts';

const CWD = '/srv/platform';
const LE = 'https://acme-v02.api.letsencrypt.org/directory';

function refusal(env: Record<string, string>): string {
  try {
    loadConfig(env, CWD);
  } catch (error) {
    expect(error).toBeInstanceOf(PlatformError);
    expect((error as PlatformError).code).toBe('CONFIG_INVALID');
    return (error as PlatformError).message;
  }
  throw new Error(`expected ${JSON.stringify(env)} to be refused`);
}

describe('ACME settings', () => {
  it('orders nothing unless ACME_DIRECTORY_URL is set', () => {
    expect(loadConfig({}, CWD).acme).toBeUndefined();
    expect(loadConfig({ CERTS_DIR: 'certs', ACME_EMAIL: 'ops@example.com' }, CWD).acme).toBeUndefined();
  });

  it('reads the directory, the contact, CERTS_DIR (relative to the working folder) and the renewal margin (30 days by default)', () => {
    expect(loadConfig({ ACME_DIRECTORY_URL: LE, ACME_EMAIL: 'ops@example.com', CERTS_DIR: 'var/certs' }, CWD).acme).toEqual({
      directoryUrl: LE,
      email: 'ops@example.com',
      certsDir: '/srv/platform/var/certs',
      renewBeforeMs: 30 * 86_400_000,
    });
    expect(loadConfig({ ACME_DIRECTORY_URL: LE, ACME_RENEW_DAYS: '10' }, CWD).acme).toMatchObject({ email: undefined, certsDir: undefined, renewBeforeMs: 10 * 86_400_000 });
  });

  it('refuses what it cannot use, naming the variable', () => {
    expect(refusal({ ACME_DIRECTORY_URL: 'http://ca.example/dir' })).toMatch(/^ACME_DIRECTORY_URL: .* must be an https:\/\/ URL$/);
    expect(refusal({ ACME_DIRECTORY_URL: 'not a url' })).toMatch(/^ACME_DIRECTORY_URL: "not a url" is not a URL$/);
    expect(refusal({ ACME_DIRECTORY_URL: LE, ACME_EMAIL: 'ops at example' })).toMatch(/^ACME_EMAIL: /);
    expect(refusal({ ACME_DIRECTORY_URL: LE, ACME_RENEW_DAYS: '0' })).toMatch(/^ACME_RENEW_DAYS: /);
    expect(refusal({ ACME_DIRECTORY_URL: LE, ACME_RENEW_DAYS: 'soon' })).toMatch(/^ACME_RENEW_DAYS: /);
  });
});
