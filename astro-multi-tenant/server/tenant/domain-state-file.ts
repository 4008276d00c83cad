import { createHash, randomBytes } from 'node:crypto';
import * as nodeFs from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { PlatformError } from '../errors.ts';
import type { ClaimFs } from './host-claims.ts';
import type { DomainRecord, DomainStateStore } from './domain-state.ts';

export interface FileDomainStateStoreOptions {
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

interface DomainFile {
  format: 1;
  sitesDir: string;
  domains: Record<string, DomainRecord>;
}

const isMissing = (error: unknown) => (error as NodeJS.ErrnoException).code === 'ENOENT';
const STATES = new Set(['pending', 'verified', 'failing', 'failed']);

/**
 * Domain verification records of one sites folder in a private JSON file,
 * `<dir>/domains-<hash>.json` (hash of the sites folder's absolute path), shared by every process
 * on this machine.
 *
 * The same rules as the host claims file (tenant/host-claims.ts) and for the same reason — these
 * records decide which host a site is served on: the folder must be a real folder owned by this
 * user, mode 0700, its parent owned by this user or root; the file a regular file of this user,
 * mode 0600; anything else is refused with CONFIG_INVALID naming STATE_DIR. Writers take an
 * `O_CREAT|O_EXCL` lock file, read, merge and rename a temp file over the records; a lock older
 * than `staleLockMs` is taken over.
 */
export function createFileDomainStateStore(options: FileDomainStateStoreOptions): DomainStateStore {
  const fs = options.fs ?? (nodeFs as unknown as ClaimFs);
  const uid = options.uid ?? process.getuid?.() ?? 0;
  const dir = resolve(options.dir);
  const sitesDir = resolve(options.sitesDir);
  const file = join(dir, `domains-${createHash('sha256').update(sitesDir).digest('hex').slice(0, 16)}.json`);
  const lockFile = `${file}.lock`;
  const lockTimeoutMs = options.lockTimeoutMs ?? 5000;
  const staleLockMs = options.staleLockMs ?? 10_000;
  let ready: Promise<void> | undefined;

  const unsafe = (path: string, why: string) => new PlatformError('CONFIG_INVALID', `STATE_DIR: ${path} ${why}; it must be a folder only this user can use (mode 0700)`, path);

  async function checkDir(): Promise<void> {
    await fs.mkdir(dir, { recursive: true, mode: 0o700 });
    const s = await fs.lstat(dir);
    if (s.isSymbolicLink() || !s.isDirectory()) throw unsafe(dir, 'is not a folder (a symlink is not accepted)');
    if (s.uid !== uid) throw unsafe(dir, `belongs to uid ${s.uid}, not to this user (${uid})`);
    if ((s.mode & 0o077) !== 0) throw unsafe(dir, `has mode ${(s.mode & 0o777).toString(8)}`);
    const parent = await fs.lstat(dirname(dir));
    if (parent.uid !== uid && parent.uid !== 0) throw unsafe(dirname(dir), `(the parent of the state folder) belongs to uid ${parent.uid}, who could replace it`);
  }

  const prepared = () => (ready ??= checkDir().catch((error) => {
    ready = undefined;
    throw error;
  }));

  async function readRecords(): Promise<DomainFile> {
    await prepared();
    let s;
    try {
      s = await fs.lstat(file);
    } catch (error) {
      if (isMissing(error)) return { format: 1, sitesDir, domains: {} };
      throw error;
    }
    if (!s.isFile() || s.uid !== uid || (s.mode & 0o077) !== 0) throw unsafe(file, 'is not a private regular file of this user');
    const parsed = JSON.parse(await fs.readFile(file, 'utf8')) as Partial<DomainFile>;
    if (parsed.format !== 1 || typeof parsed.domains !== 'object' || parsed.domains === null) {
      throw new PlatformError('CONFIG_INVALID', `STATE_DIR: ${file} is not a domain state file this version can read`, file);
    }
    const domains: DomainFile['domains'] = {};
    for (const [domain, r] of Object.entries(parsed.domains)) {
      if (r && typeof r.site === 'string' && STATES.has(r.state) && typeof r.checkedAt === 'number') domains[domain] = r;
    }
    return { format: 1, sitesDir, domains };
  }

  async function lock(): Promise<void> {
    const started = Date.now();
    for (let attempt = 0; ; attempt++) {
      try {
        await fs.writeFile(lockFile, String(process.pid), { mode: 0o600, flag: 'wx' });
        return;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      }
      const held = await fs.lstat(lockFile).catch(() => undefined);
      if (held && Date.now() - held.mtimeMs > staleLockMs) {
        await fs.unlink(lockFile).catch(() => {});
        continue;
      }
      if (Date.now() - started > lockTimeoutMs) throw new Error(`domain state: ${lockFile} is held by another process for more than ${lockTimeoutMs} ms`);
      await new Promise((r) => setTimeout(r, Math.min(50, 2 + attempt * 2)));
    }
  }

  return {
    location: file,
    async load() {
      const records = await readRecords();
      return new Map(Object.entries(records.domains));
    },
    async put(updates) {
      if (updates.size === 0) return;
      await prepared();
      await lock();
      try {
        const records = await readRecords();
        for (const [domain, record] of updates) {
          // Another process may have checked the same domain meanwhile: the later check wins.
          const current = records.domains[domain];
          if (!current || current.checkedAt <= record.checkedAt) records.domains[domain] = record;
        }
        const temp = `${file}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
        await fs.writeFile(temp, `${JSON.stringify(records, null, 1)}\n`, { mode: 0o600, flag: 'wx' });
        await fs.rename(temp, file);
      } finally {
        await fs.unlink(lockFile).catch(() => {});
      }
    },
  };
}
