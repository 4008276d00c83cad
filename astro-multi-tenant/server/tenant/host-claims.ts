import { createHash } from 'node:crypto';
import { resolve } from 'node:path';
import { openPrivateStateFile, type StateFs } from './private-state-file.ts';

/**
 * Who owns a custom host: the site that served it first, recorded so that a newcomer listing the
 * same host is refused until the owner drops it, on every worker, after any restart, whatever the
 * site ids. One record per host: `host → site id`.
 *
 * The store is the one place every process serving a sites folder agrees on. This file has two:
 * a private JSON file (one machine: the workers of a PM2 cluster and `npm run sites`), and an
 * in-process map (tests, one-shot commands that must not write state). A shared store (Redis, for
 * several machines) implements the same interface; the custom-domain ownership checks keep their
 * state next to these records.
 *
 * Every operation is atomic per host across the processes sharing the store: of two processes
 * claiming one free host at once, exactly one is recorded and both are told which.
 */
export interface ClaimStore {
  /** Where the records live, for messages. */
  readonly location: string;
  /** A cheap identity of the records: it changes whenever a record is added or removed. */
  version(): Promise<string>;
  /** Every record: host → owning site id. */
  load(): Promise<Map<string, string>>;
  /**
   * For each `host → site`: records `site` as the owner unless an owner is already recorded.
   * Returns the owner of each of those hosts afterwards (the candidate, or whoever held it).
   */
  claim(candidates: ReadonlyMap<string, string>): Promise<Map<string, string>>;
  /** For each `host → site`: deletes the record if it still names that site (compare and delete). */
  release(records: ReadonlyMap<string, string>): Promise<void>;
}

/** A store kept in this process only: for tests and for commands that only read. */
export function createMemoryClaimStore(initial: Iterable<[string, string]> = []): ClaimStore {
  const records = new Map(initial);
  let changes = 0;
  return {
    location: '(memory)',
    version: async () => String(changes),
    load: async () => new Map(records),
    async claim(candidates) {
      const out = new Map<string, string>();
      for (const [host, site] of candidates) {
        if (!records.has(host)) {
          records.set(host, site);
          changes++;
        }
        out.set(host, records.get(host)!);
      }
      return out;
    },
    async release(owned) {
      for (const [host, site] of owned) {
        if (records.get(host) === site) {
          records.delete(host);
          changes++;
        }
      }
    },
  };
}

/** The file system calls the file store makes (tenant/private-state-file.ts); injectable so tests can fake an unsafe folder. */
export type ClaimFs = StateFs;

export interface FileClaimStoreOptions {
  /** STATE_DIR: a folder only this user may use (created 0700 when missing; refused when it is not private). */
  dir: string;
  /** The sites folder the records are about: each sites folder gets its own file. */
  sitesDir: string;
  fs?: ClaimFs;
  /** Give up waiting for another process's lock after this long (ms). Default 5,000. */
  lockTimeoutMs?: number;
  /** A lock older than this (ms) was left by a process that died while holding it. Default 10,000. */
  staleLockMs?: number;
  uid?: number;
}

interface ClaimFile {
  format: 1;
  sitesDir: string;
  /** host → owner and when it was recorded (ISO 8601). */
  claims: Record<string, { site: string; since: string }>;
}

/**
 * The records of one sites folder in a private JSON file, `<dir>/host-claims-<hash>.json`, where
 * the hash is of the sites folder's absolute path (so two hosts on one machine serving different
 * folders never share records).
 *
 * The file is kept by tenant/private-state-file.ts: the records decide which tenant answers a
 * host, so the folder and file must be this user's alone (anything else is refused with
 * CONFIG_INVALID naming STATE_DIR), and writers lock, read, change and rename a temp file over it.
 */
export function createFileClaimStore(options: FileClaimStoreOptions): ClaimStore {
  const sitesDir = resolve(options.sitesDir);
  const file = openPrivateStateFile<ClaimFile>({
    ...options,
    name: `host-claims-${createHash('sha256').update(sitesDir).digest('hex').slice(0, 16)}.json`,
    label: 'host claims',
    empty: () => ({ format: 1, sitesDir, claims: {} }),
    parse(json) {
      const parsed = json as Partial<ClaimFile> | null;
      if (parsed?.format !== 1 || typeof parsed.claims !== 'object' || parsed.claims === null) return undefined;
      const claims: ClaimFile['claims'] = {};
      for (const [host, record] of Object.entries(parsed.claims)) {
        if (record && typeof record.site === 'string') claims[host] = { site: record.site, since: String(record.since ?? '') };
      }
      return { format: 1, sitesDir, claims };
    },
  });

  return {
    location: file.location,
    version: () => file.version(),
    async load() {
      const records = await file.read();
      return new Map(Object.entries(records.claims).map(([host, r]) => [host, r.site]));
    },
    claim(candidates) {
      return file.update((records) => {
        let changed = false;
        const out = new Map<string, string>();
        const since = new Date().toISOString();
        for (const [host, site] of candidates) {
          if (!Object.hasOwn(records.claims, host)) {
            records.claims[host] = { site, since };
            changed = true;
          }
          out.set(host, records.claims[host]!.site);
        }
        return { changed, result: out };
      });
    },
    release(owned) {
      return file.update((records) => {
        let changed = false;
        for (const [host, site] of owned) {
          if (records.claims[host]?.site === site) {
            delete records.claims[host];
            changed = true;
          }
        }
        return { changed, result: undefined };
      });
    },
  };
}
