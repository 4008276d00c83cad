import { createHash } from 'node:crypto';
import { resolve } from 'node:path';
import { openPrivateStateFile, type PrivateStateFile, type StateFs } from '../tenant/private-state-file.ts';
import {
  isAccountRecord,
  isCertificateBundle,
  isCertificateRecord,
  isChallengeRecord,
  type AccountRecord,
  type CertificateBundle,
  type CertificateRecord,
  type CertificateStore,
  type ChallengeRecord,
} from './certificate-store.ts';

export interface FileCertificateStoreOptions {
  /** STATE_DIR: a folder only this user may use (tenant/private-state-file.ts). */
  dir: string;
  /** The sites folder these certificates serve: each sites folder gets its own files. */
  sitesDir: string;
  fs?: StateFs;
  now?: () => number;
}

interface CertificateFile {
  format: 1;
  accounts: Record<string, AccountRecord>;
  certs: Record<string, CertificateRecord>;
  bundles: Record<string, CertificateBundle>;
  locks: Record<string, { owner: string; expiresAt: number }>;
  pause: number;
}

interface ChallengeFile {
  format: 1;
  challenges: Record<string, ChallengeRecord>;
}

/** Keeps the entries of `record` that pass `check`. */
function filtered<T>(record: unknown, check: (value: unknown) => value is T): Record<string, T> {
  const out: Record<string, T> = {};
  if (typeof record !== 'object' || record === null) return out;
  for (const [key, value] of Object.entries(record)) if (check(value)) out[key] = value;
  return out;
}

const isLock = (value: unknown): value is { owner: string; expiresAt: number } =>
  typeof value === 'object' && value !== null && typeof (value as { owner?: unknown }).owner === 'string' && typeof (value as { expiresAt?: unknown }).expiresAt === 'number';

/** Reads through the file only when it changed (inode, size, mtime): the certificates file holds every PEM and is listed every tick. */
function cachedReader<T>(file: PrivateStateFile<T>): () => Promise<T> {
  let version = '';
  let value: T | undefined;
  return async () => {
    const current = await file.version();
    if (value === undefined || current !== version || current === 'none') {
      value = await file.read();
      version = current;
    }
    return value;
  };
}

/**
 * Certificates of one sites folder in private files under STATE_DIR, shared by the processes of
 * one machine (embedded mode: no Redis): `acme-<hash>.json` (accounts, records, PEMs, locks, the
 * rate-limit pause) and `acme-challenges-<hash>.json` (pending HTTP-01 answers, read on each
 * challenge request, so kept apart from the PEMs). Written like the host claims and domain state
 * (tenant/private-state-file.ts: folder 0700, files 0600, a lock file for writers, temp + rename).
 */
export function createFileCertificateStore(options: FileCertificateStoreOptions): CertificateStore {
  const now = options.now ?? Date.now;
  const hash = createHash('sha256').update(resolve(options.sitesDir)).digest('hex').slice(0, 16);
  const main = openPrivateStateFile<CertificateFile>({
    dir: options.dir,
    fs: options.fs,
    name: `acme-${hash}.json`,
    label: 'certificate state',
    empty: () => ({ format: 1, accounts: {}, certs: {}, bundles: {}, locks: {}, pause: 0 }),
    parse(json) {
      const p = json as Partial<CertificateFile> | null;
      if (p?.format !== 1) return undefined;
      return {
        format: 1,
        accounts: filtered(p.accounts, isAccountRecord),
        certs: filtered(p.certs, isCertificateRecord),
        bundles: filtered(p.bundles, isCertificateBundle),
        locks: filtered(p.locks, isLock),
        pause: typeof p.pause === 'number' ? p.pause : 0,
      };
    },
  });
  const challengeFile = openPrivateStateFile<ChallengeFile>({
    dir: options.dir,
    fs: options.fs,
    name: `acme-challenges-${hash}.json`,
    label: 'ACME challenges',
    empty: () => ({ format: 1, challenges: {} }),
    parse(json) {
      const p = json as Partial<ChallengeFile> | null;
      return p?.format === 1 ? { format: 1, challenges: filtered(p.challenges, isChallengeRecord) } : undefined;
    },
  });
  const readMain = cachedReader(main);
  const readChallenges = cachedReader(challengeFile);
  const change = (fn: (f: CertificateFile) => void) => main.update((f) => {
    fn(f);
    return { changed: true, result: undefined };
  });

  return {
    location: main.location,
    async getAccount(directoryUrl) {
      const a = (await readMain()).accounts[directoryUrl];
      return a ? structuredClone(a) : undefined;
    },
    putAccount: (record) => change((f) => void (f.accounts[record.directoryUrl] = record)),
    async list() {
      return new Map(Object.entries(structuredClone((await readMain()).certs)));
    },
    // Locks and the pause are in the same file, so this moves on those writes too: a few extra lists.
    version: () => main.version(),
    async get(host) {
      const r = (await readMain()).certs[host];
      return r ? structuredClone(r) : undefined;
    },
    async getBundle(host) {
      const b = (await readMain()).bundles[host];
      return b ? structuredClone(b) : undefined;
    },
    // `quiet` cannot help here: the file's stat is the version. Embedded mode is one machine's workers.
    put: (host, record, bundle) =>
      change((f) => {
        f.certs[host] = record;
        if (bundle) f.bundles[host] = bundle;
      }),
    remove: (host) =>
      change((f) => {
        delete f.certs[host];
        delete f.bundles[host];
      }),
    lock: (name, owner, ttlMs) =>
      main.update((f) => {
        const held = f.locks[name];
        if (held && held.owner !== owner && held.expiresAt > now()) return { changed: false, result: false };
        f.locks[name] = { owner, expiresAt: now() + ttlMs };
        return { changed: true, result: true };
      }),
    unlock: (name, owner) =>
      main.update((f) => {
        if (f.locks[name]?.owner !== owner) return { changed: false, result: undefined };
        delete f.locks[name];
        return { changed: true, result: undefined };
      }),
    putChallenge: (token, challenge) =>
      challengeFile.update((f) => {
        // Expired answers (an attempt that died before cleaning up) are dropped on every write.
        for (const [t, c] of Object.entries(f.challenges)) if (c.expiresAt <= now()) delete f.challenges[t];
        f.challenges[token] = challenge;
        return { changed: true, result: undefined };
      }),
    async getChallenge(token) {
      const c = (await readChallenges()).challenges[token];
      return c && c.expiresAt > now() ? { ...c } : undefined;
    },
    removeChallenge: (token) =>
      challengeFile.update((f) => {
        if (!(token in f.challenges)) return { changed: false, result: undefined };
        delete f.challenges[token];
        return { changed: true, result: undefined };
      }),
    async getPause() {
      const pause = (await readMain()).pause;
      return pause > now() ? pause : 0;
    },
    setPause: (until) => change((f) => void (f.pause = Math.max(f.pause, until))),
  };
}
