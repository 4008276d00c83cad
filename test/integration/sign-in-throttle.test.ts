import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copySites, removeDir, startServer, type RunningServer } from '../helpers/server.ts';
import { startRedis, type RunningRedis } from '../helpers/redis.ts';
import { startAll } from '../helpers/processes.ts';
import { DEMO, cookiesFrom, formHeaders, openForm, send, type Client } from '../helpers/sessions.ts';

const SESSION_KEYS = 'k1:throttle-test-signing-secret-0123456789abcdef';
const LIMIT = 10;

/**
 * One browser (one form, one client address) firing password attempts at once, spread over every
 * server given: returns the statuses in the order the attempts were sent.
 */
async function burst(servers: RunningServer[], passwords: string[], from?: string): Promise<number[]> {
  const clients: Client[] = servers.map((s) => ({ port: s.port, host: 'docs.example', from }));
  const form = await openForm(clients[0]!);
  const attempts = passwords.map((password, i) => {
    const body = new URLSearchParams({ csrf: form.token, email: DEMO.email, password, next: '/members' }).toString();
    return send(clients[i % clients.length]!, 'POST', '/_platform/session/sign-in', formHeaders(form, 'http://docs.example'), body);
  });
  const answers = await Promise.all(attempts);
  for (const a of answers) if (a.status === 303) expect(cookiesFrom(a).amt_session).toBeDefined();
  return answers.map((a) => a.status);
}

const count = (statuses: number[], status: number) => statuses.filter((s) => s === status).length;
const wrong = (n: number) => Array.from({ length: n }, (_, i) => `wrong-password-${i}`);

describe('sign-in throttling under concurrency, two server processes sharing a real Redis', () => {
  let redis: RunningRedis;
  let sitesDir: string;
  let one: RunningServer;
  let two: RunningServer;

  beforeAll(async () => {
    redis = await startRedis();
    sitesDir = await copySites();
    // A generous Redis timeout: this machine is shared and busy, and these tests are about counting,
    // not about how a slow Redis is answered (503, tested in sessions.test.ts).
    const env = { REDIS_URL: redis.url, SESSION_KEYS, SIGNIN_MAX_FAILURES: String(LIMIT), REDIS_TIMEOUT_MS: '5000' };
    [one, two] = await startAll([startServer(sitesDir, env), startServer(sitesDir, env)]);
  }, 60_000);

  afterAll(async () => {
    await one?.stop();
    await two?.stop();
    await redis?.stop();
    await removeDir(sitesDir);
  });

  it(`checks exactly ${LIMIT} of 60 parallel wrong passwords from one client and refuses the other 50 with 429`, async () => {
    const statuses = await burst([one, two], wrong(60), '127.0.0.1');
    expect({ checked: count(statuses, 401), refused: count(statuses, 429), other: statuses.filter((s) => s !== 401 && s !== 429) }).toEqual({ checked: LIMIT, refused: 50, other: [] });
  }, 60_000);

  it('does not sign in the right password sent last in a burst of 40 guesses', async () => {
    // Another client address, so the previous test's window does not decide this one.
    const statuses = await burst([one, two], [...wrong(39), DEMO.password], '127.0.0.3');
    expect({ checked: count(statuses, 401) + count(statuses, 303), refused: count(statuses, 429) }).toEqual({ checked: LIMIT, refused: 30 });
    expect(statuses.at(-1)).toBe(429);
  }, 60_000);

  it('lets a member who knows the password sign in again and again: successes give their attempt back', async () => {
    const client: Client = { port: one.port, host: 'docs.example', from: '127.0.0.4' };
    for (let i = 0; i < LIMIT + 2; i++) {
      const statuses = await burst([i % 2 ? one : two], [DEMO.password], client.from);
      expect(statuses, `sign-in ${i + 1}`).toEqual([303]);
    }
  }, 60_000);
});

describe('sign-in throttling under concurrency in embedded mode (in-memory store)', () => {
  let sitesDir: string;
  let server: RunningServer;

  beforeAll(async () => {
    sitesDir = await copySites();
    server = await startServer(sitesDir, { REDIS_URL: '', SESSION_KEYS: '', SIGNIN_MAX_FAILURES: String(LIMIT) });
  }, 60_000);

  afterAll(async () => {
    await server?.stop();
    await removeDir(sitesDir);
  });

  it(`checks exactly ${LIMIT} of 60 parallel wrong passwords and refuses a right one sent last`, async () => {
    const statuses = await burst([server], [...wrong(59), DEMO.password]);
    expect(count(statuses, 401) + count(statuses, 303)).toBe(LIMIT);
    expect(count(statuses, 429)).toBe(50);
    expect(statuses.at(-1)).toBe(429);
  }, 60_000);
});
