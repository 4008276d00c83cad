import { createHash } from 'node:crypto';
import { resolve } from 'node:path';
import { openPrivateStateFile, type StateFs } from './private-state-file.ts';
import type { DomainRecord, DomainStateStore } from './domain-state.ts';

export interface FileDomainStateStoreOptions {
  /** STATE_DIR: a folder only this user may use (created 0700 when missing; refused when it is not private). */
  dir: string;
  /** The sites folder the records are about: each sites folder gets its own file. */
  sitesDir: string;
  fs?: StateFs;
  /** Give up waiting for another process's lock after this long (ms). Default 5,000. */
  lockTimeoutMs?: number;
  /** A lock older than this (ms) was left by a process that died while holding it. Default 10,000. */
  staleLockMs?: number;
  uid?: number;
}

interface DomainFile {
  format: 1;
  sitesDir: string;
  domains: Record<string, DomainRecord>;
}

const STATES = new Set(['pending', 'verified', 'failing', 'failed']);

/**
 * Domain verification records of one sites folder in a private JSON file,
 * `<dir>/domains-<hash>.json` (hash of the sites folder's absolute path), shared by every process
 * on this machine. Kept like the host claims, through tenant/private-state-file.ts (why it must be
 * private, how writers lock); records this version cannot read are dropped (that domain is pending
 * and checked again).
 */
export function createFileDomainStateStore(options: FileDomainStateStoreOptions): DomainStateStore {
  const sitesDir = resolve(options.sitesDir);
  const file = openPrivateStateFile<DomainFile>({
    ...options,
    name: `domains-${createHash('sha256').update(sitesDir).digest('hex').slice(0, 16)}.json`,
    label: 'domain state',
    empty: () => ({ format: 1, sitesDir, domains: {} }),
    parse(json) {
      const parsed = json as Partial<DomainFile> | null;
      if (parsed?.format !== 1 || typeof parsed.domains !== 'object' || parsed.domains === null) return undefined;
      const domains: DomainFile['domains'] = {};
      for (const [domain, r] of Object.entries(parsed.domains)) {
        if (r && typeof r.site === 'string' && STATES.has(r.state) && typeof r.checkedAt === 'number') domains[domain] = r;
      }
      return { format: 1, sitesDir, domains };
    },
  });
  return {
    location: file.location,
    async load() {
      return new Map(Object.entries((await file.read()).domains));
    },
    async put(updates) {
      if (updates.size === 0) return;
      await file.update((records) => {
        for (const [domain, record] of updates) {
          // Another process may have checked the same domain meanwhile: the later check wins.
          const current = records.domains[domain];
          if (!current || current.checkedAt <= record.checkedAt) records.domains[domain] = record;
        }
        return { changed: true, result: undefined };
      });
    },
  };
}
