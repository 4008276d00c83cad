/**
 * Which host names a site may list in its `domains` and `aliases`. Pure, shared by the site.json
 * schema (so `sites check` and the server refuse the same names) and by the registry's lenient
 * routing read (so a refused name never reaches the host index, not even while the rest of the
 * file is invalid).
 *
 * Refused, whatever site lists them:
 * - the platform domain and every name under it: `<id>.<PLATFORM_DOMAIN>` belongs to site `<id>`
 *   alone and is served without being listed, and the other names under it are the platform's;
 * - `localhost` and every name under it: RFC 6761 §6.3 reserves them for the loopback interface,
 *   and `localhost` is the default platform domain;
 * - IP literals, v4 and v6, in every form a browser reads as an address. The WHATWG URL host parser
 *   treats a name whose last label is a number (`2130706433`, `0x7f.1`, `127.1`) as an IPv4
 *   address, so such names are refused too, not only dotted quads.
 *
 * `host` is a name already normalised by tenant/normalize-host.ts (lowercase ASCII, no port, no
 * trailing dot, IPv6 in brackets); `platformDomain` likewise. Returns why the name is refused, or
 * undefined when a site may claim it.
 */
export function hostClaimProblem(host: string, platformDomain: string): string | undefined {
  if (host.startsWith('[')) return `"${host}" is an IP address; a site's hosts must be domain names`;
  const last = host.slice(host.lastIndexOf('.') + 1);
  if (/^(?:0x[0-9a-f]*|\d+)$/.test(last)) return `"${host}" is an IP address (or reads as one); a site's hosts must be domain names`;
  if (host === platformDomain) return `"${host}" is the platform domain; no site may claim it`;
  if (host.endsWith(`.${platformDomain}`)) {
    return `"${host}" is under the platform domain ${platformDomain}; <site-id>.${platformDomain} is served without being listed, and no site may claim another name under it`;
  }
  if (host === 'localhost' || host.endsWith('.localhost')) return `"${host}" is a loopback name (RFC 6761); no site may claim it`;
  return undefined;
}
