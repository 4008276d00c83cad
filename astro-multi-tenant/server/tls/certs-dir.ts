import { randomBytes } from 'node:crypto';
import * as nodeFs from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { CertificateBundle, CertificateRecord } from './certificate-store.ts';

/**
 * A file in CERTS_DIR this code manages: `<host>.crt` / `<host>.key` where host is a lower-case
 * domain name with at least one dot. Anything else (a `_default.crt`, a README) is never touched.
 */
const MANAGED = /^((?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)\.(crt|key)$/;

/** The host a CERTS_DIR file name belongs to, when the name is one this code manages. Pure. */
export function managedHost(fileName: string): string | undefined {
  return MANAGED.exec(fileName)?.[1];
}

/** What one sync changed, by host. */
export interface SyncResult {
  written: string[];
  removed: string[];
}

export interface CertsDirOptions {
  /** CERTS_DIR: created (0755) when missing. */
  dir: string;
  /** The certificate of a host, from the shared store. */
  getBundle: (host: string) => Promise<CertificateBundle | undefined>;
  fs?: typeof nodeFs;
}

export interface CertsDir {
  readonly dir: string;
  /**
   * Makes the folder match `records` (loaded from the shared store at `loadedAt`, ms): writes the
   * certificate of every host that has one and whose files differ, removes the files of hosts that
   * have none. A file newer than `loadedAt` is never removed: another worker may have written it for
   * a certificate issued after these records were read. One host whose files cannot be written
   * never keeps the others out: every other host is written and removed as usual, then the first
   * such failure is thrown, naming its host (with the file system's code).
   */
  sync(records: ReadonlyMap<string, CertificateRecord>, loadedAt: number): Promise<SyncResult>;
}

const isMissing = (error: unknown) => (error as NodeJS.ErrnoException).code === 'ENOENT';

/**
 * The certificates of this machine's nginx (or any TLS front end): `<host>.crt` (leaf + chain)
 * and `<host>.key` per host, each written to a temp file and renamed over the old one, so a TLS
 * handshake never reads half a file. The key goes first: for the instant between the two renames
 * nginx may pair the new key with the old chain and fail that one handshake, never serve a
 * truncated file. Keys are mode 0640 (group-readable for nginx workers), chains 0644.
 *
 * Every worker of every machine syncs its own machine's folder from the shared store; workers of
 * one machine writing the same bytes is harmless (content is compared before writing), and a
 * serial already written by this process is skipped without reading.
 */
export function createCertsDir(options: CertsDirOptions): CertsDir {
  const fs = options.fs ?? nodeFs;
  const dir = resolve(options.dir);
  const written = new Map<string, string>();

  async function readOrEmpty(path: string): Promise<string> {
    try {
      return await fs.readFile(path, 'utf8');
    } catch (error) {
      if (isMissing(error)) return '';
      throw error;
    }
  }

  async function writeAtomic(path: string, data: string, mode: number): Promise<void> {
    const temp = join(dir, `.${randomBytes(8).toString('hex')}.tmp`);
    try {
      await fs.writeFile(temp, data, { mode, flag: 'wx' });
      // writeFile's mode is filtered by the umask; the agreed modes are set exactly.
      await fs.chmod(temp, mode);
      await fs.rename(temp, path);
    } catch (error) {
      await fs.unlink(temp).catch(() => {});
      throw error;
    }
  }

  return {
    dir,
    async sync(records, loadedAt) {
      await fs.mkdir(dir, { recursive: true, mode: 0o755 });
      const result: SyncResult = { written: [], removed: [] };
      let failure: Error | undefined;
      for (const [host, record] of records) {
        if (!record.serial || written.get(host) === record.serial) continue;
        // Names come from the shared store: only plain domain names become file names.
        if (managedHost(`${host}.crt`) !== host) continue;
        const bundle = await options.getBundle(host);
        // The record and its certificate are two writes: wait for the next sync if they disagree.
        if (!bundle || bundle.serial !== record.serial) continue;
        const crt = join(dir, `${host}.crt`);
        const key = join(dir, `${host}.key`);
        try {
          if ((await readOrEmpty(crt)) !== bundle.chainPem || (await readOrEmpty(key)) !== bundle.keyPem) {
            await writeAtomic(key, bundle.keyPem, 0o640);
            await writeAtomic(crt, bundle.chainPem, 0o644);
            result.written.push(host);
          }
          written.set(host, record.serial);
        } catch (error) {
          const code = (error as NodeJS.ErrnoException).code;
          failure ??= Object.assign(new Error(`CERTS_DIR: cannot write the certificate of ${host}: ${code ?? (error as Error).message}; the other hosts' files are written`), { code });
        }
      }
      const removed = new Set<string>();
      for (const name of await fs.readdir(dir)) {
        const host = managedHost(name);
        if (!host || records.get(host)?.serial) continue;
        const path = join(dir, name);
        const s = await fs.lstat(path).catch(() => undefined);
        if (!s || !s.isFile() || s.mtimeMs >= loadedAt) continue;
        await fs.unlink(path).catch((error) => {
          if (!isMissing(error)) throw error;
        });
        written.delete(host);
        removed.add(host);
      }
      result.removed = [...removed];
      if (failure) throw failure;
      return result;
    },
  };
}
