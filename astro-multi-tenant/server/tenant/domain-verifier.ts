import { verificationRecordName, verificationToken } from './domain-token.ts';
import { effectiveState, isServed, nextRecord, type DomainRecord, type DomainState, type DomainStateStore } from './domain-state.ts';
import type { TxtLookup } from './domain-dns.ts';

/** One custom domain of one site, as the status page and `npm run sites -- domains` show it. */
export interface DomainStatus {
  domain: string;
  site: string;
  state: DomainState;
  /** The TXT record to create: name and value. */
  txtName: string;
  token: string;
  checkedAt?: number;
  verifiedAt?: number;
  failingSince?: number;
  /** When a failing domain stops being served (ms since the epoch). */
  graceEndsAt?: number;
  detail?: string;
}

export interface DomainVerifierOptions {
  store: DomainStateStore;
  /** DOMAIN_TOKEN_SECRET: the key tokens are derived from (tenant/domain-token.ts). */
  secret: string;
  lookupTxt: TxtLookup;
  /** Every custom domain and alias now, with the site it would be served for: `[host, siteId]` (the registry's index). */
  hosts: () => Iterable<readonly [string, string]>;
  /** ms since the epoch; injectable for tests. */
  now?: () => number;
  /** How often a verified domain is checked again (ms). */
  recheckMs: number;
  /** How often a pending, failing or failed domain is checked again (ms). */
  retryMs: number;
  /** How long a verified domain keeps serving after its checks start failing (ms). */
  graceMs: number;
  /** At most this many DNS lookups per tick (default 50), 8 at a time: thousands of domains are spread over ticks. */
  maxChecksPerTick?: number;
  /**
   * Told, after the shared records were read, of the domains whose owner by check (`ownerOf`)
   * changed: the host index decides those hosts again (tenant/registry.ts).
   */
  onOwnersChanged?: (domains: readonly string[]) => void;
  /** Told of every state change (for logs). */
  onChange?: (domain: string, site: string, from: DomainState, to: DomainState, detail: string | undefined) => void;
  onError?: (error: unknown) => void;
}

export interface DomainVerifier {
  /** Whether `site` may be served on custom host `domain` now: a memory lookup, for the request path. */
  allows(site: string, domain: string): boolean;
  /**
   * The site `domain` is verified for now (verified, or failing within the grace period), if any:
   * it owns the host whatever the claim records say, and no other site can claim it. Memory only.
   */
  ownerOf(domain: string): string | undefined;
  /** Loads the shared records, checks the domains that are due, writes the results. */
  tick(): Promise<void>;
  /** Loads the shared records only (no DNS): what a process does before serving, so a restart never forgets verified domains. */
  refresh(): Promise<void>;
  /** The status of each of these domains of `site` (from the last loaded records). */
  describe(site: string, domains: readonly string[]): DomainStatus[];
  /** Ticks every `intervalMs` until stop(); unref'd, so it never keeps a process alive. */
  start(intervalMs: number): void;
  stop(): void;
}

/**
 * The domain ownership checks of DOMAIN_VERIFICATION=dns.
 *
 * A custom domain or alias of a site is served only once a TXT record `_amt-verify.<domain>` has
 * carried that site's token (tenant/domain-token.ts). Checks run in the background (`tick`), never
 * on the request path: `allows` reads the records last loaded from the shared store, so every
 * worker and `npm run sites` see one state, and whichever process finds a domain due checks it.
 * A domain never seen before (first request, or just added to site.json) makes the next tick come
 * at once. Verified domains are checked every `recheckMs`; a failed check keeps one serving for
 * `graceMs` (state `failing`, reported), after which it is `failed` and answers like an unknown host.
 *
 * Ownership: there is one record per domain, for one site. Every site listing a domain is checked
 * (`hosts` gives every claimant, not only the host index's choice), so the site holding the DNS
 * wins the domain even when another listed it first. While a domain is verified for a site that
 * still lists it, no other site is checked for it: it cannot be claimed by another. A check of a
 * site that is not the record's (a challenger) is written only when it finds that site's token
 * (the record then passes to it), and is repeated every `retryMs` at most, per process; so a
 * squatter's failed checks never overwrite the owner's record, on any machine, after any restart.
 */
export function createDomainVerifier(options: DomainVerifierOptions): DomainVerifier {
  const now = options.now ?? Date.now;
  const maxChecks = options.maxChecksPerTick ?? 50;
  let records = new Map<string, DomainRecord>();
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;
  let intervalMs = 0;
  let soon = false;
  /** `domain\0site` → when this process last checked a challenger (ms): its misses are not recorded. */
  const challenged = new Map<string, number>();

  const servedOwner = (record: DomainRecord | undefined, at: number) => (record && isServed(effectiveState(record, record.site, at, options.graceMs)) ? record.site : undefined);

  /** Takes newly loaded records and tells which domains changed owner. */
  function replaceRecords(next: Map<string, DomainRecord>) {
    const at = now();
    const changed: string[] = [];
    for (const domain of new Set([...records.keys(), ...next.keys()])) {
      if (servedOwner(records.get(domain), at) !== servedOwner(next.get(domain), at)) changed.push(domain);
    }
    records = next;
    if (changed.length > 0) options.onOwnersChanged?.(changed);
  }

  function due(record: DomainRecord | undefined, site: string, at: number): boolean {
    if (!record || record.site !== site) return true;
    const every = record.state === 'verified' ? options.recheckMs : options.retryMs;
    return at - record.checkedAt >= every;
  }

  async function check(site: string, domain: string): Promise<DomainRecord> {
    const token = verificationToken(options.secret, site, domain);
    let result;
    try {
      const values = await options.lookupTxt(verificationRecordName(domain));
      result = values.includes(token)
        ? { found: true }
        : { found: false, detail: values.length === 0 ? `no TXT record at ${verificationRecordName(domain)}` : `the TXT record at ${verificationRecordName(domain)} does not carry this site's token` };
    } catch (error) {
      result = { found: false, detail: `DNS lookup failed: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}` };
    }
    const at = now();
    return nextRecord(records.get(domain), site, result, at, options.graceMs);
  }

  async function runTick(): Promise<void> {
    replaceRecords(await options.store.load());
    const at = now();
    const claimants = new Map<string, Set<string>>();
    for (const [domain, site] of options.hosts()) {
      if (!claimants.has(domain)) claimants.set(domain, new Set());
      claimants.get(domain)!.add(site);
    }
    const todo: Array<[string, string]> = [];
    const live = new Set<string>();
    for (const [domain, sites] of claimants) {
      const record = records.get(domain);
      const owner = servedOwner(record, at);
      for (const site of sites) {
        if (!record || record.site === site) {
          if (due(record, site, at)) todo.push([site, domain]);
          continue;
        }
        // Verified for a site that still lists it: nobody else is even checked.
        if (owner !== undefined && sites.has(owner)) continue;
        const key = `${domain}\0${site}`;
        live.add(key);
        if (at - (challenged.get(key) ?? -Infinity) >= options.retryMs) todo.push([site, domain]);
      }
    }
    for (const key of challenged.keys()) if (!live.has(key)) challenged.delete(key);
    // The longest-unchecked first, so a backlog drains fairly.
    todo.sort((a, b) => (records.get(a[1])?.checkedAt ?? 0) - (records.get(b[1])?.checkedAt ?? 0));
    const batch = todo.slice(0, maxChecks);
    const updates = new Map<string, DomainRecord>();
    for (let i = 0; i < batch.length; i += 8) {
      const results = await Promise.all(batch.slice(i, i + 8).map(async ([site, domain]) => [domain, await check(site, domain)] as const));
      for (const [domain, record] of results) {
        const current = updates.get(domain) ?? records.get(domain);
        // A challenger's miss is remembered here only: the record stays its owner's.
        if (current && current.site !== record.site && record.state !== 'verified') {
          challenged.set(`${domain}\0${record.site}`, record.checkedAt);
          continue;
        }
        challenged.delete(`${domain}\0${record.site}`);
        updates.set(domain, record);
      }
    }
    if (updates.size === 0) return;
    await options.store.put(updates);
    const previousRecords = records;
    // Reloaded before anyone is told: a listener that asks (describe, allows) sees the new state.
    replaceRecords(await options.store.load());
    for (const [domain, record] of updates) {
      // The recorded state, not the effective one: a grace period that ran out shows as failing→failed when recorded.
      const previous = previousRecords.get(domain);
      const before = previous?.site === record.site ? previous.state : 'pending';
      if (before !== record.state) options.onChange?.(domain, record.site, before, record.state, record.detail);
    }
  }

  const verifier: DomainVerifier = {
    allows(site, domain) {
      const record = records.get(domain);
      if (!record && intervalMs > 0 && !soon) {
        // First seen: check in the background now rather than at the next interval.
        soon = true;
        setImmediate(() => void verifier.tick().catch((error) => options.onError?.(error)).finally(() => (soon = false)));
      }
      return isServed(effectiveState(record, site, now(), options.graceMs));
    },
    ownerOf(domain) {
      return servedOwner(records.get(domain), now());
    },
    async refresh() {
      replaceRecords(await options.store.load());
    },
    tick() {
      // One tick at a time per process: a slow DNS server never stacks lookups.
      running ??= runTick().finally(() => (running = undefined));
      return running;
    },
    describe(site, domains) {
      const at = now();
      return domains.map((domain) => {
        const record = records.get(domain);
        const mine = record?.site === site ? record : undefined;
        const state = effectiveState(record, site, at, options.graceMs);
        const owner = servedOwner(record, at);
        const taken = owner !== undefined && owner !== site ? `verified for site "${owner}": a domain verified for one site cannot be claimed by another until that site drops it or its check fails` : undefined;
        return {
          domain,
          site,
          state,
          txtName: verificationRecordName(domain),
          token: verificationToken(options.secret, site, domain),
          checkedAt: mine?.checkedAt,
          verifiedAt: mine?.verifiedAt,
          failingSince: mine?.failingSince,
          graceEndsAt: mine?.failingSince !== undefined ? mine.failingSince + options.graceMs : undefined,
          detail: taken ?? mine?.detail,
        };
      });
    },
    start(every) {
      intervalMs = every;
      const loop = () => {
        timer = setTimeout(() => {
          void verifier.tick().catch((error) => options.onError?.(error)).finally(() => {
            if (timer) loop();
          });
        }, intervalMs);
        timer.unref();
      };
      void verifier.tick().catch((error) => options.onError?.(error));
      loop();
    },
    stop() {
      if (timer) clearTimeout(timer);
      timer = undefined;
      intervalMs = 0;
    },
  };
  return verifier;
}
