import type { z } from 'zod';
import { ContentError } from '../errors.ts';
import { toContentIssues } from './schema.ts';

/**
 * Parses a JSON content file (site.json, members.json) against its schema. Pure; every problem is
 * reported with the file, the field and the reason, never thrown.
 */
export function parseJsonFile<S extends z.ZodType>(schema: S, text: string, file: string): { ok: true; value: z.output<S> } | { ok: false; error: ContentError } {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    return { ok: false, error: new ContentError('SITE_CONFIG_INVALID', [{ file, field: '', reason: `not valid JSON: ${(error as Error).message}` }]) };
  }
  const result = schema.safeParse(json);
  if (!result.success) return { ok: false, error: new ContentError('SITE_CONFIG_INVALID', toContentIssues(file, result.error)) };
  return { ok: true, value: result.data };
}
