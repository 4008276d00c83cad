/**
 * Where a custom domain stands in its ownership check (DOMAIN_VERIFICATION=dns):
 * - `pending`: never proven for this site; not served.
 * - `verified`: the TXT record carried the site's token at the last check; served.
 * - `failing`: was verified, the last check(s) failed; still served until `failingSince + grace`.
 * - `failed`: failing for longer than the grace period; not served until the record is back.
 */
export type DomainState = 'pending' | 'verified' | 'failing' | 'failed';

/** One domain's record, shared by every worker (times are ms since the epoch). */
export interface DomainRecord {
  /** The site this record is about: a record for another site counts as pending for this one. */
  site: string;
  state: DomainState;
  checkedAt: number;
  verifiedAt?: number;
  failingSince?: number;
  /** Why the last check failed, for the status page and `npm run sites -- domains`. */
  detail?: string;
}

/**
 * The records every process agrees on: a private file under STATE_DIR on one machine
 * (tenant/domain-state-file.ts), an in-process map for tests and one-shot commands.
 */
export interface DomainStateStore {
  /** Where the records live, for messages. */
  readonly location: string;
  /** Every record: domain → record. */
  load(): Promise<Map<string, DomainRecord>>;
  /** Writes these records; where the store holds a later check (`checkedAt`) of a domain, that one is kept. */
  put(records: ReadonlyMap<string, DomainRecord>): Promise<void>;
}

/** A store kept in this process only. */
export function createMemoryDomainStateStore(): DomainStateStore {
  const records = new Map<string, DomainRecord>();
  return {
    location: '(memory)',
    load: async () => new Map(records),
    async put(updates) {
      for (const [domain, record] of updates) {
        const current = records.get(domain);
        if (!current || current.checkedAt <= record.checkedAt) records.set(domain, { ...record });
      }
    },
  };
}

/** What one TXT lookup found: whether the expected token was among the records, or why not. */
export interface CheckResult {
  found: boolean;
  detail?: string;
}

/**
 * The record after a check of `domain` for `site` at `now` (ms). Pure.
 * A found token verifies (from any state); a miss keeps pending/failed as they are, turns verified
 * into failing (kept serving) and failing into failed once `graceMs` has passed since the first miss.
 */
export function nextRecord(previous: DomainRecord | undefined, site: string, result: CheckResult, now: number, graceMs: number): DomainRecord {
  const prev = previous?.site === site ? previous : undefined;
  if (result.found) return { site, state: 'verified', checkedAt: now, verifiedAt: prev?.state === 'verified' || prev?.state === 'failing' ? prev.verifiedAt ?? now : now };
  const detail = result.detail;
  if (!prev || prev.state === 'pending') return { site, state: 'pending', checkedAt: now, detail };
  if (prev.state === 'failed') return { ...prev, checkedAt: now, detail };
  const failingSince = prev.failingSince ?? now;
  const state = now - failingSince >= graceMs ? 'failed' : 'failing';
  return { site, state, checkedAt: now, verifiedAt: prev.verifiedAt, failingSince, detail };
}

/** The state `site` has on a domain at `now`, given the record (grace expiry applies without waiting for a check). Pure. */
export function effectiveState(record: DomainRecord | undefined, site: string, now: number, graceMs: number): DomainState {
  if (!record || record.site !== site) return 'pending';
  if (record.state === 'failing' && now - (record.failingSince ?? now) >= graceMs) return 'failed';
  return record.state;
}

/** Whether a domain in this state is served. */
export const isServed = (state: DomainState): boolean => state === 'verified' || state === 'failing';
