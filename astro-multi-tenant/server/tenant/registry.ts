import { readFile, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { buildHostIndex, type HostIndex, type SiteHosts } from './host-index.ts';
import { isValidSiteId, resolveHost, type HostResolution } from './resolve-host.ts';
import { normalizeHost } from './normalize-host.ts';
import { SITE_CONFIG_FILE } from '../sites/loader.ts';

export interface RegistryOptions {
  sitesDir: string;
  platformDomain: string;
  /** Minimum time between two full folder scans triggered by unknown hosts. */
  rescanIntervalMs: number;
  onWarning?: (message: string, details: Record<string, unknown>) => void;
  now?: () => number;
}

interface ScannedSite extends SiteHosts {
  fingerprint: string;
}

/** Lenient read of a site.json for routing only: full validation happens when the site loads. */
function extractHosts(text: string): { domains: string[]; aliases: string[] } | undefined {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof json !== 'object' || json === null) return undefined;
  const pick = (value: unknown) =>
    (Array.isArray(value) ? value : []).flatMap((h) => {
      if (typeof h !== 'string') return [];
      try {
        const n = normalizeHost(h);
        return n.port === undefined ? [n.hostname] : [];
      } catch {
        return [];
      }
    });
  const record = json as Record<string, unknown>;
  return { domains: pick(record.domains), aliases: pick(record.aliases) };
}

/**
 * Keeps the host index in step with the sites folder. The index is a routing hint built by
 * scanning every site.json's domains (reading only files whose stat changed); the caller verifies
 * a hit against the freshly loaded config and asks for a rescan when the two disagree. Unknown
 * hosts trigger a rescan too, rate-limited and shared by all waiting requests, so a new folder or
 * a new custom domain goes live on its first request without a restart or a watcher.
 */
export function createSiteRegistry(options: RegistryOptions) {
  const now = options.now ?? Date.now;
  let sites = new Map<string, ScannedSite>();
  let index: HostIndex = buildHostIndex([]);
  let lastScanAt = -Infinity;
  let scanning: Promise<void> | undefined;
  const reportedConflicts = new Set<string>();

  async function scanOnce(): Promise<void> {
    const entries = await readdir(options.sitesDir, { withFileTypes: true });
    const next = new Map<string, ScannedSite>();
    const ids = entries.filter((e) => (e.isDirectory() || e.isSymbolicLink()) && isValidSiteId(e.name)).map((e) => e.name);
    let cursor = 0;
    // Bounded concurrency: ten thousand stats at once would queue behind every request's file I/O.
    const worker = async () => {
      while (cursor < ids.length) {
        const id = ids[cursor++]!;
        const file = join(options.sitesDir, id, SITE_CONFIG_FILE);
        let fingerprint: string;
        try {
          const s = await stat(file);
          fingerprint = `${s.ino}:${s.size}:${s.mtimeMs}`;
        } catch {
          continue;
        }
        const previous = sites.get(id);
        if (previous && previous.fingerprint === fingerprint) {
          next.set(id, previous);
          continue;
        }
        let hosts: { domains: string[]; aliases: string[] } | undefined;
        try {
          hosts = extractHosts(await readFile(file, 'utf8'));
        } catch {
          hosts = undefined;
        }
        // A site.json that no longer parses keeps the hosts it had, so the site answers 503 on its
        // own domains (showing the owner something is wrong) instead of vanishing into a 404.
        next.set(id, { id, fingerprint, domains: hosts?.domains ?? previous?.domains ?? [], aliases: hosts?.aliases ?? previous?.aliases ?? [] });
      }
    };
    await Promise.all(Array.from({ length: Math.min(32, ids.length) }, worker));
    sites = next;
    index = buildHostIndex(next.values());
    for (const conflict of index.conflicts) {
      const key = `${conflict.host}\0${conflict.loser}`;
      if (reportedConflicts.has(key)) continue;
      reportedConflicts.add(key);
      options.onWarning?.('host claimed by two sites; the first by id keeps it', { ...conflict });
    }
  }

  /** Runs a scan now, or joins the one in flight. */
  function scan(): Promise<void> {
    scanning ??= scanOnce()
      .finally(() => {
        lastScanAt = now();
        scanning = undefined;
      });
    return scanning;
  }

  /** A scan no sooner than rescanIntervalMs after the last one, shared by every caller. */
  let queued: Promise<void> | undefined;
  function requestRescan(): Promise<void> {
    if (scanning) return scanning;
    const wait = lastScanAt + options.rescanIntervalMs - now();
    if (wait <= 0) return scan();
    queued ??= new Promise<void>((resolve) => setTimeout(resolve, wait).unref()).then(() => {
      queued = undefined;
      return scan();
    });
    return queued;
  }

  async function siteFolderExists(id: string): Promise<boolean> {
    if (sites.has(id)) return true;
    try {
      return (await stat(join(options.sitesDir, id, SITE_CONFIG_FILE))).isFile();
    } catch {
      return false;
    }
  }

  async function resolveFresh(hostname: string): Promise<HostResolution> {
    const suffix = `.${options.platformDomain}`;
    let wildcard: string | undefined;
    if (hostname.endsWith(suffix)) {
      const label = hostname.slice(0, -suffix.length);
      if (isValidSiteId(label) && !index.entries.has(hostname) && (await siteFolderExists(label))) wildcard = label;
    }
    return resolveHost(hostname, index, options.platformDomain, (id) => id === wildcard || sites.has(id));
  }

  return {
    scan,
    requestRescan,
    /**
     * Resolves a host. An unknown host triggers a rescan: awaited when one may run now, otherwise
     * queued in the background, so a flood of junk hosts costs at most one scan per interval and
     * never parks requests on a timer.
     */
    async resolve(hostname: string): Promise<HostResolution> {
      const first = await resolveFresh(hostname);
      if (first.kind !== 'unknown') return first;
      if (!scanning && lastScanAt + options.rescanIntervalMs > now()) {
        void requestRescan().catch(() => {});
        return first;
      }
      await requestRescan();
      return resolveFresh(hostname);
    },
    get index(): HostIndex {
      return index;
    },
    get siteIds(): string[] {
      return [...sites.keys()].sort();
    },
    /** Every site folder found by the last scan with the hosts its site.json claims. */
    get sites(): SiteHosts[] {
      return [...sites.values()].map(({ id, domains, aliases }) => ({ id, domains, aliases })).sort((a, b) => (a.id < b.id ? -1 : 1));
    },
    get lastScanAt() {
      return lastScanAt;
    },
  };
}

export type SiteRegistry = ReturnType<typeof createSiteRegistry>;
