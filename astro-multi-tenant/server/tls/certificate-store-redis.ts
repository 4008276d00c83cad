import { createHash } from 'node:crypto';
import type { Cluster, Redis } from 'ioredis';
import { isAccountRecord, isCertificateBundle, isCertificateRecord, isChallengeRecord, type CertificateRecord, type CertificateStore } from './certificate-store.ts';

// Deletes a lock only while its value is still this owner's: an expired lock re-taken by another
// process is never dropped by the late first holder.
const UNLOCK_SCRIPT = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`;

// Sets the pause only when it ends later than the one stored: two workers rate-limited at once with
// different Retry-After values leave the later one, as the file and memory stores do.
const PAUSE_SCRIPT = `
local current = tonumber(redis.call('GET', KEYS[1]) or '0') or 0
if current >= tonumber(ARGV[1]) then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1`;

/**
 * Runs a write that carries a private key (a certificate bundle, an account) and, when Redis refuses
 * it, drops the arguments ioredis puts on the error (`err.command.args`, the key's PEM included):
 * loggers print an error's own properties. The command's name stays, for the message.
 */
async function keyWrite<T>(write: Promise<T>): Promise<T> {
  try {
    return await write;
  } catch (error) {
    const command = (error as { command?: { name?: unknown } } | null)?.command;
    if (command && typeof command === 'object') (error as { command: unknown }).command = { name: command.name };
    throw error;
  }
}

const parse = (json: string | null): unknown => {
  if (json === null) return undefined;
  try {
    return JSON.parse(json);
  } catch {
    return undefined;
  }
};

/**
 * Certificates in Redis, shared by every machine. Keys (prefix `amt:acme` by default; each
 * command touches one key, so Redis Cluster works):
 * - `<p>:account:<sha256(directory)[:16]>`: the account of one CA, JSON;
 * - `<p>:certs` hash host → record JSON (~300 bytes: every worker HGETALLs it each tick);
 * - `<p>:bundles` hash host → { serial, chainPem, keyPem } (read only when a serial changed);
 * - `<p>:lock:<name>`: SET NX PX, value = owner;
 * - `<p>:challenge:<token>`: the HTTP-01 answer, expiring by itself (PX);
 * - `<p>:pause`: until when the CA asked the account to wait (PX; a shorter pause never replaces a longer one);
 * - `<p>:version`: INCR'd after every write of a record or certificate (workers poll it).
 * The private keys are as safe as this Redis: it must not be reachable by tenants (docs/security.md).
 */
export function createRedisCertificateStore(client: Redis | Cluster, prefix = 'amt:acme'): CertificateStore {
  const certs = `${prefix}:certs`;
  const bundles = `${prefix}:bundles`;
  const accountKey = (directoryUrl: string) => `${prefix}:account:${createHash('sha256').update(directoryUrl).digest('hex').slice(0, 16)}`;
  return {
    location: `redis ${prefix}:*`,
    async getAccount(directoryUrl) {
      const value = parse(await client.get(accountKey(directoryUrl)));
      return isAccountRecord(value) && value.directoryUrl === directoryUrl ? value : undefined;
    },
    async putAccount(record) {
      await keyWrite(client.set(accountKey(record.directoryUrl), JSON.stringify(record)));
    },
    async list() {
      const out = new Map<string, CertificateRecord>();
      for (const [host, json] of Object.entries(await client.hgetall(certs))) {
        const value = parse(json);
        // A record this version cannot read is skipped: the host is issued for again.
        if (isCertificateRecord(value)) out.set(host, value);
      }
      return out;
    },
    async version() {
      return (await client.get(`${prefix}:version`)) ?? '0';
    },
    async get(host) {
      const value = parse(await client.hget(certs, host));
      return isCertificateRecord(value) ? value : undefined;
    },
    async getBundle(host) {
      const value = parse(await client.hget(bundles, host));
      return isCertificateBundle(value) ? value : undefined;
    },
    async put(host, record, bundle, options) {
      // The bundle first: a reader that sees the new serial in the record finds its certificate.
      if (bundle) await keyWrite(client.hset(bundles, host, JSON.stringify(bundle)));
      await client.hset(certs, host, JSON.stringify(record));
      if (!options?.quiet) await client.incr(`${prefix}:version`);
    },
    async remove(host) {
      await client.hdel(certs, host);
      await client.hdel(bundles, host);
      await client.incr(`${prefix}:version`);
    },
    async lock(name, owner, ttlMs) {
      return (await client.set(`${prefix}:lock:${name}`, owner, 'PX', Math.max(1, Math.round(ttlMs)), 'NX')) === 'OK';
    },
    async unlock(name, owner) {
      await client.eval(UNLOCK_SCRIPT, 1, `${prefix}:lock:${name}`, owner);
    },
    async putChallenge(token, challenge) {
      await client.set(`${prefix}:challenge:${token}`, JSON.stringify(challenge), 'PX', Math.max(1, Math.round(challenge.expiresAt - Date.now())));
    },
    async getChallenge(token) {
      const value = parse(await client.get(`${prefix}:challenge:${token}`));
      return isChallengeRecord(value) ? value : undefined;
    },
    async removeChallenge(token) {
      await client.del(`${prefix}:challenge:${token}`);
    },
    async getPause() {
      const until = Number(await client.get(`${prefix}:pause`));
      return Number.isFinite(until) && until > Date.now() ? until : 0;
    },
    async setPause(until) {
      const ms = Math.round(until - Date.now());
      if (ms > 0) await client.eval(PAUSE_SCRIPT, 1, `${prefix}:pause`, String(Math.round(until)), ms);
    },
  };
}
