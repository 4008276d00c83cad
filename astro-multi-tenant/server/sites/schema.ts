import { z } from 'zod';
import { normalizeHost } from '../tenant/normalize-host.ts';
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

const color = z
  .string()
  .regex(
    /^(#[0-9a-fA-F]{3,8}|(rgb|rgba|hsl|hsla|oklch|oklab)\([0-9.,%\s/a-z-]+\)|[a-zA-Z]{3,30})$/,
    'must be a CSS color such as #1e40af, rgb(30 64 175) or a color name',
  );
const length = z.string().regex(/^(0|\d+(\.\d+)?(px|rem|em))$/, 'must be a CSS length such as 0.5rem or 8px');

export const LAYOUTS = ['page', 'landing', 'article'] as const;
export type LayoutName = (typeof LAYOUTS)[number];

const localHref = z
  .string()
  .min(1)
  .regex(/^(\/(?!\/)|https?:\/\/|mailto:|#)/, 'must start with "/", "#", "http(s)://" or "mailto:"');

export const siteConfigSchema = z.strictObject({
  $schema: z.string().optional(),
  name: z.string().trim().min(1, 'must not be empty').max(120),
  description: z.string().max(500).default(''),
  domains: z.array(hostname).max(100).default([]),
  aliases: z.array(hostname).max(100).default([]),
  locale: z.string().regex(/^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$/, 'must be a BCP 47 language tag such as en or pt-BR').default('en'),
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
});

export type SiteConfig = z.output<typeof siteConfigSchema>;

export const frontmatterSchema = z.strictObject({
  title: z.string().trim().min(1, 'must not be empty').max(200),
  description: z.string().max(500).default(''),
  layout: z.enum(LAYOUTS).optional(),
  draft: z.boolean().default(false),
  date: z
    .union([z.date(), z.string().regex(/^\d{4}-\d{2}-\d{2}/, 'must be a date such as 2026-01-31')])
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
