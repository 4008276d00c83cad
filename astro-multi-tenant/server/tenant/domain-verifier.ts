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
  /** Told of every state change (for logs). */
  onChange?: (domain: string, site: string, from: DomainState, to: DomainState, detail: string | undefined) => void;
  onError?: (error: unknown) => void;
}

export interface DomainVerifier {
  /** Whether `site` may be served on custom host `domain` now: a memory lookup, for the request path. */
  allows(site: string, domain: string): boolean;
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
 */
export function createDomainVerifier(options: DomainVerifierOptions): DomainVerifier {
  const now = options.now ?? Date.now;
  const maxChecks = options.maxChecksPerTick ?? 50;
  let records = new Map<string, DomainRecord>();
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;
  let intervalMs = 0;
  let soon = false;

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
    records = await options.store.load();
    const at = now();
    const todo: Array<[string, string]> = [];
    for (const [domain, site] of options.hosts()) {
      if (due(records.get(domain), site, at)) todo.push([site, domain]);
    }
    // The longest-unchecked first, so a backlog drains fairly.
    todo.sort((a, b) => (records.get(a[1])?.checkedAt ?? 0) - (records.get(b[1])?.checkedAt ?? 0));
    const batch = todo.slice(0, maxChecks);
    const updates = new Map<string, DomainRecord>();
    for (let i = 0; i < batch.length; i += 8) {
      const results = await Promise.all(batch.slice(i, i + 8).map(async ([site, domain]) => [domain, await check(site, domain)] as const));
      for (const [domain, record] of results) updates.set(domain, record);
    }
    if (updates.size === 0) return;
    await options.store.put(updates);
    for (const [domain, record] of updates) {
      // The recorded state, not the effective one: a grace period that ran out shows as failing→failed when recorded.
      const previous = records.get(domain);
      const before = previous?.site === record.site ? previous.state : 'pending';
      if (before !== record.state) options.onChange?.(domain, record.site, before, record.state, record.detail);
    }
    records = await options.store.load();
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
    async refresh() {
      records = await options.store.load();
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
          detail: mine?.detail,
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
