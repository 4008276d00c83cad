import { randomUUID } from 'node:crypto';
import type { CertificateRecord, CertificateStore } from './certificate-store.ts';
import type { AcmeIssuer, IssuedCertificate } from './acme-issuer.ts';
import type { CertsDir, SyncResult } from './certs-dir.ts';
import { renewalMoment, type RenewalWindow } from './renewal-info.ts';
import { AcmeAttemptError } from './acme-problem.ts';
import { orderDue } from './order-queue.ts';
import { afterFailure, afterSuccess, backoffMs, certificateState, hasCertificate, isBackingOff, needsCertificate, nextEventAt, renewalTime, type AttemptFailure, type CertificateState } from './renewal-schedule.ts';

export interface CertificateManagerOptions {
  store: CertificateStore;
  issuer: AcmeIssuer;
  /**
   * The hosts that should have a certificate now, host → site (tls/certificate-names.ts), or
   * undefined while that is not known (the domain records could not be read): then nothing is
   * issued or removed, and the files are only kept in step with the store.
   */
  wanted: () => Map<string, string> | undefined;
  /**
   * Whether a request for `host` would be served now (the tenant resolver's answer, the same one
   * `/_platform/tls/ask` gives: a valid site, the host owned by it); checked right before ordering,
   * so an invalid site.json or a lost host claim never gets a certificate. Default: always.
   */
  serves?: (host: string) => Promise<boolean>;
  /** ACME_RENEW_DAYS in ms: renew this long before expiry (see renewal-schedule.ts for short lifetimes). */
  renewBeforeMs: number;
  /** A host no site wants keeps its certificate this long (ms) before it is removed, so a passing glitch never deletes certificates. Default one hour. */
  removeAfterMs?: number;
  /**
   * A host must have been unwanted on this process this long (ms) before it is marked unwanted in
   * the store. Machines learn of a new domain or a verification a little apart (registry sweeps,
   * verifier ticks): without this, one that has not yet learnt would mark the host and one that has
   * would clear the mark, each write moving the store's version and making every worker list again.
   * Default 2 minutes.
   */
  unwantedGraceMs?: number;
  /** This machine's CERTS_DIR; undefined writes no files. */
  certsDir?: CertsDir;
  now?: () => number;
  /** At most this many orders per tick (one at a time), so a backlog of thousands drains over ticks. Default 5. */
  maxIssuesPerTick?: number;
  /** How long a domain's issuing lock lasts (ms); longer than any order takes. Default 5 minutes. */
  lockTtlMs?: number;
  /**
   * The CA's renewal information (ARI, tls/renewal-info.ts) for a certificate: undefined when the
   * CA offers none. Omitted: renewal goes by dates alone.
   */
  renewalInfo?: (chainPem: string) => Promise<RenewalWindow | undefined>;
  /** At most this many ARI questions per tick. Default 10. */
  maxRenewalInfoPerTick?: number;
  /** Random numbers in [0, 1): where in the CA's window to renew. Default Math.random. */
  random?: () => number;
  onIssued?: (host: string, site: string, cert: IssuedCertificate, renewal: boolean) => void;
  /** The CA's renewal information moved a certificate's renewal earlier (a revocation, an incident). */
  onRenewalAdvised?: (host: string, renewAfter: number) => void;
  onFailure?: (host: string, site: string, failure: AttemptFailure, record: CertificateRecord) => void;
  onRemoved?: (host: string) => void;
  onSynced?: (result: SyncResult) => void;
  /** CERTS_DIR could not be written (permissions, a full disk): the store is fine, this machine's files lag. */
  onSyncError?: (error: unknown) => void;
  /** The shared store could not be read or written: nothing was decided this tick. */
  onError?: (error: unknown) => void;
}

/** One host's certificate, as the status page and `npm run sites -- domains` show it. */
export interface CertificateStatus {
  host: string;
  site: string;
  state: CertificateState;
  serial?: string;
  notAfter?: number;
  /** Whole days until notAfter (negative once expired). */
  daysLeft?: number;
  failures: number;
  lastError?: string;
  nextAttemptAt?: number;
}

export interface CertificateManager {
  /** Loads the store, removes certificates no site wants, issues what is due, syncs CERTS_DIR. */
  tick(): Promise<void>;
  /**
   * Until stop() (timers unref'd): a full tick every `intervalMs`, and in between, every `pollMs`
   * (default 5 s), a check of the store's version that ticks at once when another process wrote a
   * certificate; a renewal or retry falling due is met to the poll.
   */
  start(intervalMs: number, pollMs?: number): void;
  stop(): void;
  /** Runs a tick soon (a domain was just verified). */
  wake(): void;
  /** The status of each wanted host, from the last tick (no I/O). */
  statuses(): CertificateStatus[];
  /** The status of these hosts (no I/O). */
  describe(hosts: readonly string[]): CertificateStatus[];
}

const DAY_MS = 86_400_000;

/**
 * Certificates for the hosts the platform serves, by ACME, shared by every worker of every machine.
 *
 * Every worker ticks. A tick reads the records (small: no PEMs), then for each wanted host whose
 * certificate is missing, revoked, expired or inside its renewal window, and which is not backing
 * off, takes the host's lock in the shared store (one issuer per domain across the cluster, the
 * lock expiring by itself if its holder dies), re-reads the record (another worker may have just
 * renewed it) and orders. A failure records its kind and a next attempt (exponential backoff, or
 * the CA's Retry-After if later); a rate limit also pauses the whole account until Retry-After.
 * Where the CA serves renewal information (ARI), a few certificates a tick are asked about, so a
 * certificate the CA revoked is renewed at once. A host no site wants any more (for 2 minutes on
 * this process) is marked, and removed from the store an hour later. Then every worker writes the
 * store's certificates to its machine's CERTS_DIR, and between full ticks polls the store's
 * version so a certificate issued elsewhere reaches this machine within seconds.
 */
export function createCertificateManager(options: CertificateManagerOptions): CertificateManager {
  const { store, issuer, renewBeforeMs } = options;
  const now = options.now ?? Date.now;
  const removeAfterMs = options.removeAfterMs ?? 3600_000;
  const unwantedGraceMs = options.unwantedGraceMs ?? 2 * 60_000;
  /** Host → when this process first found no site wanting it (cleared when one does again). */
  const unwantedHere = new Map<string, number>();
  const maxIssues = options.maxIssuesPerTick ?? 5;
  const lockTtlMs = options.lockTtlMs ?? 5 * 60_000;
  const owner = `${process.pid}-${randomUUID()}`;
  let records = new Map<string, CertificateRecord>();
  let lastWanted = new Map<string, string>();
  let timer: NodeJS.Timeout | undefined;
  let intervalMs = 0;
  let pollMs = 5000;
  let lastVersion: string | undefined;
  let lastFullTickAt = -Infinity;
  let running: Promise<void> | undefined;
  let again = false;

  /** Orders `host` under its lock, when it is still due; returns the attempt's failure, if it failed. */
  async function issueOne(host: string, site: string): Promise<AttemptFailure | undefined> {
    if (!(await store.lock(`cert:${host}`, owner, lockTtlMs))) return undefined;
    try {
      const fresh = await store.get(host);
      if (!needsCertificate(fresh, now(), renewBeforeMs) || isBackingOff(fresh, now())) return undefined;
      try {
        const cert = await issuer.issue(host);
        await store.put(host, afterSuccess(site, cert, now()), { serial: cert.serial, chainPem: cert.chainPem, keyPem: cert.keyPem });
        options.onIssued?.(host, site, cert, Boolean(fresh?.serial));
        return undefined;
      } catch (error) {
        const failure: AttemptFailure = error instanceof AcmeAttemptError ? error.failure : { kind: 'other', message: (error as Error).message ?? String(error) };
        const record = afterFailure(fresh, site, failure, now());
        await store.put(host, record);
        options.onFailure?.(host, site, failure, record);
        // A rate limit may be the account's, not the domain's: the whole cluster waits. One the CA
        // put on this host's own names (a tenant's registered domain) holds back this host only.
        if (failure.kind === 'rate_limited' && failure.scope !== 'host') await store.setPause(now() + (failure.retryAfterMs ?? backoffMs(3)));
        return failure;
      }
    } finally {
      await store.unlock(`cert:${host}`, owner).catch(() => {});
    }
  }

  /**
   * Asks the CA's renewal information about `host`'s certificate and records when to renew and when
   * to ask again: every 6 hours or the CA's Retry-After (1 minute to 1 day); a day when the CA has no
   * ARI; an hour after a failed question. Under the host's lock, and only for the serial it asked
   * about, so it never overwrites a certificate another worker just stored. True when it wrote.
   */
  async function checkRenewalInfo(host: string): Promise<boolean> {
    if (!options.renewalInfo || !(await store.lock(`cert:${host}`, owner, 60_000))) return false;
    try {
      const [fresh, bundle] = await Promise.all([store.get(host), store.getBundle(host)]);
      if (!fresh?.serial || bundle?.serial !== fresh.serial || (fresh.ariCheckAt ?? 0) > now()) return false;
      let window: RenewalWindow | undefined;
      let nextCheckMs: number;
      try {
        window = await options.renewalInfo(bundle.chainPem);
        nextCheckMs = window ? Math.min(Math.max(window.retryAfterMs ?? 6 * 3600_000, 60_000), 86_400_000) : 86_400_000;
      } catch {
        nextCheckMs = 3600_000;
      }
      const at = now();
      let renewAfter = fresh.renewAfter;
      // A moment already chosen inside the same window is kept: asking again never postpones it.
      if (window && (renewAfter === undefined || renewAfter < window.start || renewAfter > window.end)) renewAfter = renewalMoment(window, at, (options.random ?? Math.random)());
      const before = hasCertificate(fresh) ? renewalTime(fresh, renewBeforeMs) : Infinity;
      // Quiet: the files do not change; every worker meets the new moment at its next full tick.
      await store.put(host, { ...fresh, renewAfter, ariCheckAt: at + nextCheckMs }, undefined, { quiet: true });
      if (renewAfter !== undefined && renewAfter < before) options.onRenewalAdvised?.(host, renewAfter);
      // Due now (a revoked certificate): the next poll runs a full tick instead of waiting for the interval.
      if (renewAfter !== undefined && renewAfter <= at) again = true;
      return true;
    } finally {
      await store.unlock(`cert:${host}`, owner).catch(() => {});
    }
  }

  async function runTick(): Promise<void> {
    const wanted = options.wanted();
    // Wall-clock time (compared with file mtimes by the CERTS_DIR sync), whatever clock schedules.
    let loadedAt = Date.now();
    // The version before the list: a write landing in between makes the next poll tick again.
    lastVersion = await store.version();
    records = await store.list();
    const at = now();
    lastFullTickAt = at;
    if (wanted) {
      lastWanted = wanted;
      let changed = false;
      for (const host of unwantedHere.keys()) if (!records.has(host) || wanted.has(host)) unwantedHere.delete(host);
      for (const [host, record] of records) {
        const site = wanted.get(host);
        if (site !== undefined) {
          if (record.unwantedSince === undefined) continue;
          await store.put(host, { ...record, unwantedSince: undefined });
          changed = true;
          continue;
        }
        const firstHere = unwantedHere.get(host) ?? at;
        unwantedHere.set(host, firstHere);
        const since = record.unwantedSince ?? (at - firstHere >= unwantedGraceMs ? firstHere : undefined);
        if (since === undefined) continue;
        if (at - since >= removeAfterMs) {
          await store.remove(host);
          unwantedHere.delete(host);
          options.onRemoved?.(host);
        } else if (record.unwantedSince === undefined) {
          await store.put(host, { ...record, unwantedSince: since });
        } else {
          continue;
        }
        changed = true;
      }
      // Sites take turns, urgent renewals and first certificates first (tls/order-queue.ts).
      const due = orderDue([...wanted].filter(([host]) => needsCertificate(records.get(host), at, renewBeforeMs) && !isBackingOff(records.get(host), at)), records, at);
      let issued = 0;
      for (const [host, site] of due) {
        if (issued >= maxIssues || (await store.getPause()) > now()) break;
        if (options.serves && !(await options.serves(host))) continue;
        issued++;
        // The CA did not answer (or not in time): the next host would wait out the same timeout.
        if ((await issueOne(host, site))?.kind === 'network') break;
      }
      if (options.renewalInfo) {
        let asked = 0;
        for (const [host] of wanted) {
          const record = records.get(host);
          if (asked >= (options.maxRenewalInfoPerTick ?? 10)) break;
          if (!record?.serial || (record.ariCheckAt ?? 0) > at || needsCertificate(record, at, renewBeforeMs)) continue;
          asked++;
          if (await checkRenewalInfo(host)) changed = true;
        }
      }
      if (changed || issued > 0) {
        loadedAt = Date.now();
        lastVersion = await store.version();
        records = await store.list();
      }
    }
    if (options.certsDir) {
      let result: SyncResult;
      try {
        result = await options.certsDir.sync(records, loadedAt);
      } catch (error) {
        options.onSyncError?.(error);
        return;
      }
      if (result.written.length > 0 || result.removed.length > 0) options.onSynced?.(result);
    }
  }

  function describeOne(host: string, site: string | undefined, at: number): CertificateStatus {
    const record = records.get(host);
    return {
      host,
      site: site ?? record?.site ?? '',
      state: certificateState(record, at, renewBeforeMs),
      serial: record?.serial,
      notAfter: record?.notAfter,
      daysLeft: record?.notAfter !== undefined ? Math.floor((record.notAfter - at) / DAY_MS) : undefined,
      failures: record?.failures ?? 0,
      lastError: record?.lastError,
      nextAttemptAt: record?.nextAttemptAt,
    };
  }

  /** The next renewal or retry of a wanted host still ahead (ms), from the last records. */
  function nextEvent(at: number): number | undefined {
    const wantedRecords = [...lastWanted.keys()].flatMap((h) => (records.has(h) ? [records.get(h)!] : []));
    return nextEventAt(wantedRecords, at, renewBeforeMs);
  }

  /** A full tick when one is due (woken, interval passed, a renewal or retry due), else only when the store's version moved. */
  async function poll(): Promise<void> {
    const at = now();
    const event = nextEvent(lastFullTickAt);
    const due = again || at - lastFullTickAt >= intervalMs || (event !== undefined && at >= event);
    again = false;
    if (!due && (await store.version()) === lastVersion) return;
    await manager.tick();
  }

  function schedule(): void {
    if (intervalMs <= 0) return;
    const at = now();
    const event = nextEvent(at);
    // At the next renewal or retry (plus a little, so it is due), never later than the next poll.
    const delay = again ? 0 : Math.max(100, Math.min(pollMs, event === undefined ? pollMs : event - at + 50));
    timer = setTimeout(() => {
      timer = undefined;
      loop();
    }, delay);
    timer.unref();
  }

  /** One poll, then the next one scheduled: the only chain of ticks this process runs. */
  function loop(): void {
    void poll().catch((error) => options.onError?.(error)).finally(schedule);
  }

  const manager: CertificateManager = {
    tick() {
      // One tick at a time per process.
      if (running) return running;
      running = runTick().finally(() => (running = undefined));
      return running;
    },
    start(every, poll = 5000) {
      intervalMs = every;
      pollMs = Math.min(poll, every);
      again = true;
      loop();
    },
    stop() {
      intervalMs = 0;
      if (timer) clearTimeout(timer);
      timer = undefined;
    },
    wake() {
      if (intervalMs <= 0) return;
      // Waiting for the next tick: run it now. Otherwise a tick is running (or just ended and is
      // about to schedule the next one), and `again` makes that next one immediate.
      again = true;
      if (!timer) return;
      clearTimeout(timer);
      timer = undefined;
      loop();
    },
    statuses() {
      const at = now();
      return [...lastWanted].map(([host, site]) => describeOne(host, site, at));
    },
    describe(hosts) {
      const at = now();
      return hosts.map((host) => describeOne(host, lastWanted.get(host), at));
    },
  };
  return manager;
}
