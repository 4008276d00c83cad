import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import type { ContentError } from '../errors.ts';
import type { ContentCache } from '../sites/content-cache.ts';
import { fileFingerprint } from '../sites/fs-fingerprint.ts';
import { parseJsonFile } from '../sites/json-file.ts';
import { isPasswordHash } from './passwords.ts';

/** `sites/<id>/members.json`: outside public/, so it is never served as a file. */
export const MEMBERS_FILE = 'members.json';

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

/** Members are read through the content cache, so an added member can sign in within a second. */
export function createMembersLoader(sitesDir: string, cache: ContentCache) {
  return async function loadMembers(siteId: string): Promise<MembersState | null> {
    const path = join(sitesDir, siteId, MEMBERS_FILE);
    return cache.get<MembersState>(`members\0${siteId}`, {
      fingerprint: () => fileFingerprint(path),
      async load() {
        const text = await readFile(path, 'utf8');
        return { value: parseMembersFile(text, `sites/${siteId}/${MEMBERS_FILE}`), bytes: 256 + text.length * 2 };
      },
    });
  };
}

export type MembersLoader = ReturnType<typeof createMembersLoader>;
