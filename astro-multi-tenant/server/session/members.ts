import { realpath } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { ContentError } from '../errors.ts';
import type { ContentCache } from '../sites/content-cache.ts';
import { fileFingerprint } from '../sites/fs-fingerprint.ts';
import { parseJsonFile } from '../sites/json-file.ts';
import { readContainedText, refusalReason } from '../sites/contained-file.ts';
import { isPasswordHash } from './passwords.ts';

/** `sites/<id>/members.json`: outside public/, so it is never served as a file. */
export const MEMBERS_FILE = 'members.json';
/** Largest members.json read (bytes): 100,000 members of ~300 bytes each. Checked before reading. */
export const MAX_MEMBERS_BYTES = 32 * 1024 * 1024;

const memberSchema = z.strictObject({
  email: z.email().transform((e) => e.toLowerCase()),
  name: z.string().trim().min(1).max(120),
  password: z.string().refine(isPasswordHash, 'must be a password hash made by `npm run sites -- add-member` (scrypt$…)'),
});

export const membersFileSchema = z.strictObject({
  $schema: z.string().optional(),
  members: z.array(memberSchema).max(100_000),
});

export type Member = z.output<typeof memberSchema>;
export type MembersState = { ok: true; byEmail: ReadonlyMap<string, Member> } | { ok: false; error: ContentError };

export function parseMembersFile(text: string, file: string): MembersState {
  const parsed = parseJsonFile(membersFileSchema, text, file);
  if (!parsed.ok) return parsed;
  const byEmail = new Map<string, Member>();
  for (const member of parsed.value.members) byEmail.set(member.email, member);
  return { ok: true, byEmail };
}

/**
 * Members are read through the content cache, so an added member can sign in within a second.
 * The file is read only from inside the site's own folder (contained-file.ts): a members.json that
 * is a link to another site's file (or anywhere else) is refused unread, like one over
 * MAX_MEMBERS_BYTES, and then nobody can sign in with a password on that site. A file gone
 * between the stat and the open has no members.
 */
export function createMembersLoader(sitesDir: string, cache: ContentCache) {
  return async function loadMembers(siteId: string): Promise<MembersState | null> {
    const dir = join(sitesDir, siteId);
    const path = join(dir, MEMBERS_FILE);
    const file = `sites/${siteId}/${MEMBERS_FILE}`;
    return cache.get<MembersState>(`members\0${siteId}`, {
      fingerprint: () => fileFingerprint(path),
      async load() {
        const read = await readContainedText(path, await realpath(dir), { maxBytes: MAX_MEMBERS_BYTES });
        if (read.kind === 'missing') return { value: { ok: true, byEmail: new Map() }, bytes: 256 };
        if (read.kind === 'refused') return { value: { ok: false, error: new ContentError('SITE_CONFIG_INVALID', [{ file, field: '', reason: refusalReason(read) }]) }, bytes: 512 };
        return { value: parseMembersFile(read.text, file), bytes: 256 + read.text.length * 2 };
      },
    });
  };
}

export type MembersLoader = ReturnType<typeof createMembersLoader>;
