import { randomBytes, scrypt as scryptCallback, timingSafeEqual, type ScryptOptions } from 'node:crypto';

const scrypt = (password: string, salt: Buffer, keylen: number, options: ScryptOptions) =>
  new Promise<Buffer>((resolve, reject) => scryptCallback(password, salt, keylen, options, (error, key) => (error ? reject(error) : resolve(key))));

/** N=2^15, r=8, p=1: ~32 MiB and tens of ms per check, OWASP's scrypt floor. */
const DEFAULT = { N: 32768, r: 8, p: 1 };
const KEY_LENGTH = 32;
const FORMAT = /^scrypt\$(\d+)\$(\d+)\$(\d+)\$([A-Za-z0-9+/=]+)\$([A-Za-z0-9+/=]+)$/;

/** `scrypt$N$r$p$salt$hash` (base64): self-describing, so the cost can rise without breaking old hashes. */
export async function hashPassword(password: string, params = DEFAULT): Promise<string> {
  const salt = randomBytes(16);
  const key = await scrypt(password, salt, KEY_LENGTH, { ...params, maxmem: 128 * params.N * params.r * 2 });
  return `scrypt$${params.N}$${params.r}$${params.p}$${salt.toString('base64')}$${key.toString('base64')}`;
}

export function isPasswordHash(value: string): boolean {
  return FORMAT.test(value);
}

export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const match = FORMAT.exec(stored);
  if (!match) return false;
  const [, n, r, p, salt, hash] = match;
  const expected = Buffer.from(hash!, 'base64');
  const params = { N: Number(n), r: Number(r), p: Number(p) };
  // Refuse absurd costs from a tampered members file instead of eating the worker's memory.
  if (params.N > 2 ** 20 || params.r > 32 || params.p > 16 || expected.length < 16) return false;
  const actual = await scrypt(password, Buffer.from(salt!, 'base64'), expected.length, { ...params, maxmem: 128 * params.N * params.r * 2 });
  return timingSafeEqual(actual, expected);
}

/** Burns the same time as a real check, so "no such member" and "wrong password" look alike. */
let dummy: Promise<string> | undefined;
export async function verifyAgainstDummy(password: string): Promise<false> {
  dummy ??= hashPassword('not-a-real-password');
  await verifyPassword(password, await dummy);
  return false;
}
