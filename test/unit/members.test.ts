import { describe, it, expect, beforeAll } from 'vitest';
import { ContentError } from '../../astro-multi-tenant/server/errors.ts';
import { parseMembersFile, type MembersState } from '../../astro-multi-tenant/server/session/members.ts';
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
