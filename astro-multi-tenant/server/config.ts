import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { join, resolve } from 'node:path';
import { tmpdir } from 'node:os';
import { PlatformError } from './errors.ts';
import { parseTrustedProxies, type TrustedProxies } from './tenant/trusted-proxies.ts';
import { parseOutboundAllowList, type OutboundAllowList } from './http/outbound-fetch.ts';
import { normalizeHost } from './tenant/normalize-host.ts';
import { parseNodes, urlOptions, type RedisSettings } from './session/redis-client.ts';
import { parseSessionKeys, type SessionKeys } from './session/session-token.ts';
import { parseDnsServers } from './tenant/domain-dns.ts';
import type { ContentIo } from './sites/content-fs.ts';

/** The app folder (astro-multi-tenant/), so build outputs are found whatever the working directory. */
export const APP_DIR = resolve(import.meta.dirname, '..');

export interface ServerConfig {
  port: number;
  host: string | undefined;
  sitesDir: string;
  platformDomain: string;
  redisUrl: string | undefined;
  trustedProxies: TrustedProxies;
  contentCheckMs: number;
  /** How content file calls are made (sites/content-fs.ts): `sync` on a local file system, `thread-pool` on a network one. */
  contentIo: ContentIo;
  sitesRescanMs: number;
  cacheMaxEntries: number;
  cacheMaxBytes: number;
  cssDir: string;
  astroEntry: string;
  staticMaxAge: number;
  /** How long a refusal's answer waits while the worker is busy (ms, pipeline/refusal-pacer.ts); 0 = never. */
  refusalDelayMs: number;
  logLevel: string;
  /** Who may read /_platform/metrics and /_platform/status without a token. */
  adminAllow: TrustedProxies;
  adminToken: string | undefined;
  /** Per-worker cap on distinct `site` label values in metrics. */
  metricsSiteLabels: number;
  /** Where workers put their peer sockets; undefined = derived from the port once listening. */
  peerDir: string | undefined;
  drainTimeoutMs: number;
  shutdownDelayMs: number;
  /** Undefined when no Redis is configured (embedded in-memory sessions, single process). */
  redis: RedisSettings | undefined;
  /** Undefined when SESSION_KEYS is unset; main.ts then decides whether a per-process key will do. */
  sessionKeys: SessionKeys | undefined;
  sessionMaxAgeSeconds: number;
  signInMaxFailures: number;
  signInWindowSeconds: number;
  edgeCacheSeconds: number;
  renderCacheBytes: number;
  renderCacheMaxEntries: number;
  /** Folder of rendered Markdown shared by the workers of a machine; undefined = off. */
  /** Rendered anonymous pages on disk (render/rendered-pages-folder.ts); undefined = off. */
  renderCacheDir: string | undefined;
  renderCacheDirBytes: number;
  markdownCacheDir: string | undefined;
  markdownCacheBytes: number;
  /** Folder of compiled site components shared by the workers of a machine; undefined = off. */
  componentCacheDir: string | undefined;
  componentCacheBytes: number;
  /** READY_REQUIRES_REDIS=1: readyz turns 503 while Redis is unreachable (default: "degraded", 200). */
  readyRequiresRedis: boolean;
  /**
   * JWKS_ALLOW_HOSTS: hosts (host or host:port) a site's auth.token.jwksUrl may reach although they
   * are private addresses or plain http; every other jwksUrl must be https to public addresses.
   */
  jwksAllowHosts: OutboundAllowList;
  /** STATE_DIR: the private folder of the platform's own state (who owns each custom host). */
  stateDir: string;
  /** PLANS_FILE: the operator's plans and which site is on which (plans/plans-file.ts); undefined = every site on the built-in default. */
  plansFile: string | undefined;
  /** DOMAIN_VERIFICATION and friends (tenant/domain-verifier.ts); undefined = off, every listed host is served. */
  domainVerification: DomainVerificationConfig | undefined;
  /** DOMAIN_TARGET: what operators point custom domains at (a host name for a CNAME, or IP addresses for A/AAAA); undefined = `<id>.PLATFORM_DOMAIN`. */
  domainTarget: string[] | undefined;
  /** ACME_DIRECTORY_URL and friends (tls/certificate-manager.ts); undefined = no certificates are ordered. */
  acme: AcmeConfig | undefined;
}

export interface AcmeConfig {
  /** ACME_DIRECTORY_URL: the CA's directory (https). */
  directoryUrl: string;
  /** ACME_EMAIL: the account's contact address; undefined = none. */
  email: string | undefined;
  /** CERTS_DIR: where this machine's `<host>.crt`/`<host>.key` are written for nginx; undefined = kept in the shared store only. */
  certsDir: string | undefined;
  /** ACME_RENEW_DAYS in ms: how long before expiry a certificate is renewed. */
  renewBeforeMs: number;
}

export interface DomainVerificationConfig {
  /** DOMAIN_TOKEN_SECRET: the key each site's verification token is derived from. */
  secret: string;
  /** DNS_SERVERS: resolvers for the TXT checks (`ip` or `ip:port`); empty = the system's. */
  dnsServers: string[];
  /** DOMAIN_RECHECK_S in ms: how often a verified domain is checked again. */
  recheckMs: number;
  /** DOMAIN_RETRY_S in ms: how often a pending or failing domain is checked again. */
  retryMs: number;
  /** DOMAIN_GRACE_S in ms: how long a verified domain keeps serving after its checks fail. */
  graceMs: number;
}

type Env = Record<string, string | undefined>;

/**
 * A secret from NAME, or from the file named by NAME_FILE (Docker and Kubernetes secrets are
 * files); the file wins only when NAME itself is unset.
 */
function secret(env: Env, name: string): string | undefined {
  const direct = env[name];
  if (direct !== undefined && direct.trim() !== '') return direct;
  const file = env[`${name}_FILE`]?.trim();
  if (!file) return direct;
  try {
    return readFileSync(file, 'utf8').trim();
  } catch (error) {
    throw new PlatformError('CONFIG_INVALID', `${name}_FILE: cannot read ${file} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`, file);
  }
}

function contentIo(env: Env): ContentIo {
  const raw = env.CONTENT_IO?.trim();
  if (!raw) return 'sync';
  if (raw === 'sync' || raw === 'thread-pool') return raw;
  throw new Error(`CONTENT_IO: "${raw}" must be sync (content on a local file system) or thread-pool (content on a network file system)`);
}

function integer(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  if (!/^\d+$/.test(raw.trim())) throw new PlatformError('CONFIG_INVALID', `${name}: "${raw}" is not a whole number`, raw);
  const value = Number(raw.trim());
  if (value < min || value > max) throw new PlatformError('CONFIG_INVALID', `${name}: ${value} is outside ${min}..${max}`, raw);
  return value;
}

/** MARKDOWN_CACHE_DIR: a folder, `off`, or unset for one under the system temp folder. */
function markdownCacheDir(env: Env, cwd: string): string | undefined {
  return privateCacheDir(env.MARKDOWN_CACHE_DIR, 'markdown', cwd);
}

/** A cache folder setting (MARKDOWN_CACHE_DIR, COMPONENT_CACHE_DIR, RENDER_CACHE_DIR): a folder, `off`, or unset for `<temp>/astro-multi-tenant-<uid>/<name>`. */
function privateCacheDir(value: string | undefined, name: string, cwd: string): string | undefined {
  const raw = value?.trim();
  if (raw === undefined || raw === '') return join(tmpdir(), `astro-multi-tenant-${process.getuid?.() ?? 'user'}`, name);
  if (raw.toLowerCase() === 'off') return undefined;
  return resolve(cwd, raw);
}

function flag(env: Env, name: string, fallback: boolean): boolean {
  const raw = env[name]?.trim().toLowerCase();
  if (raw === undefined || raw === '') return fallback;
  if (['1', 'true', 'yes', 'on'].includes(raw)) return true;
  if (['0', 'false', 'no', 'off'].includes(raw)) return false;
  throw new PlatformError('CONFIG_INVALID', `${name}: "${env[name]}" is not a yes/no value (1/0, true/false)`, env[name]);
}

function sessionKeysFrom(raw: string | undefined): SessionKeys | undefined {
  return raw?.trim() ? parseSessionKeys(raw) : undefined;
}

function redisSettings(env: Env): RedisSettings | undefined {
  const url = secret(env, 'REDIS_URL')?.trim() || undefined;
  const sentinels = parseNodes(env.REDIS_SENTINELS, 'REDIS_SENTINELS');
  const clusterNodes = parseNodes(env.REDIS_CLUSTER_NODES, 'REDIS_CLUSTER_NODES');
  if (!url && sentinels.length === 0 && clusterNodes.length === 0) return undefined;
  if (sentinels.length > 0 && clusterNodes.length > 0) throw new PlatformError('CONFIG_INVALID', 'REDIS_SENTINELS and REDIS_CLUSTER_NODES: set one, not both', undefined);
  // Checked here, not only when connecting, so `npm start` refuses a bad value before PM2 forks.
  if (url) urlOptions(url);
  if (sentinels.length > 0 && !env.REDIS_SENTINEL_NAME?.trim()) throw new PlatformError('CONFIG_INVALID', 'REDIS_SENTINEL_NAME: required when REDIS_SENTINELS is set', undefined);
  return {
    url,
    sentinels,
    sentinelName: env.REDIS_SENTINEL_NAME?.trim() || undefined,
    clusterNodes,
    commandTimeoutMs: integer(env, 'REDIS_TIMEOUT_MS', 250, 10, 60_000),
  };
}

function adminToken(raw: string | undefined): string | undefined {
  const token = raw?.trim();
  if (!token) return undefined;
  // A short token on an endpoint reachable from anywhere is guessable; refuse it at start.
  if (token.length < 16) throw new PlatformError('CONFIG_INVALID', 'ADMIN_TOKEN: must be at least 16 characters', '(hidden)');
  return token;
}

/** DOMAIN_VERIFICATION=off|dns and, with dns, the variables it needs. */
function domainVerification(env: Env): DomainVerificationConfig | undefined {
  const mode = env.DOMAIN_VERIFICATION?.trim().toLowerCase() || 'off';
  if (mode !== 'off' && mode !== 'dns') throw new PlatformError('CONFIG_INVALID', `DOMAIN_VERIFICATION: "${env.DOMAIN_VERIFICATION}" is not one of off, dns`, env.DOMAIN_VERIFICATION);
  if (mode === 'off') return undefined;
  const secretValue = secret(env, 'DOMAIN_TOKEN_SECRET')?.trim();
  // Tokens derived from a guessable key could be forged for any site: refuse it at start.
  if (!secretValue) throw new PlatformError('CONFIG_INVALID', 'DOMAIN_TOKEN_SECRET: required when DOMAIN_VERIFICATION=dns (at least 32 random characters, e.g. openssl rand -base64 32)', undefined);
  if (secretValue.length < 32) throw new PlatformError('CONFIG_INVALID', 'DOMAIN_TOKEN_SECRET: must be at least 32 characters', '(hidden)');
  return {
    secret: secretValue,
    dnsServers: parseDnsServers(env.DNS_SERVERS),
    recheckMs: integer(env, 'DOMAIN_RECHECK_S', 3600, 1, 7 * 86_400) * 1000,
    retryMs: integer(env, 'DOMAIN_RETRY_S', 60, 1, 86_400) * 1000,
    graceMs: integer(env, 'DOMAIN_GRACE_S', 3 * 86_400, 0, 90 * 86_400) * 1000,
  };
}

/** DOMAIN_TARGET: IP addresses (A/AAAA) or one host name (CNAME) that custom domains should point at. */
function domainTarget(env: Env): string[] | undefined {
  const target = env.DOMAIN_TARGET?.split(',').map((s) => s.trim().toLowerCase()).filter(Boolean) ?? [];
  for (const item of target) {
    if (isIP(item) === 0 && !/^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$/.test(item)) {
      throw new PlatformError('CONFIG_INVALID', `DOMAIN_TARGET: "${item}" is neither a host name nor an IP address`, item);
    }
  }
  const names = target.filter((t) => isIP(t) === 0);
  if (names.length > 0 && target.length > 1) throw new PlatformError('CONFIG_INVALID', 'DOMAIN_TARGET: give one host name (for a CNAME) or IP addresses (for A/AAAA), not both or several names', env.DOMAIN_TARGET);
  return target.length > 0 ? target : undefined;
}

/** ACME_DIRECTORY_URL (unset = off), ACME_EMAIL, CERTS_DIR, ACME_RENEW_DAYS. */
function acmeConfig(env: Env, cwd: string): AcmeConfig | undefined {
  const raw = env.ACME_DIRECTORY_URL?.trim();
  const certsDir = env.CERTS_DIR?.trim() ? resolve(cwd, env.CERTS_DIR.trim()) : undefined;
  if (!raw) return undefined;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new PlatformError('CONFIG_INVALID', `ACME_DIRECTORY_URL: "${raw}" is not a URL`, raw);
  }
  // RFC 8555 §6.1: ACME runs over HTTPS only.
  if (url.protocol !== 'https:') throw new PlatformError('CONFIG_INVALID', `ACME_DIRECTORY_URL: "${raw}" must be an https:// URL`, raw);
  const email = env.ACME_EMAIL?.trim() || undefined;
  if (email !== undefined && !/^[^\s@:<>,]+@[^\s@:<>,]+\.[^\s@:<>,]+$/.test(email)) throw new PlatformError('CONFIG_INVALID', `ACME_EMAIL: "${email}" is not an email address`, email);
  return { directoryUrl: url.href, email, certsDir, renewBeforeMs: integer(env, 'ACME_RENEW_DAYS', 30, 1, 365) * 86_400_000 };
}

/** Reads and validates the environment once at start; every problem names the variable. */
export function loadConfig(env: Env = process.env, cwd = process.cwd()): ServerConfig {
  const platformRaw = env.PLATFORM_DOMAIN?.trim() || 'localhost';
  let platformDomain: string;
  try {
    platformDomain = normalizeHost(platformRaw).hostname;
  } catch (error) {
    throw new PlatformError('CONFIG_INVALID', `PLATFORM_DOMAIN: "${platformRaw}" is not a host name (${(error as Error).message})`, platformRaw);
  }
  const logLevel = env.LOG_LEVEL?.trim() || 'info';
  if (!['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].includes(logLevel)) {
    throw new PlatformError('CONFIG_INVALID', `LOG_LEVEL: "${logLevel}" is not one of fatal, error, warn, info, debug, trace, silent`, logLevel);
  }
  return {
    port: integer(env, 'PORT', 4321, 0, 65535),
    host: env.HOST?.trim() || undefined,
    sitesDir: resolve(cwd, env.SITES_DIR?.trim() || 'sites'),
    platformDomain,
    redisUrl: secret(env, 'REDIS_URL')?.trim() || undefined,
    trustedProxies: parseTrustedProxies(env.TRUSTED_PROXIES ?? '127.0.0.1,::1'),
    contentCheckMs: integer(env, 'CONTENT_CHECK_MS', 500, 0, 60_000),
    contentIo: contentIo(env),
    sitesRescanMs: integer(env, 'SITES_RESCAN_MS', 500, 0, 60_000),
    // The byte bound is the real limit; the entry bound only stops pathological numbers of tiny
    // entries. A site config and each page are separate entries, so 10,000 sites with a home page
    // each need 20,000: a lower default made a crawl over every site miss on every request.
    cacheMaxEntries: integer(env, 'SITE_CACHE_MAX_ENTRIES', 50_000, 1, 10_000_000),
    cacheMaxBytes: integer(env, 'SITE_CACHE_MAX_MB', 128, 1, 1_000_000) * 1024 * 1024,
    cssDir: resolve(cwd, env.CSS_DIR?.trim() || resolve(APP_DIR, 'site-css')),
    astroEntry: resolve(cwd, env.ASTRO_ENTRY?.trim() || resolve(APP_DIR, 'dist/server/entry.mjs')),
    staticMaxAge: integer(env, 'STATIC_MAX_AGE', 300, 0, 31_536_000),
    refusalDelayMs: integer(env, 'REFUSAL_DELAY_MS', 100, 0, 10_000),
    logLevel,
    adminAllow: parseTrustedProxies(env.ADMIN_ALLOW ?? '127.0.0.1,::1', 'ADMIN_ALLOW'),
    adminToken: adminToken(secret(env, 'ADMIN_TOKEN')),
    metricsSiteLabels: integer(env, 'METRICS_SITE_LABELS', 500, 0, 100_000),
    peerDir: env.PEER_DIR?.trim() ? resolve(cwd, env.PEER_DIR.trim()) : undefined,
    drainTimeoutMs: integer(env, 'DRAIN_TIMEOUT_MS', 8000, 0, 600_000),
    shutdownDelayMs: integer(env, 'SHUTDOWN_DELAY_MS', 0, 0, 600_000),
    redis: redisSettings(env),
    sessionKeys: sessionKeysFrom(secret(env, 'SESSION_KEYS')),
    sessionMaxAgeSeconds: integer(env, 'SESSION_MAX_AGE_S', 7 * 86_400, 300, 365 * 86_400),
    signInMaxFailures: integer(env, 'SIGNIN_MAX_FAILURES', 10, 1, 10_000),
    signInWindowSeconds: integer(env, 'SIGNIN_WINDOW_S', 900, 10, 86_400),
    edgeCacheSeconds: integer(env, 'EDGE_CACHE_S', 1, 0, 86_400),
    renderCacheBytes: integer(env, 'RENDER_CACHE_MB', 64, 0, 100_000) * 1024 * 1024,
    renderCacheMaxEntries: integer(env, 'RENDER_CACHE_MAX_ENTRIES', 10_000, 1, 10_000_000),
    renderCacheDir: privateCacheDir(env.RENDER_CACHE_DIR, 'rendered-pages', cwd),
    renderCacheDirBytes: integer(env, 'RENDER_CACHE_DIR_MB', 512, 1, 10_000_000) * 1024 * 1024,
    markdownCacheDir: markdownCacheDir(env, cwd),
    markdownCacheBytes: integer(env, 'MARKDOWN_CACHE_MB', 512, 1, 10_000_000) * 1024 * 1024,
    componentCacheDir: privateCacheDir(env.COMPONENT_CACHE_DIR, 'components', cwd),
    componentCacheBytes: integer(env, 'COMPONENT_CACHE_MB', 64, 1, 1_000_000) * 1024 * 1024,
    readyRequiresRedis: flag(env, 'READY_REQUIRES_REDIS', false),
    jwksAllowHosts: parseOutboundAllowList(env.JWKS_ALLOW_HOSTS, 'JWKS_ALLOW_HOSTS'),
    // Per user, like the Markdown cache: the temp folder survives process restarts and deploys;
    // set a persistent folder where it is emptied on reboot (tenant/host-claims.ts says why).
    stateDir: env.STATE_DIR?.trim() ? resolve(cwd, env.STATE_DIR.trim()) : join(tmpdir(), `astro-multi-tenant-${process.getuid?.() ?? 'user'}`, 'state'),
    // Read and validated by main.ts (plans/plans-file.ts), which names the file and the field.
    plansFile: env.PLANS_FILE?.trim() ? resolve(cwd, env.PLANS_FILE.trim()) : undefined,
    domainVerification: domainVerification(env),
    domainTarget: domainTarget(env),
    acme: acmeConfig(env, cwd),
  };
}
