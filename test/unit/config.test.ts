import { describe, it, expect, vi } from 'vitest';
import { resolve } from 'node:path';
import { APP_DIR, loadConfig } from '../../astro-multi-tenant/server/config.ts';
import { PlatformError } from '../../astro-multi-tenant/server/errors.ts';

const CWD = '/srv/platform';

function configError(env: Record<string, string | undefined>): PlatformError {
  try {
    loadConfig(env, CWD);
  } catch (error) {
    expect(error).toBeInstanceOf(PlatformError);
    expect((error as PlatformError).code).toBe('CONFIG_INVALID');
    return error as PlatformError;
  }
  throw new Error(`expected ${JSON.stringify(env)} to be rejected`);
}

describe('loadConfig: defaults', () => {
  const config = loadConfig({}, CWD);

  it('listens on port 4321 on every interface', () => {
    expect(config.port).toBe(4321);
    expect(config.host).toBeUndefined();
  });

  it('reads sites from ./sites under the working directory', () => {
    expect(config.sitesDir).toBe(resolve(CWD, 'sites'));
  });

  it('uses localhost as the platform domain and no Redis', () => {
    expect(config.platformDomain).toBe('localhost');
    expect(config.redisUrl).toBeUndefined();
  });

  it('trusts forwarding headers only from the local machine', () => {
    expect(config.trustedProxies.trusts('127.0.0.1')).toBe(true);
    expect(config.trustedProxies.trusts('::1')).toBe(true);
    expect(config.trustedProxies.trusts('10.0.0.1')).toBe(false);
  });

  it('has the documented cache, rescan and static-file settings', () => {
    expect(config).toMatchObject({
      contentCheckMs: 500,
      sitesRescanMs: 500,
      cacheMaxEntries: 50_000,
      cacheMaxBytes: 128 * 1024 * 1024,
      staticMaxAge: 300,
      logLevel: 'info',
    });
  });

  it('lets only the local machine read the admin endpoints, with no token', () => {
    expect(config.adminAllow.trusts('127.0.0.1')).toBe(true);
    expect(config.adminAllow.trusts('::1')).toBe(true);
    expect(config.adminAllow.trusts('192.0.2.1')).toBe(false);
    expect(config.adminToken).toBeUndefined();
  });

  it('finds build outputs in the app folder whatever the working directory', () => {
    expect(config.cssDir).toBe(resolve(APP_DIR, 'site-css'));
    expect(config.astroEntry).toBe(resolve(APP_DIR, 'dist/server/entry.mjs'));
    expect(APP_DIR.endsWith('astro-multi-tenant')).toBe(true);
  });
});

describe('loadConfig: overrides', () => {
  it('applies every variable', () => {
    const config = loadConfig(
      {
        PORT: '8080',
        HOST: '0.0.0.0',
        SITES_DIR: 'content/sites',
        PLATFORM_DOMAIN: 'Sites.Example.',
        REDIS_URL: 'redis://cache:6379',
        TRUSTED_PROXIES: '10.0.0.0/8',
        CONTENT_CHECK_MS: '250',
        SITES_RESCAN_MS: '1000',
        SITE_CACHE_MAX_ENTRIES: '100',
        SITE_CACHE_MAX_MB: '16',
        CSS_DIR: '/var/css',
        ASTRO_ENTRY: 'build/entry.mjs',
        STATIC_MAX_AGE: '0',
        LOG_LEVEL: 'debug',
      },
      CWD,
    );
    expect(config).toMatchObject({
      port: 8080,
      host: '0.0.0.0',
      sitesDir: resolve(CWD, 'content/sites'),
      platformDomain: 'sites.example',
      redisUrl: 'redis://cache:6379',
      contentCheckMs: 250,
      sitesRescanMs: 1000,
      cacheMaxEntries: 100,
      cacheMaxBytes: 16 * 1024 * 1024,
      cssDir: '/var/css',
      astroEntry: resolve(CWD, 'build/entry.mjs'),
      staticMaxAge: 0,
      logLevel: 'debug',
    });
    expect(config.trustedProxies.trusts('10.9.8.7')).toBe(true);
    expect(config.trustedProxies.trusts('127.0.0.1')).toBe(false);
  });

  it('keeps an absolute SITES_DIR as given', () => {
    expect(loadConfig({ SITES_DIR: '/data/sites' }, CWD).sitesDir).toBe('/data/sites');
  });

  it('punycodes an internationalised platform domain', () => {
    expect(loadConfig({ PLATFORM_DOMAIN: 'bäckerei.example' }, CWD).platformDomain).toBe('xn--bckerei-5wa.example');
  });

  it('treats empty and blank values as unset', () => {
    const config = loadConfig({ PORT: '', HOST: ' ', PLATFORM_DOMAIN: '  ', REDIS_URL: '', LOG_LEVEL: '', SITES_DIR: ' ' }, CWD);
    expect(config).toMatchObject({ port: 4321, host: undefined, platformDomain: 'localhost', redisUrl: undefined, logLevel: 'info', sitesDir: resolve(CWD, 'sites') });
  });

  it('trusts no proxy at all when TRUSTED_PROXIES is set but empty', () => {
    const config = loadConfig({ TRUSTED_PROXIES: '' }, CWD);
    expect(config.trustedProxies.trusts('127.0.0.1')).toBe(false);
  });

  it('accepts PORT=0 (any free port) and numbers with surrounding whitespace', () => {
    expect(loadConfig({ PORT: '0' }, CWD).port).toBe(0);
    expect(loadConfig({ PORT: ' 3000 ' }, CWD).port).toBe(3000);
  });

  it('uses the real process environment and working directory when called without arguments', () => {
    vi.stubEnv('PORT', '6123');
    vi.stubEnv('SITES_DIR', 'from-process-env/sites');
    vi.stubEnv('PLATFORM_DOMAIN', 'Process.Example');
    try {
      const config = loadConfig();
      expect(config.port).toBe(6123);
      expect(config.sitesDir).toBe(resolve(process.cwd(), 'from-process-env/sites'));
      expect(config.platformDomain).toBe('process.example');
      vi.stubEnv('PORT', 'eighty');
      expect(() => loadConfig()).toThrow(/^PORT: "eighty" is not a whole number$/);
    } finally {
      vi.unstubAllEnvs();
    }
  });
});

describe('loadConfig: invalid values stop the server with a message naming the variable', () => {
  it.each(['abc', '-1', '80.5', '1e3', '65536', '99999999'])('rejects PORT=%j', (value) => {
    const error = configError({ PORT: value });
    expect(error.message).toMatch(/^PORT: /);
    expect(error.input).toBe(value);
  });

  it.each([
    ['CONTENT_CHECK_MS', '60001'],
    ['CONTENT_CHECK_MS', 'soon'],
    ['SITES_RESCAN_MS', '-5'],
    ['SITE_CACHE_MAX_ENTRIES', '0'],
    ['SITE_CACHE_MAX_MB', '0'],
    ['SITE_CACHE_MAX_MB', '1.5'],
    ['STATIC_MAX_AGE', '31536001'],
  ])('rejects %s=%j', (name, value) => {
    const error = configError({ [name]: value });
    expect(error.message.startsWith(`${name}: `)).toBe(true);
    expect(error.input).toBe(value);
  });

  it('says whether a number is malformed or out of range', () => {
    expect(configError({ PORT: 'eighty' }).message).toContain('is not a whole number');
    expect(configError({ PORT: '70000' }).message).toContain('is outside 0..65535');
  });

  it('rejects a PLATFORM_DOMAIN that is not a host name', () => {
    const error = configError({ PLATFORM_DOMAIN: 'not a domain' });
    expect(error.message).toMatch(/^PLATFORM_DOMAIN: "not a domain" is not a host name/);
  });

  it('rejects an unknown LOG_LEVEL, listing the valid ones', () => {
    const error = configError({ LOG_LEVEL: 'verbose' });
    expect(error.message).toMatch(/^LOG_LEVEL: "verbose" is not one of fatal, error, warn, info, debug, trace, silent/);
  });

  it('rejects an ADMIN_ALLOW entry that is not an IP or CIDR, naming ADMIN_ALLOW', () => {
    expect(configError({ ADMIN_ALLOW: 'localhost' }).message).toMatch(/^ADMIN_ALLOW: "localhost"/);
  });

  it('refuses a guessable ADMIN_TOKEN without echoing it', () => {
    const error = configError({ ADMIN_TOKEN: 'hunter2' });
    expect(error.message).toMatch(/^ADMIN_TOKEN: /);
    expect(error.message).not.toContain('hunter2');
    expect(error.input).not.toBe('hunter2');
  });

  it('accepts an ADMIN_TOKEN of at least 16 characters', () => {
    expect(loadConfig({ ADMIN_TOKEN: ' 0123456789abcdef ' }, CWD).adminToken).toBe('0123456789abcdef');
  });

  it('rejects a TRUSTED_PROXIES entry that is not an IP or CIDR', () => {
    const error = configError({ TRUSTED_PROXIES: '127.0.0.1,proxy.internal' });
    expect(error.message).toMatch(/^TRUSTED_PROXIES: "proxy.internal"/);
  });
});

describe('secrets from files and yes/no flags', () => {
  it('reads SESSION_KEYS, ADMIN_TOKEN and REDIS_URL from *_FILE when the variable itself is unset', async () => {
    const { mkdtempSync, writeFileSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const dir = mkdtempSync(join(tmpdir(), 'amt-secrets-'));
    writeFileSync(join(dir, 'keys'), 'k1:a-secret-that-is-long-enough-0123456789\n');
    writeFileSync(join(dir, 'token'), 'an-admin-token-long-enough\n');
    writeFileSync(join(dir, 'redis'), 'redis://:pw@redis.internal:6380/2\n');
    const config = loadConfig({ SESSION_KEYS_FILE: join(dir, 'keys'), ADMIN_TOKEN_FILE: join(dir, 'token'), REDIS_URL_FILE: join(dir, 'redis') }, '/srv');
    expect(config.sessionKeys?.current.kid).toBe('k1');
    expect(config.adminToken).toBe('an-admin-token-long-enough');
    expect(config.redis?.url).toBe('redis://:pw@redis.internal:6380/2');
    // The variable itself wins over the file.
    expect(loadConfig({ ADMIN_TOKEN: 'direct-token-0123456789', ADMIN_TOKEN_FILE: join(dir, 'token') }, '/srv').adminToken).toBe('direct-token-0123456789');
  });

  it('names the *_FILE variable when its file cannot be read', () => {
    expect(() => loadConfig({ SESSION_KEYS_FILE: '/nonexistent/keys' }, '/srv')).toThrow(/SESSION_KEYS_FILE: cannot read \/nonexistent\/keys \(ENOENT\)/);
  });

  it('reads READY_REQUIRES_REDIS as a yes/no flag, off by default, and rejects anything else', () => {
    expect(loadConfig({}, '/srv').readyRequiresRedis).toBe(false);
    expect(loadConfig({ READY_REQUIRES_REDIS: 'true' }, '/srv').readyRequiresRedis).toBe(true);
    expect(loadConfig({ READY_REQUIRES_REDIS: '0' }, '/srv').readyRequiresRedis).toBe(false);
    expect(() => loadConfig({ READY_REQUIRES_REDIS: 'maybe' }, '/srv')).toThrow(/READY_REQUIRES_REDIS/);
  });
});
