import { describe, it, expect, beforeAll } from 'vitest';
import { hashPassword, isPasswordHash, verifyAgainstDummy, verifyPassword } from '../../astro-multi-tenant/server/session/passwords.ts';

/** A cheap cost so the suite stays fast; the format records it, so verify uses the same one. */
const FAST = { N: 1024, r: 8, p: 1 };

function parts(hash: string) {
  const [scheme, n, r, p, salt, key] = hash.split('$');
  return { scheme: scheme!, n: n!, r: r!, p: p!, salt: salt!, key: key! };
}

const join = (p: { scheme: string; n: string | number; r: string | number; p: string | number; salt: string; key: string }) =>
  [p.scheme, p.n, p.r, p.p, p.salt, p.key].join('$');

describe('hashPassword / verifyPassword', () => {
  let hash: string;
  beforeAll(async () => {
    hash = await hashPassword('correct horse battery staple', FAST);
  });

  it('verifies the password it hashed', async () => {
    expect(await verifyPassword('correct horse battery staple', hash)).toBe(true);
  });

  it('does not verify a wrong password', async () => {
    expect(await verifyPassword('correct horse battery stapler', hash)).toBe(false);
    expect(await verifyPassword('', hash)).toBe(false);
    expect(await verifyPassword('CORRECT HORSE BATTERY STAPLE', hash)).toBe(false);
  });

  it('writes scrypt$N$r$p$salt$hash with a 16-byte salt and a 32-byte key in base64', () => {
    expect(hash).toMatch(/^scrypt\$1024\$8\$1\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+$/);
    const { salt, key } = parts(hash);
    expect(Buffer.from(salt, 'base64')).toHaveLength(16);
    expect(Buffer.from(key, 'base64')).toHaveLength(32);
  });

  it('salts every hash, so the same password hashes differently each time', async () => {
    const again = await hashPassword('correct horse battery staple', FAST);
    expect(again).not.toBe(hash);
    expect(parts(again).salt).not.toBe(parts(hash).salt);
    expect(await verifyPassword('correct horse battery staple', again)).toBe(true);
  });

  it('records the cost it used, so a stronger default later still verifies old hashes', async () => {
    const stronger = await hashPassword('pw', { N: 2048, r: 8, p: 2 });
    expect(stronger.startsWith('scrypt$2048$8$2$')).toBe(true);
    expect(await verifyPassword('pw', stronger)).toBe(true);
  });

  it('uses N=32768, r=8, p=1 by default', async () => {
    const strong = await hashPassword('pw');
    expect(strong.startsWith('scrypt$32768$8$1$')).toBe(true);
    expect(await verifyPassword('pw', strong)).toBe(true);
  });

  it('handles non-ASCII passwords', async () => {
    const h = await hashPassword('pässwörd 🔑', FAST);
    expect(await verifyPassword('pässwörd 🔑', h)).toBe(true);
    expect(await verifyPassword('passwort 🔑', h)).toBe(false);
  });
});

describe('verifyPassword with tampered hashes', () => {
  let hash: string;
  beforeAll(async () => {
    hash = await hashPassword('secret', FAST);
  });

  it('returns false when the stored key was changed', async () => {
    const p = parts(hash);
    const key = Buffer.from(p.key, 'base64');
    key[0] = key[0]! ^ 0xff;
    expect(await verifyPassword('secret', join({ ...p, key: key.toString('base64') }))).toBe(false);
  });

  it('returns false when the salt was changed', async () => {
    const p = parts(hash);
    const salt = Buffer.from(p.salt, 'base64');
    salt[0] = salt[0]! ^ 0xff;
    expect(await verifyPassword('secret', join({ ...p, salt: salt.toString('base64') }))).toBe(false);
  });

  it('returns false when the recorded cost was changed', async () => {
    expect(await verifyPassword('secret', join({ ...parts(hash), n: 2048 }))).toBe(false);
  });

  it('returns false, without running scrypt, for absurd costs', async () => {
    const p = parts(hash);
    // Any of these would need gigabytes or minutes if it were attempted.
    for (const tampered of [{ n: 2 ** 30 }, { n: 2 ** 21 }, { r: 1024 }, { r: 33 }, { p: 1000 }, { p: 17 }]) {
      await expect(verifyPassword('secret', join({ ...p, ...tampered })), JSON.stringify(tampered)).resolves.toBe(false);
    }
  });

  it('returns false for a stored key shorter than 16 bytes', async () => {
    const p = parts(hash);
    const short = Buffer.from(p.key, 'base64').subarray(0, 15).toString('base64');
    await expect(verifyPassword('secret', join({ ...p, key: short }))).resolves.toBe(false);
  });

  it('returns false for strings that are not hashes at all', async () => {
    for (const stored of ['', 'secret', 'scrypt$', 'bcrypt$10$abc', '$2b$10$abcdefghijklmnopqrstuv', 'scrypt$x$8$1$AAAA$AAAA', `${hash}\n`, ` ${hash}`]) {
      await expect(verifyPassword('secret', stored), JSON.stringify(stored)).resolves.toBe(false);
    }
  });

  // BUG (passwords.ts:29-30): a cost that passes the bounds check but that scrypt refuses (N not a
  // power of two, N = 1) makes node:crypto throw "Invalid scrypt params", so verifyPassword rejects
  // and a sign-in against that member fails with an unhandled error instead of false. Flip to it()
  // once verifyPassword validates N (power of two > 1, r >= 1, p >= 1) or catches the scrypt error.
  it('returns false, without throwing, for a cost scrypt cannot use (N not a power of two)', async () => {
    const p = parts(hash);
    await expect(verifyPassword('secret', join({ ...p, n: 1000 }))).resolves.toBe(false);
    await expect(verifyPassword('secret', join({ ...p, n: 1 }))).resolves.toBe(false);
  });
});

describe('isPasswordHash', () => {
  it('recognises hashes made by hashPassword', async () => {
    expect(isPasswordHash(await hashPassword('x', FAST))).toBe(true);
  });

  it('rejects plain text and other formats', () => {
    for (const value of ['', 'hunter2', 'scrypt', 'scrypt$1024$8$1$salt', 'scrypt$1024$8$1$sa lt$key', 'scrypt$N$8$1$AAAA$AAAA', '$2b$12$abcdefghijklmnopqrstuu', 'argon2id$v=19$m=65536$AAAA$AAAA', 'SCRYPT$1024$8$1$AAAA$AAAA']) {
      expect(isPasswordHash(value), JSON.stringify(value)).toBe(false);
    }
  });
});

describe('verifyAgainstDummy', () => {
  it('always answers false, whatever the password', async () => {
    expect(await verifyAgainstDummy('not-a-real-password')).toBe(false);
    expect(await verifyAgainstDummy('anything')).toBe(false);
  });
});
