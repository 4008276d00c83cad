import { describe, expect, it } from 'vitest';
import { acmeChallengeStage } from '../../astro-multi-tenant/server/pipeline/stages/acme-challenge.ts';
import { parseRequestTarget } from '../../astro-multi-tenant/server/http/request-path.ts';
import type { HostedRequest } from '../../astro-multi-tenant/server/pipeline/context.ts';
import type { ChallengeRecord } from '../../astro-multi-tenant/server/tls/certificate-store.ts';

const TOKEN = 'aB3_-cD4eF5gH6iJ7kL8mN9';

/** A request for `/.well-known/acme-challenge/<token>` on `hostname`, with a response that records what was sent. */
function challengeRequest(hostname: string, token = TOKEN) {
  const sent: { status?: number; body?: string } = {};
  const res = {
    headersSent: false,
    statusCode: 200,
    setHeader() {},
    getHeader() { return undefined; },
    writeHead(status: number) { sent.status = status; return res; },
    end(body?: string) { sent.body = String(body ?? ''); },
  };
  const ctx = { req: { method: 'GET', headers: {} }, res, host: { hostname, port: undefined }, target: parseRequestTarget(`/.well-known/acme-challenge/${token}`) } as unknown as HostedRequest;
  return { ctx, sent };
}

describe('the ACME challenge stage', () => {
  const challenge: ChallengeRecord = { host: 'shop.example', keyAuthorization: `${TOKEN}.thumbprint`, expiresAt: Date.now() + 60_000 } as ChallengeRecord;

  it('answers a listed host\'s token from the store, and looks up every listed host\'s tokens however many arrive', async () => {
    let reads = 0;
    const stage = acmeChallengeStage({ getChallenge: async () => (reads++, challenge), isListedHost: (h) => h === 'shop.example', now: () => 0 });
    const { ctx, sent } = challengeRequest('shop.example');
    expect(await stage(ctx)).toBe('acme_challenge');
    expect(sent.body).toBe(`${TOKEN}.thumbprint`);
    for (let i = 0; i < 100; i++) await stage(challengeRequest('shop.example').ctx);
    expect(reads).toBe(101);
  });

  it('reads the store for tokens on hosts no site lists at most unlistedLookupsPerSecond times a second, and passes the rest on unread', async () => {
    let reads = 0;
    let clock = 0;
    const stage = acmeChallengeStage({ getChallenge: async () => (reads++, undefined), isListedHost: () => false, unlistedLookupsPerSecond: 5, now: () => clock });
    for (let i = 0; i < 1000; i++) expect(await stage(challengeRequest(`r${i}.flood.example`).ctx)).toBeUndefined();
    expect(reads).toBe(5);
    clock += 1000;
    for (let i = 0; i < 1000; i++) await stage(challengeRequest(`s${i}.flood.example`).ctx);
    expect(reads).toBe(10);
  });

  it('still answers a token on a host not yet in this process\'s index while the budget lasts (listed moments ago elsewhere)', async () => {
    const stage = acmeChallengeStage({ getChallenge: async () => challenge, isListedHost: () => false, now: () => 0 });
    const { ctx, sent } = challengeRequest('shop.example');
    expect(await stage(ctx)).toBe('acme_challenge');
    expect(sent.body).toBe(`${TOKEN}.thumbprint`);
  });

  it('never answers a token for another host than the one it was issued for', async () => {
    const stage = acmeChallengeStage({ getChallenge: async () => challenge, isListedHost: () => true });
    expect(await stage(challengeRequest('other.example').ctx)).toBeUndefined();
  });
});
