import { z } from 'zod';
import { normalizeHost } from '../tenant/normalize-host.ts';
import { hostClaimProblem } from '../tenant/host-rules.ts';
import { PlatformError, type ContentIssue } from '../errors.ts';

/**
 * The site folder format, validated once when a site loads. Objects are strict so that a typo
 * (`domian`) is reported instead of silently ignored. Theme values end up inside a <style> element,
 * so they are restricted to shapes that cannot break out of a CSS declaration.
 */
const hostname = z.string().transform((value, ctx) => {
  try {
    const { hostname, port } = normalizeHost(value);
    if (port !== undefined) {
      ctx.addIssue({ code: 'custom', message: `"${value}" must not include a port` });
      return z.NEVER;
    }
    return hostname;
  } catch (error) {
    ctx.addIssue({ code: 'custom', message: `"${value}" is not a valid host name (${(error as Error).message})` });
    return z.NEVER;
  }
});

/**
 * CSS named colours (CSS Color 4), plus `transparent` and `currentcolor`. A plain word used to pass
 * any 3–30 letters, so a typo such as "bleu" was accepted and rendered as no colour at all.
 */
const CSS_COLOR_NAMES = new Set(
  (
    'aliceblue antiquewhite aqua aquamarine azure beige bisque black blanchedalmond blue blueviolet brown burlywood ' +
    'cadetblue chartreuse chocolate coral cornflowerblue cornsilk crimson cyan darkblue darkcyan darkgoldenrod darkgray ' +
    'darkgreen darkgrey darkkhaki darkmagenta darkolivegreen darkorange darkorchid darkred darksalmon darkseagreen ' +
    'darkslateblue darkslategray darkslategrey darkturquoise darkviolet deeppink deepskyblue dimgray dimgrey dodgerblue ' +
    'firebrick floralwhite forestgreen fuchsia gainsboro ghostwhite gold goldenrod gray green greenyellow grey honeydew ' +
    'hotpink indianred indigo ivory khaki lavender lavenderblush lawngreen lemonchiffon lightblue lightcoral lightcyan ' +
    'lightgoldenrodyellow lightgray lightgreen lightgrey lightpink lightsalmon lightseagreen lightskyblue lightslategray ' +
    'lightslategrey lightsteelblue lightyellow lime limegreen linen magenta maroon mediumaquamarine mediumblue mediumorchid ' +
    'mediumpurple mediumseagreen mediumslateblue mediumspringgreen mediumturquoise mediumvioletred midnightblue mintcream ' +
    'mistyrose moccasin navajowhite navy oldlace olive olivedrab orange orangered orchid palegoldenrod palegreen ' +
    'paleturquoise palevioletred papayawhip peachpuff peru pink plum powderblue purple rebeccapurple red rosybrown ' +
    'royalblue saddlebrown salmon sandybrown seagreen seashell sienna silver skyblue slateblue slategray slategrey snow ' +
    'springgreen steelblue tan teal thistle tomato turquoise violet wheat white whitesmoke yellow yellowgreen ' +
    'transparent currentcolor'
  ).split(' '),
);

const HEX_COLOR = /^#([0-9a-f]{3}|[0-9a-f]{4}|[0-9a-f]{6}|[0-9a-f]{8})$/i;
// One channel: a number with an optional unit, or `none`. Nothing else may appear inside the
// parentheses, which is what keeps a value from breaking out of the theme's <style> declaration.
const CHANNEL = String.raw`(?:[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:%|deg|rad|grad|turn)?|none)`;
const COLOR_FUNCTION = new RegExp(
  String.raw`^(?:rgba?|hsla?|oklch|oklab)\(\s*(?:` +
    String.raw`${CHANNEL}\s+${CHANNEL}\s+${CHANNEL}(?:\s*/\s*${CHANNEL})?` + // modern: rgb(30 64 175 / 50%)
    String.raw`|${CHANNEL}\s*,\s*${CHANNEL}\s*,\s*${CHANNEL}(?:\s*,\s*${CHANNEL})?` + // legacy: rgb(30, 64, 175, 0.5)
    String.raw`)\s*\)$`,
  'i',
);
const COLOR_HINT = 'must be a CSS color such as #1e40af, rgb(30 64 175) or a color name';

/** Why `value` is not an accepted theme colour, or undefined if it is one. */
export function cssColorProblem(value: string): string | undefined {
  if (value.length > 100) return COLOR_HINT;
  if (HEX_COLOR.test(value) || COLOR_FUNCTION.test(value) || CSS_COLOR_NAMES.has(value.toLowerCase())) return undefined;
  if (/^[a-z]+$/i.test(value)) return `"${value}" is not a CSS color name; use a name such as navy, or a CSS color such as #1e40af or rgb(30 64 175)`;
  return COLOR_HINT;
}

const color = z.string().superRefine((value, ctx) => {
  const problem = cssColorProblem(value);
  if (problem) ctx.addIssue({ code: 'custom', message: problem });
});
const length = z.string().regex(/^(0|\d+(\.\d+)?(px|rem|em))$/, 'must be a CSS length such as 0.5rem or 8px');

export const LAYOUTS = ['page', 'landing', 'article'] as const;
export type LayoutName = (typeof LAYOUTS)[number];

const localHref = z
  .string()
  .min(1)
  .regex(/^(\/(?!\/)|https?:\/\/|mailto:|#)/, 'must start with "/", "#", "http(s)://" or "mailto:"');

/** Identity-provider algorithms we accept; symmetric (HS*) ones would need a shared secret in site.json. */
export const IDP_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'] as const;

const authShape = z
  .strictObject({
    /** Sign-in with e-mail and password against members.json in the site folder. */
    members: z.boolean().default(false),
    /** Sign-in with a token (JWT) issued by the site's own identity provider. */
    token: z
      .strictObject({
        jwksUrl: z.url({ protocol: /^https?$/, error: 'must be an http(s) URL of a JWKS document' }).optional(),
        jwks: z.strictObject({ keys: z.array(z.record(z.string(), z.unknown())).min(1).max(20) }).optional(),
        issuer: z.string().min(1).max(300),
        audience: z.string().min(1).max(300),
        algorithms: z.array(z.enum(IDP_ALGORITHMS)).min(1).default(['RS256', 'ES256', 'EdDSA']),
      })
      .superRefine((token, ctx) => {
        if ((token.jwksUrl === undefined) === (token.jwks === undefined)) ctx.addIssue({ code: 'custom', message: 'give exactly one of jwksUrl or jwks' });
      })
      .optional(),
    /** A session not used for this long expires (sliding). */
    sessionIdleMinutes: z.number().int().min(5).max(43_200).default(1440),
  })
  .optional();

/**
 * Whether `locale` is accepted where rendering uses it: the article layout writes dates with
 * `Date.prototype.toLocaleDateString(locale, …)` (shared-components/Article.astro), which throws
 * a RangeError for a tag that is well-formed by the pattern above but not valid BCP 47 (a second
 * region, a repeated variant: `en-US-US`). Validating with the same call means a locale passes
 * `sites check` exactly when every page of the site can render with it (unknown but valid
 * languages fall back to a default, as Intl does).
 */
export function formatsDates(locale: string): boolean {
  try {
    new Date(0).toLocaleDateString(locale, { year: 'numeric', month: 'long', day: 'numeric', timeZone: 'UTC' });
    return true;
  } catch {
    return false;
  }
}

const siteConfigShape = z.strictObject({
  $schema: z.string().optional(),
  name: z.string().trim().min(1, 'must not be empty').max(120),
  description: z.string().max(500).default(''),
  domains: z.array(hostname).max(100).default([]),
  aliases: z.array(hostname).max(100).default([]),
  locale: z
    .string()
    .regex(/^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$/, 'must be a BCP 47 language tag such as en or pt-BR')
    .refine(formatsDates, 'is not a language tag dates can be written in (each part may appear once: en-US, not en-US-US)')
    .default('en'),
  layout: z.enum(LAYOUTS).default('page'),
  theme: z
    .strictObject({
      primary: color.default('#1d4ed8'),
      accent: color.default('#f59e0b'),
      background: color.default('#ffffff'),
      text: color.default('#111827'),
      font: z.enum(['sans', 'serif', 'mono']).default('sans'),
      radius: length.default('0.5rem'),
    })
    .default({ primary: '#1d4ed8', accent: '#f59e0b', background: '#ffffff', text: '#111827', font: 'sans', radius: '0.5rem' }),
  nav: z.array(z.strictObject({ label: z.string().trim().min(1).max(60), href: localHref })).max(30).default([]),
  footer: z.string().max(300).default(''),
  robots: z
    .strictObject({
      index: z.boolean().default(true),
      disallow: z.array(z.string().regex(/^\//, 'must start with "/"')).max(100).default([]),
    })
    .default({ index: true, disallow: [] }),
  auth: authShape,
});

/**
 * A host may appear once across `domains` and `aliases`: listed twice it is either redundant or (in
 * both lists) contradictory, since a domain is served and an alias redirects. Hosts are compared in
 * their normalised form, so `WWW.x.example.` repeats `www.x.example`. Later entries are reported.
 */
export function duplicateHosts(domains: readonly string[], aliases: readonly string[]): { list: 'domains' | 'aliases'; index: number; reason: string }[] {
  const firstSeenIn = new Map<string, 'domains' | 'aliases'>();
  const issues: { list: 'domains' | 'aliases'; index: number; reason: string }[] = [];
  for (const [list, hosts] of [['domains', domains], ['aliases', aliases]] as const) {
    hosts.forEach((host, index) => {
      const earlier = firstSeenIn.get(host);
      if (earlier === undefined) firstSeenIn.set(host, list);
      else issues.push({ list, index, reason: earlier === list ? `"${host}" is listed more than once in ${list}` : `"${host}" is also listed in ${earlier}` });
    });
  }
  return issues;
}

let processPlatformDomain: string | undefined;

/**
 * The platform domain the host rules protect in this process: PLATFORM_DOMAIN normalised as
 * config.ts does it (default `localhost`). The server and `npm run sites` read the same variable,
 * so they refuse the same names without every caller of parseSiteConfig passing it along; a value
 * config.ts would refuse never gets this far (the process exits first). Read once.
 */
export function hostRulesPlatformDomain(env: Record<string, string | undefined> = process.env): string {
  if (processPlatformDomain !== undefined) return processPlatformDomain;
  const raw = env.PLATFORM_DOMAIN?.trim() || 'localhost';
  try {
    processPlatformDomain = normalizeHost(raw).hostname;
  } catch {
    processPlatformDomain = 'localhost';
  }
  return processPlatformDomain;
}

/**
 * The site.json schema with the host rules of one platform domain (tenant/host-rules.ts): no IP
 * literal, loopback name, platform domain or name under it in `domains` or `aliases`, and no host
 * listed twice. `siteConfigSchema` is this for the process's PLATFORM_DOMAIN.
 */
export function siteConfigSchemaFor(platformDomain: () => string) {
  return siteConfigShape.superRefine((config, ctx) => {
    for (const list of ['domains', 'aliases'] as const) {
      config[list].forEach((host, index) => {
        const problem = hostClaimProblem(host, platformDomain());
        if (problem) ctx.addIssue({ code: 'custom', path: [list, index], message: problem });
      });
    }
    for (const { list, index, reason } of duplicateHosts(config.domains, config.aliases)) {
      ctx.addIssue({ code: 'custom', path: [list, index], message: reason });
    }
  });
}

export const siteConfigSchema = siteConfigSchemaFor(() => hostRulesPlatformDomain());

export type SiteConfig = z.output<typeof siteConfigSchema>;

/** True for a YYYY-MM-DD date that exists on the calendar (not 2026-02-30 or 2026-13-45). */
export function isCalendarDate(text: string): boolean {
  const match = /^(\d{4})-(\d{2})-(\d{2})$/.exec(text);
  if (!match) return false;
  const [year, month, day] = [Number(match[1]), Number(match[2]), Number(match[3])];
  // Date.UTC rolls impossible dates over (month 13 → next January); a real date survives unchanged.
  const date = new Date(Date.UTC(year, month - 1, day));
  return date.getUTCFullYear() === year && date.getUTCMonth() === month - 1 && date.getUTCDate() === day;
}

// A quoted date, or one the YAML loader refused because it does not exist (see splitFrontmatter).
const dateText = z.string().superRefine((value, ctx) => {
  const day = value.slice(0, 10);
  if (!/^\d{4}-\d{2}-\d{2}/.test(value)) ctx.addIssue({ code: 'custom', message: 'must be a date such as 2026-01-31' });
  else if (!isCalendarDate(day)) ctx.addIssue({ code: 'custom', message: `${day} is not a real date (must be a date such as 2026-01-31)` });
});

export const frontmatterSchema = z.strictObject({
  title: z.string().trim().min(1, 'must not be empty').max(200),
  description: z.string().max(500).default(''),
  layout: z.enum(LAYOUTS).optional(),
  draft: z.boolean().default(false),
  /** `members`: only signed-in visitors of this site may read the page. */
  access: z.enum(['public', 'members']).default('public'),
  date: z
    .union([z.date(), dateText])
    .transform((d) => (d instanceof Date ? d.toISOString().slice(0, 10) : d.slice(0, 10)))
    .optional(),
  hero: z
    .strictObject({
      title: z.string().min(1).max(200),
      subtitle: z.string().max(500).default(''),
      cta: z.strictObject({ label: z.string().min(1).max(60), href: localHref }).optional(),
    })
    .optional(),
  cards: z
    .array(z.strictObject({ title: z.string().min(1).max(120), text: z.string().max(500).default(''), href: localHref.optional() }))
    .max(48)
    .optional(),
});

export type Frontmatter = z.output<typeof frontmatterSchema>;

/** Turns zod issues into file/field/reason triples. */
export function toContentIssues(file: string, error: z.ZodError): ContentIssue[] {
  return error.issues.map((issue) => {
    const field = issue.path.map(String).join('.');
    let reason = issue.message;
    if (issue.code === 'unrecognized_keys') reason = `unknown field(s) ${issue.keys.map((k) => `"${k}"`).join(', ')}`;
    return { file, field, reason };
  });
}

export function assertNever(value: never): never {
  throw new PlatformError('CONFIG_INVALID', `unexpected value ${String(value)}`);
}
