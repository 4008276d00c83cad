import type { CertificateRecord } from './certificate-store.ts';

/** A certificate this close to expiry (ms) is renewed before any new name is ordered. */
export const URGENT_RENEWAL_MS = 7 * 86_400_000;

/**
 * The order in which due hosts (`[host, site]`, each needing a certificate now) are ordered from
 * the CA, at most a few a tick. Pure.
 *
 * Sites take turns: every site's first host, then every site's second, and so on. A site that
 * lists 200 new names (or keeps adding and dropping them) would otherwise fill every tick's
 * orders and the CA account's rate limit, and another site's renewal or first certificate would
 * wait behind all of them. Within a site and within a turn: a certificate expiring within
 * URGENT_RENEWAL_MS (or expired) first, soonest first; then hosts with no certificate; then the
 * other renewals, soonest to expire first.
 */
export function orderDue(due: ReadonlyArray<readonly [string, string]>, records: ReadonlyMap<string, CertificateRecord>, now: number): Array<[string, string]> {
  const urgency = (host: string): [number, number] => {
    const notAfter = records.get(host)?.serial ? records.get(host)?.notAfter : undefined;
    if (notAfter === undefined) return [1, 0];
    return notAfter - now <= URGENT_RENEWAL_MS ? [0, notAfter] : [2, notAfter];
  };
  const compare = (a: string, b: string) => {
    const [ua, ub] = [urgency(a), urgency(b)];
    return ua[0] - ub[0] || ua[1] - ub[1];
  };
  const bySite = new Map<string, string[]>();
  for (const [host, site] of due) {
    if (!bySite.has(site)) bySite.set(site, []);
    bySite.get(site)!.push(host);
  }
  const turns: Array<Array<[string, string]>> = [];
  for (const [site, hosts] of bySite) {
    hosts.sort(compare).forEach((host, turn) => (turns[turn] ??= []).push([host, site]));
  }
  return turns.flatMap((turn) => turn.sort((a, b) => compare(a[0], b[0])));
}
