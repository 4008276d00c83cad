import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdir, mkdtemp, realpath, rm, symlink, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ContentError } from '../../astro-multi-tenant/server/errors.ts';
import { createMembersLoader, MAX_MEMBERS_BYTES, parseMembersFile, type MembersState } from '../../astro-multi-tenant/server/session/members.ts';
import { createContentCache } from '../../astro-multi-tenant/server/sites/content-cache.ts';
import { hashPassword } from '../../astro-multi-tenant/server/session/passwords.ts';

const FILE = 'sites/alpha/members.json';

function failure(state: MembersState): ContentError {
  if (state.ok) throw new Error('expected the members file to be rejected');
  expect(state.error).toBeInstanceOf(ContentError);
  expect(state.error.code).toBe('SITE_CONFIG_INVALID');
  expect(state.error.issues.length).toBeGreaterThan(0);
  for (const issue of state.error.issues) expect(issue.file).toBe(FILE);
  return state.error;
}

describe('parseMembersFile', () => {
  let hash: string;
  beforeAll(async () => {
    hash = await hashPassword('pw', { N: 1024, r: 8, p: 1 });
  });

  it('indexes a valid file by lowercased e-mail', () => {
    const state = parseMembersFile(
      JSON.stringify({
        $schema: '../../schemas/members.schema.json',
        members: [
          { email: 'Alice@Example.COM', name: 'Alice', password: hash },
          { email: 'bob@example.com', name: '  Bob  ', password: hash },
        ],
      }),
      FILE,
    );
    if (!state.ok) throw new Error(state.error.message);
    expect([...state.byEmail.keys()]).toEqual(['alice@example.com', 'bob@example.com']);
    expect(state.byEmail.get('alice@example.com')).toEqual({ email: 'alice@example.com', name: 'Alice', password: hash });
    expect(state.byEmail.get('bob@example.com')?.name).toBe('Bob');
    expect(state.byEmail.get('Alice@Example.COM')).toBeUndefined();
  });

  it('accepts a file with no members', () => {
    const state = parseMembersFile('{"members":[]}', FILE);
    expect(state.ok && state.byEmail.size).toBe(0);
  });

  it('reports invalid JSON with the file name', () => {
    const error = failure(parseMembersFile('{"members": [', FILE));
    expect(error.issues).toHaveLength(1);
    expect(error.issues[0]!.reason).toContain('not valid JSON');
    expect(error.message).toContain(FILE);
  });

  it('rejects unknown top-level fields, naming them', () => {
    const error = failure(parseMembersFile(JSON.stringify({ members: [], admins: [] }), FILE));
    expect(error.issues.some((i) => i.reason.includes('"admins"'))).toBe(true);
  });

  it('rejects unknown member fields, naming the member and the field', () => {
    const error = failure(parseMembersFile(JSON.stringify({ members: [{ email: 'a@example.com', name: 'A', password: hash, role: 'admin' }] }), FILE));
    const issue = error.issues.find((i) => i.reason.includes('"role"'));
    expect(issue?.field).toBe('members.0');
    expect(issue?.reason).toContain('unknown field');
  });

  it('rejects a plain-text password with a reason naming members.N.password', () => {
    const error = failure(
      parseMembersFile(
        JSON.stringify({
          members: [
            { email: 'a@example.com', name: 'A', password: hash },
            { email: 'b@example.com', name: 'B', password: 'hunter2' },
          ],
        }),
        FILE,
      ),
    );
    expect(error.issues).toHaveLength(1);
    expect(error.issues[0]!.field).toBe('members.1.password');
    expect(error.issues[0]!.reason).toContain('add-member');
    expect(error.message).toContain(`${FILE}: members.1.password:`);
  });

  it('rejects a malformed e-mail and an empty name', () => {
    const error = failure(parseMembersFile(JSON.stringify({ members: [{ email: 'not-an-email', name: '   ', password: hash }] }), FILE));
    expect(error.issues.map((i) => i.field).sort()).toEqual(['members.0.email', 'members.0.name']);
  });

  it('rejects a file that is not an object with a members array', () => {
    for (const text of ['[]', 'null', '{}', '{"members":{}}']) {
      const error = failure(parseMembersFile(text, FILE));
      expect(error.message, text).toContain(FILE);
    }
  });

  it('puts the file name in every issue when there are several', () => {
    const error = failure(
      parseMembersFile(
        JSON.stringify({
          extra: 1,
          members: [
            { email: 'x', name: '', password: 'plain' },
            { email: 'y@example.com', name: 'Y', password: 'plain', admin: true },
          ],
        }),
        FILE,
      ),
    );
    expect(error.issues.length).toBeGreaterThanOrEqual(5);
    expect(error.message.split('\n').every((line) => line.startsWith(`${FILE}:`))).toBe(true);
  });
});

describe('createMembersLoader: members.json is read only from inside the site folder', () => {
  let root: string;
  let hash: string;
  const loader = () => createMembersLoader(join(root, 'sites'), createContentCache({ maxEntries: 100, maxBytes: 10_000_000, checkIntervalMs: 0 }));

  beforeAll(async () => {
    hash = await hashPassword('pw', { N: 1024, r: 8, p: 1 });
    root = await realpath(await mkdtemp(join(tmpdir(), 'amt-members-')));
    const members = (email: string) => JSON.stringify({ members: [{ email, name: 'M', password: hash }] });
    for (const id of ['own', 'other', 'linked', 'big', 'none']) await mkdir(join(root, 'sites', id), { recursive: true });
    await writeFile(join(root, 'sites/own/members.json'), members('own@example.com'));
    await writeFile(join(root, 'sites/other/members.json'), members('other@example.com'));
    await symlink(join(root, 'sites/other/members.json'), join(root, 'sites/linked/members.json'));
    await writeFile(join(root, 'sites/big/members.json'), '');
    await truncate(join(root, 'sites/big/members.json'), MAX_MEMBERS_BYTES + 1);
  });

  afterAll(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('reads a site\'s own members', async () => {
    const state = await loader()('own');
    expect(state?.ok && [...state.byEmail.keys()]).toEqual(['own@example.com']);
  });

  it('refuses a members.json that is a link to another site\'s file, naming the reason, so nobody signs in with it', async () => {
    const state = await loader()('linked');
    expect(state?.ok).toBe(false);
    if (!state || state.ok) return;
    expect(state.error.issues).toEqual([{ file: 'sites/linked/members.json', field: '', reason: expect.stringContaining('leads outside the site folder') }]);
    expect(JSON.stringify(state)).not.toContain('other@example.com');
  });

  it('refuses a members.json over the size limit by its size, unread', async () => {
    const state = await loader()('big');
    expect(state?.ok === false && state.error.issues[0]?.reason).toBe(`is ${(MAX_MEMBERS_BYTES + 1).toLocaleString('en-US')} bytes, over the limit of 32 MiB (33,554,432 bytes)`);
  });

  it('answers null for a site without members.json', async () => {
    expect(await loader()('none')).toBeNull();
  });
});
