import { mkdir, writeFile, access, realpath, rename } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { MAX_MEMBERS_BYTES, MEMBERS_FILE, parseMembersFile } from '../session/members.ts';
import { readContainedText, refusalReason } from '../sites/contained-file.ts';
import { hashPassword } from '../session/passwords.ts';
import { join } from 'node:path';
import { loadConfig } from '../config.ts';
import { checkSites, formatReport, readHostOwners } from '../sites/check.ts';
import { formatIssue } from '../errors.ts';
import { terminalSafe } from './terminal-text.ts';
import { createFolderSiteSource } from '../sites/site-source.ts';
import { isValidSiteId } from '../tenant/resolve-host.ts';
import { normalizeHost } from '../tenant/normalize-host.ts';
import { loadPlansSource } from '../plans/plans-file.ts';
import { contentLimitIssues, measureContent } from '../plans/content-limits.ts';
import { formatUsageReport, runningWorkers } from '../plans/usage-report.ts';
import { checkSite } from '../sites/check.ts';
import { createDomainVerifier } from '../tenant/domain-verifier.ts';
import { createFileDomainStateStore } from '../tenant/domain-state-file.ts';
import { createTxtLookup } from '../tenant/domain-dns.ts';
import { formatDomainReport } from '../tenant/domain-report.ts';
import { createRedisDomainStateStore } from '../tenant/domain-state-redis.ts';
import { effectiveState, isServed, type DomainRecord } from '../tenant/domain-state.ts';
import { createRedisClient } from '../session/redis-client.ts';
import { createRedisCertificateStore } from '../tls/certificate-store-redis.ts';
import { createFileCertificateStore } from '../tls/certificate-store-file.ts';
import { certificateLine } from '../tls/certificate-line.ts';
import { revokeCertificate } from '../tls/revoke-certificate.ts';
import { createAcmeIssuer } from '../tls/acme-issuer.ts';
import { AcmeAttemptError } from '../tls/acme-problem.ts';
import type { CertificateRecord } from '../tls/certificate-store.ts';
import { fileURLToPath } from 'node:url';
import { componentIssues } from '../sites/check-components.ts';
import { openComponentLoader } from '../components/open-component-loader.ts';
import { createContentCache } from '../sites/content-cache.ts';

const USAGE = `usage: npm run sites -- <command>

  check                 validate every site folder (and its plan's size and count limits); exits 1 if any has errors
  usage <id>            the site's plan (PLANS_FILE), its folder against the plan's size limits, and
                        its live usage and throttles from the server running on this machine
  list                  list sites with their domains and aliases
  domains <id>          each custom domain and alias of the site: its ownership check (checked now
                        through DNS_SERVERS and recorded, with DOMAIN_VERIFICATION=dns), its
                        certificate (with ACME_DIRECTORY_URL) and the DNS records to create
  revoke-certificate <host>
                        revoke the host's certificate at the CA (ACME_DIRECTORY_URL; e.g. a leaked
                        key); the servers order a new one within seconds
  new <id> [--domain d] scaffold sites/<id>/ (site.json, pages/index.md, public/)
  add-member <id> <email> [--name "Full Name"]
                        add or update a member in sites/<id>/members.json; the password is read
                        from standard input (prompted when it is a terminal), at least 10 characters
`;

const MIN_PASSWORD = 10;

/** Reads the password from stdin: hidden prompt on a terminal, else the first line of the pipe. */
async function readPassword(): Promise<string> {
  if (process.stdin.isTTY) {
    const rl = createInterface({ input: process.stdin, output: process.stdout, terminal: true });
    const muted = rl as unknown as { _writeToOutput: (s: string) => void };
    process.stdout.write('Password: ');
    muted._writeToOutput = () => {};
    const answer = await new Promise<string>((resolve) => rl.question('', resolve));
    rl.close();
    process.stdout.write('\n');
    return answer;
  }
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8').split(/\r?\n/)[0] ?? '';
}

const config = loadConfig();
const source = createFolderSiteSource(config.sitesDir);
const [command, ...args] = process.argv.slice(2).filter((a) => a !== '--');

function domainStateStore(redis: ReturnType<typeof createRedisClient> | undefined) {
  return redis ? createRedisDomainStateStore(redis) : createFileDomainStateStore({ dir: config.stateDir, sitesDir: config.sitesDir });
}

/** DOMAIN_VERIFICATION=dns: each domain's site by its shared record, where that record is served now. */
async function readVerifiedOwners(): Promise<Map<string, string>> {
  const dv = config.domainVerification!;
  const redis = await readyRedis();
  try {
    const records = await domainStateStore(redis).load().catch(() => new Map<string, DomainRecord>());
    const at = Date.now();
    return new Map([...records].filter(([, r]) => isServed(effectiveState(r, r.site, at, dv.graceMs))).map(([host, r]) => [host, r.site]));
  } finally {
    redis?.disconnect();
  }
}

/**
 * A Redis client for one command, ready for commands (the client has no offline queue: a command
 * sent before it connects fails at once). Waits up to 5 s, then lets the command fail with the reason.
 */
async function readyRedis(): Promise<ReturnType<typeof createRedisClient> | undefined> {
  if (!config.redis) return undefined;
  const redis = createRedisClient({ ...config.redis, commandTimeoutMs: Math.max(config.redis.commandTimeoutMs, 5000) });
  if (redis.status !== 'ready') await Promise.race([new Promise((r) => redis.once('ready', r)), new Promise((r) => setTimeout(r, 5000).unref())]);
  return redis;
}

async function main(): Promise<number> {
  switch (command) {
    case 'check': {
      // Compiled as the server compiles (a child process: a compiler crash is that file's error, not
      // the command's end), through the same disk cache of compiled output.
      const { loader: componentLoader, close: closeComponents } = await openComponentLoader({
        cache: createContentCache({ maxEntries: 10_000, maxBytes: 256 * 1024 * 1024, checkIntervalMs: 0 }),
        sharedDir: fileURLToPath(new URL('../../../shared-components', import.meta.url)),
        cacheDir: config.componentCacheDir,
        cacheBytes: config.componentCacheBytes,
      });
      // Conflicts are decided as the server decides them: by who already serves the host, and with
      // DOMAIN_VERIFICATION=dns first by whom it is verified for (tenant/domain-verifier.ts ownerOf).
      const owners = await readHostOwners(config.stateDir, config.sitesDir);
      if (config.domainVerification) for (const [host, site] of await readVerifiedOwners()) owners.set(host, site);
      const reports = await checkSites(source, { owners });
      // The operator's plans: a folder over its plan's size or count limits is an error like any other.
      const plans = (await loadPlansSource({ file: config.plansFile, checkIntervalMs: 0 })).current();
      for (const r of reports) {
        if (!r.config) continue;
        const plan = plans.planFor(r.id);
        r.issues.push(...contentLimitIssues(r.id, await measureContent(source.siteDir(r.id), plan.limits.maxPageBytes), plan));
        // Site components and layouts: the plan's flag, called names, and each file compiled as the server would.
        r.issues.push(...(await componentIssues({ id: r.id, dir: await source.realSiteDir(r.id) }, r.componentCalls, plan, componentLoader)));
      }
      closeComponents();
      console.log(formatReport(reports));
      const failed = reports.filter((r) => r.issues.length > 0).length;
      console.log(`\n${reports.length} site(s) checked, ${failed} with errors`);
      return failed ? 1 : 0;
    }
    case 'usage': {
      const id = args[0];
      if (!id || !isValidSiteId(id) || (await source.siteProblem(id)) !== undefined) {
        console.error(`sites usage: "${id ?? ''}" is not a site in ${config.sitesDir}`);
        return 2;
      }
      const plan = (await loadPlansSource({ file: config.plansFile, checkIntervalMs: 0 })).current().planFor(id);
      const content = await measureContent(source.siteDir(id), plan.limits.maxPageBytes);
      console.log(formatUsageReport(id, plan, content, await runningWorkers(config.peerDir, config.port)));
      return 0;
    }
    case 'list': {
      const reports = await checkSites(source);
      // Ids, names and hosts come from site folders: printed through terminalSafe, like the check.
      for (const r of reports) {
        const hosts = r.config ? [...r.config.domains, `${r.id}.${config.platformDomain}`].join(', ') : '(invalid site.json)';
        const aliases = r.config?.aliases.length ? `  aliases: ${r.config.aliases.join(', ')}` : '';
        console.log(`${terminalSafe(r.id).padEnd(24)} ${terminalSafe(r.config?.name ?? '')}\n${' '.repeat(25)}${terminalSafe(hosts + aliases)}`);
      }
      return 0;
    }
    case 'domains': {
      const id = args[0];
      if (!id || !isValidSiteId(id) || (await source.siteProblem(id)) !== undefined) {
        console.error(`sites domains: "${id ?? ''}" is not a site in ${config.sitesDir}`);
        return 2;
      }
      const report = await checkSite(source, id);
      if (!report.config) {
        console.error(`sites domains: sites/${id}/site.json is invalid; run npm run sites -- check`);
        return 1;
      }
      const { domains, aliases } = report.config;
      const dv = config.domainVerification;
      let statuses;
      if (dv) {
        // The same checks and the same shared records as the servers (Redis when configured, else
        // STATE_DIR): a domain verified here is served by every worker at its next tick.
        const redis = await readyRedis();
        const store = domainStateStore(redis);
        const mine = [...domains, ...aliases].filter((h) => h !== `${id}.${config.platformDomain}`);
        // This command reads one site: a domain recorded for another site is assumed still listed
        // there, so it is never taken from that site here (the servers, which see every site, can).
        const recorded = await store.load().catch(() => new Map<string, { site: string }>());
        const others = mine.flatMap((h) => (recorded.get(h) && recorded.get(h)!.site !== id ? [[h, recorded.get(h)!.site] as const] : []));
        const verifier = createDomainVerifier({
          store,
          secret: dv.secret,
          lookupTxt: createTxtLookup({ servers: dv.dnsServers }),
          hosts: () => [...mine.map((h) => [h, id] as const), ...others],
          recheckMs: 0,
          retryMs: 0,
          graceMs: dv.graceMs,
        });
        try {
          await verifier.tick();
        } finally {
          redis?.disconnect();
        }
        statuses = verifier.describe(id, [...domains, ...aliases]);
      }
      // ACME_DIRECTORY_URL: each host's certificate, from the same shared store the servers use.
      const acme = config.acme;
      let certificates: Map<string, CertificateRecord> | undefined;
      if (acme) {
        const redis = await readyRedis();
        try {
          certificates = await (redis ? createRedisCertificateStore(redis) : createFileCertificateStore({ dir: config.stateDir, sitesDir: config.sitesDir })).list();
        } catch (error) {
          console.error(`sites domains: cannot read the certificate store: ${(error as Error).message}`);
        } finally {
          redis?.disconnect();
        }
      }
      const now = Date.now();
      const certificate = acme && certificates ? (host: string) => certificateLine(certificates.get(host), now, acme.renewBeforeMs) : undefined;
      const text = formatDomainReport({ site: id, platformDomain: config.platformDomain, domains, aliases, statuses, target: config.domainTarget, now, certificate });
      console.log(text.split('\n').map(terminalSafe).join('\n'));
      return 0;
    }
    case 'revoke-certificate': {
      const acme = config.acme;
      if (!acme) {
        console.error('sites revoke-certificate: ACME_DIRECTORY_URL is not set; there are no certificates to revoke');
        return 2;
      }
      let host: string;
      try {
        host = normalizeHost(args[0] ?? '').hostname;
      } catch {
        console.error(`sites revoke-certificate: "${args[0] ?? ''}" is not a host name`);
        return 2;
      }
      const redis = await readyRedis();
      const store = redis ? createRedisCertificateStore(redis) : createFileCertificateStore({ dir: config.stateDir, sitesDir: config.sitesDir });
      try {
        const { serial } = await revokeCertificate({ store, issuer: createAcmeIssuer({ directoryUrl: acme.directoryUrl, email: acme.email, store }), host });
        console.log(`revoked ${terminalSafe(host)} (serial ${serial}) at ${acme.directoryUrl}; the servers order a new certificate within seconds`);
        return 0;
      } catch (error) {
        console.error(`sites revoke-certificate: ${terminalSafe(error instanceof AcmeAttemptError ? `${error.failure.kind}: ${error.message}` : (error as Error).message)}`);
        return 1;
      } finally {
        redis?.disconnect();
      }
    }
    case 'new': {
      const id = args[0];
      if (!id || !isValidSiteId(id)) {
        console.error(`sites new: "${id ?? ''}" is not a valid site id (lowercase letters, digits, hyphens; 1-63 characters)`);
        return 2;
      }
      const domainIndex = args.indexOf('--domain');
      const domains: string[] = [];
      if (domainIndex !== -1) {
        const raw = args[domainIndex + 1] ?? '';
        try {
          domains.push(normalizeHost(raw).hostname);
        } catch (error) {
          console.error(`sites new: --domain "${raw}": ${(error as Error).message}`);
          return 2;
        }
      }
      const dir = source.siteDir(id);
      if (await access(dir).then(() => true, () => false)) {
        console.error(`sites new: ${dir} already exists; nothing was changed`);
        return 1;
      }
      await mkdir(join(dir, 'pages'), { recursive: true });
      await mkdir(join(dir, 'public'), { recursive: true });
      const name = id.split('-').map((w) => w[0]!.toUpperCase() + w.slice(1)).join(' ');
      await writeFile(join(dir, 'site.json'), JSON.stringify({ name, description: '', domains, aliases: [], locale: 'en', layout: 'page', nav: [{ label: 'Home', href: '/' }] }, null, 2) + '\n');
      await writeFile(join(dir, 'pages', 'index.md'), `---\ntitle: ${name}\ndescription: Welcome to ${name}.\n---\n\nEdit \`sites/${id}/pages/index.md\` and reload: the change is live within a second.\n`);
      // The custom domain on the same port as the platform address; with DOMAIN_VERIFICATION=dns it
      // answers only once its TXT record is seen, so the line says so rather than "live".
      const port = config.port === 80 ? '' : `:${config.port}`;
      const domainUrl = domains.length ? `http://${domains[0]}${port}/` : undefined;
      const domainLine = !domainUrl ? '' : config.domainVerification ? `\n${domainUrl} once its TXT record is in place: npm run sites -- domains ${id}` : ` and ${domainUrl}`;
      console.log(`created ${dir}\nlive at http://${id}.${config.platformDomain}${port}/${domainLine}\nbuild its CSS with: npm run css -- ${id}`);
      return 0;
    }
    case 'add-member': {
      const [id, emailRaw] = args;
      if (!id || !isValidSiteId(id) || (await source.siteProblem(id)) !== undefined) {
        console.error(`sites add-member: "${id ?? ''}" is not a site in ${config.sitesDir}`);
        return 2;
      }
      const email = (emailRaw ?? '').trim().toLowerCase();
      if (!/^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(email)) {
        console.error(`sites add-member: "${emailRaw ?? ''}" is not an e-mail address`);
        return 2;
      }
      const nameIndex = args.indexOf('--name');
      const name = (nameIndex === -1 ? email.split('@')[0]! : (args[nameIndex + 1] ?? '')).trim();
      if (!name) {
        console.error('sites add-member: --name must not be empty');
        return 2;
      }
      const password = await readPassword();
      if (password.length < MIN_PASSWORD) {
        console.error(`sites add-member: the password must be at least ${MIN_PASSWORD} characters`);
        return 2;
      }
      const path = join(source.siteDir(id), MEMBERS_FILE);
      const file = `sites/${id}/${MEMBERS_FILE}`;
      // Read as the server reads it: a members.json that is a link out of the site folder (another
      // site's members) or over the size limit is refused, never copied into this site's file.
      const read = await readContainedText(path, await realpath(source.siteDir(id)), { maxBytes: MAX_MEMBERS_BYTES });
      if (read.kind === 'refused') {
        console.error(`sites add-member: ${file} ${refusalReason(read)}; nothing was changed`);
        return 1;
      }
      const existing = read.kind === 'text' ? read.text : undefined;
      let members: Array<{ email: string; name: string; password: string }> = [];
      if (existing !== undefined) {
        const parsed = parseMembersFile(existing, file);
        if (!parsed.ok) {
          // Never overwrite a file we cannot read: the members in it would be lost.
          console.error(`sites add-member: ${file} is invalid; fix it first, nothing was changed:\n${parsed.error.issues.map((i) => terminalSafe(formatIssue(i))).join('\n')}`);
          return 1;
        }
        members = [...parsed.byEmail.values()].map((m) => ({ email: m.email, name: m.name, password: m.password }));
      }
      const updated = members.some((m) => m.email === email);
      members = members.filter((m) => m.email !== email);
      members.push({ email, name, password: await hashPassword(password) });
      // Write then rename, so a running server never reads half a file.
      const tmp = `${path}.${process.pid}.tmp`;
      await writeFile(tmp, JSON.stringify({ members }, null, 2) + '\n', { mode: 0o600 });
      await rename(tmp, path);
      console.log(`${updated ? 'updated' : 'added'} ${email} in ${file}`);
      return 0;
    }
    default:
      console.error(USAGE);
      return command ? 2 : 0;
  }
}

process.exit(await main());
