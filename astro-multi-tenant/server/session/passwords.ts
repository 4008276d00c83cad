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

interface Params {
  N: number;
  r: number;
  p: number;
}

/** 64 MiB of scrypt memory at most: a tampered members file must not be able to exhaust a worker. */
const MAX_MEMORY = 64 * 1024 * 1024;

function parseHash(stored: string): { params: Params; salt: Buffer; hash: Buffer } | undefined {
  const match = FORMAT.exec(stored);
  if (!match) return undefined;
  const [, n, r, p, salt, hash] = match;
  const params = { N: Number(n), r: Number(r), p: Number(p) };
  const powerOfTwo = params.N > 1 && (params.N & (params.N - 1)) === 0;
  if (!powerOfTwo || params.r < 1 || params.p < 1 || params.p > 4 || 128 * params.N * params.r > MAX_MEMORY) return undefined;
  const expected = Buffer.from(hash!, 'base64');
  if (expected.length < 16 || expected.length > 64) return undefined;
  return { params, salt: Buffer.from(salt!, 'base64'), hash: expected };
}

export function isPasswordHash(value: string): boolean {
  return parseHash(value) !== undefined;
}

export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  // Absurd or invalid costs from a tampered members file are refused, never computed.
  const parsed = parseHash(stored);
  if (!parsed) return false;
  try {
    const actual = await scrypt(password, parsed.salt, parsed.hash.length, { ...parsed.params, maxmem: 128 * parsed.params.N * parsed.params.r * 2 });
    return timingSafeEqual(actual, parsed.hash);
  } catch {
    return false;
  }
}

/** Burns the same time as a real check, so "no such member" and "wrong password" look alike. */
let dummy: Promise<string> | undefined;
export async function verifyAgainstDummy(password: string): Promise<false> {
  dummy ??= hashPassword('not-a-real-password');
  await verifyPassword(password, await dummy);
  return false;
}
