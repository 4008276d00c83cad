import { isIP } from 'node:net';
import type { DomainStatus } from './domain-verifier.ts';

/** One DNS record an operator should create. */
export interface DnsRecordAdvice {
  name: string;
  type: 'TXT' | 'CNAME' | 'A' | 'AAAA';
  value: string;
}

/**
 * The records that send a custom host's traffic to the platform: DOMAIN_TARGET's IP addresses as
 * A/AAAA records, or its host name as a CNAME; by default a CNAME to `<site>.<platformDomain>`,
 * which the operator's wildcard record already points at the platform. Pure.
 */
export function trafficRecords(host: string, site: string, platformDomain: string, target: readonly string[] | undefined): DnsRecordAdvice[] {
  const targets = target && target.length > 0 ? target : [`${site}.${platformDomain}`];
  const ips = targets.filter((t) => isIP(t) !== 0);
  if (ips.length > 0) return ips.map((ip) => ({ name: host, type: isIP(ip) === 6 ? 'AAAA' : 'A', value: ip }));
  return [{ name: host, type: 'CNAME', value: `${targets[0]}.` }];
}

export interface DomainReportInput {
  site: string;
  platformDomain: string;
  domains: readonly string[];
  aliases: readonly string[];
  /** Undefined when DOMAIN_VERIFICATION is off. */
  statuses: readonly DomainStatus[] | undefined;
  target: readonly string[] | undefined;
  now: number;
  /** ACME_DIRECTORY_URL: the certificate line of a host (tls/certificate-line.ts); undefined when ACME is off. */
  certificate?: (host: string) => string;
}

const when = (ms: number | undefined, now: number) => (ms === undefined ? 'never' : `${new Date(ms).toISOString()} (${Math.max(0, Math.round((now - ms) / 1000))} s ago)`);

/**
 * The text of `npm run sites -- domains <id>`: each custom domain and alias with its state and the
 * exact records to create (zone-file style: name, type, value). Pure; the caller makes it terminal-safe.
 */
export function formatDomainReport(input: DomainReportInput): string {
  const { site, platformDomain, now } = input;
  const lines: string[] = [`site ${site}: platform address ${site}.${platformDomain} (served, no check needed)`];
  const hosts = [...input.domains.map((h) => [h, 'domain'] as const), ...input.aliases.filter((h) => h !== `${site}.${platformDomain}`).map((h) => [h, 'alias'] as const)];
  if (hosts.length === 0) {
    lines.push('no custom domains or aliases in site.json');
    return lines.join('\n');
  }
  if (!input.statuses) lines.push('DOMAIN_VERIFICATION is off: every host in site.json is served as written; only the traffic records apply.');
  let cname = false;
  for (const [host, kind] of hosts) {
    const status = input.statuses?.find((s) => s.domain === host);
    lines.push('', `${host} (${kind})${status ? `: ${status.state}${status.state === 'failing' && status.graceEndsAt ? `, served until ${new Date(status.graceEndsAt).toISOString()}` : ''}` : ''}`);
    if (status) {
      lines.push(`  last check: ${when(status.checkedAt, now)}${status.detail ? ` — ${status.detail}` : ''}`);
      if (status.verifiedAt !== undefined) lines.push(`  verified since: ${new Date(status.verifiedAt).toISOString()}`);
    }
    if (input.certificate) lines.push(`  ${input.certificate(host)}`);
    lines.push('  DNS records:');
    const records: DnsRecordAdvice[] = [
      ...(status ? [{ name: status.txtName, type: 'TXT' as const, value: `"${status.token}"` }] : []),
      ...trafficRecords(host, site, platformDomain, input.target),
    ];
    for (const r of records) {
      if (r.type === 'CNAME') cname = true;
      lines.push(`    ${`${r.name}.`.padEnd(40)} ${r.type.padEnd(5)} ${r.value}`);
    }
  }
  if (cname) lines.push('', 'A CNAME is not allowed at a zone apex (example.com itself): there use A/AAAA records (set DOMAIN_TARGET to the edge\'s addresses) or your DNS provider\'s ALIAS/flattening.');
  return lines.join('\n');
}
