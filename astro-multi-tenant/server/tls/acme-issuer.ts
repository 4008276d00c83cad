import { X509Certificate, randomUUID } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { Client } from 'acme-client';
import { loadAcmeClient } from './acme-client-module.ts';
import { leafPem } from './pem.ts';
import type { AccountRecord, CertificateBundle, CertificateStore } from './certificate-store.ts';
import { AcmeAttemptError, rateLimitScope, seconds, withProblemCapture } from './acme-problem.ts';

export { ACME_TOKEN } from './acme-token.ts';
import { ACME_TOKEN } from './acme-token.ts';

/** RFC 5280 ub-common-name: the longest host name that may also be the certificate's common name. */
export const MAX_COMMON_NAME = 64;

/** A certificate just issued: its PEMs and the facts the schedule needs (ms since the epoch). */
export interface IssuedCertificate extends CertificateBundle {
  notBefore: number;
  notAfter: number;
}

export interface AcmeIssuerOptions {
  /** ACME_DIRECTORY_URL. */
  directoryUrl: string;
  /** ACME_EMAIL: the account's contact, for the CA's expiry and policy mail; optional. */
  email?: string;
  store: CertificateStore;
  now?: () => number;
  /** How long a stored HTTP-01 answer stays servable (ms). Default 10 minutes: longer than any validation. */
  challengeTtlMs?: number;
  /** acme-client's status polling: wait between polls, first and at most (ms). */
  pollMinMs?: number;
  pollMaxMs?: number;
  /** Each request to the CA: no answer within this long fails the attempt (kind `network`). Default 30 s. */
  requestTimeoutMs?: number;
  /**
   * One whole attempt (account, order, challenge, finalisation, download): unfinished by then, it
   * fails (kind `network`) and is retried with backoff. Default 3 minutes: inside the manager's
   * 5-minute domain lock, so no second worker orders the same host while this one still waits.
   */
  attemptTimeoutMs?: number;
}

export interface AcmeIssuer {
  /**
   * Gets a certificate for `host` by HTTP-01: a new ECDSA P-256 key and CSR, an order, the key
   * authorisation stored in the shared store (any worker answers the CA), then the chain.
   * @throws AcmeAttemptError with the failure's kind (rate_limited, validation, ca, network, other).
   */
  issue(host: string): Promise<IssuedCertificate>;
  /**
   * Revokes a certificate at the CA with the account that ordered it (RFC 8555 §7.6): for a key
   * that leaked, or a host that must stop being vouched for. One the CA already revoked counts as
   * done. @throws AcmeAttemptError like issue().
   */
  revoke(chainPem: string): Promise<void>;
}

/** Facts of the leaf (first certificate of a PEM chain): serial (hex, upper case) and validity. @throws when the PEM holds no certificate. */
export function leafFacts(chainPem: string): { serial: string; notBefore: number; notAfter: number; names: string[] } {
  const leaf = new X509Certificate(leafPem(chainPem));
  const names = (leaf.subjectAltName ?? '').split(', ').filter((n) => n.startsWith('DNS:')).map((n) => n.slice(4));
  return { serial: leaf.serialNumber.toUpperCase(), notBefore: Date.parse(leaf.validFrom), notAfter: Date.parse(leaf.validTo), names };
}

/**
 * Why the CA's directory cannot be fetched (an error code such as ECONNREFUSED or
 * UNABLE_TO_VERIFY_LEAF_SIGNATURE), or undefined when it answers. acme-client reports a request
 * that got no answer as a TypeError from its own retry code, so an unexplained failure is
 * followed by this probe to tell "the CA is unreachable" from a bug.
 */
export function caUnreachable(directoryUrl: string, timeoutMs = 5000): Promise<string | undefined> {
  return new Promise((resolve) => {
    // ACME_DIRECTORY_URL is https (config.ts); a plain-http directory (a CA stand-in) is probed as such.
    const request = directoryUrl.startsWith('http:') ? httpRequest : httpsRequest;
    const req = request(directoryUrl, { method: 'GET', timeout: timeoutMs }, (res) => {
      res.resume();
      resolve(undefined);
    });
    req.on('timeout', () => req.destroy(Object.assign(new Error('timeout'), { code: 'ETIMEDOUT' })));
    req.on('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message));
    req.end();
  });
}

/**
 * The ACME side of certificates, with acme-client. The account key is made once per directory
 * and kept in the shared store (taken under the store's `account` lock, so two workers starting
 * together register one account); each process keeps its client for the process's life.
 */
export function createAcmeIssuer(options: AcmeIssuerOptions): AcmeIssuer {
  const { store, directoryUrl } = options;
  const now = options.now ?? Date.now;
  const challengeTtlMs = options.challengeTtlMs ?? 10 * 60_000;
  const requestTimeoutMs = options.requestTimeoutMs ?? 30_000;
  const attemptTimeoutMs = options.attemptTimeoutMs ?? 3 * 60_000;
  const owner = `${process.pid}-${randomUUID()}`;
  let client: Promise<Client> | undefined;
  /** The account URL the CA said it does not know (accountDoesNotExist): a stored account with it is replaced. */
  let forgotten: string | undefined;

  const makeClient = async (accountKey: string, accountUrl?: string) =>
    new (await loadAcmeClient()).Client({ directoryUrl, accountKey, accountUrl, backoffAttempts: 12, backoffMin: options.pollMinMs ?? 250, backoffMax: options.pollMaxMs ?? 5000 });

  async function openAccount(): Promise<Client> {
    const acme = await loadAcmeClient();
    const usable = (a: AccountRecord | undefined) => (a && a.url !== forgotten ? a : undefined);
    let account = usable(await store.getAccount(directoryUrl));
    if (!account) {
      if (!(await store.lock('account', owner, 60_000))) throw new AcmeAttemptError({ kind: 'other', message: 'another process is registering the ACME account; trying again shortly' });
      try {
        account = usable(await store.getAccount(directoryUrl));
        if (!account) {
          const keyPem = (await acme.crypto.createPrivateEcdsaKey()).toString();
          const fresh = await makeClient(keyPem);
          await fresh.createAccount({ termsOfServiceAgreed: true, ...(options.email ? { contact: [`mailto:${options.email}`] } : {}) });
          account = { directoryUrl, keyPem, url: fresh.getAccountUrl(), createdAt: now() };
          await store.putAccount(account);
          return fresh;
        }
      } finally {
        await store.unlock('account', owner).catch(() => {});
      }
    }
    return makeClient(account.keyPem, account.url);
  }

  /** One order for `host`, inside problem capture. */
  function order(host: string): Promise<IssuedCertificate> {
    return withProblemCapture(async () => {
      const acmeClient = await account();
      const acme = await loadAcmeClient();
      // X.509 bounds a common name to 64 characters and public CAs refuse a CSR whose CN is longer
      // (Let's Encrypt: badCSR); the subjectAltName is what clients check, so a longer host goes without one.
      const subject = host.length <= MAX_COMMON_NAME ? { commonName: host, altNames: [host] } : { altNames: [host] };
      const [keyBuffer, csr] = await acme.crypto.createCsr(subject, await acme.crypto.createPrivateEcdsaKey());
      const chainPem = await acmeClient.auto({
        csr,
        email: options.email,
        termsOfServiceAgreed: true,
        challengePriority: ['http-01'],
        // The CA checks; a self-check from here would go through this machine's own resolver and port 80.
        skipChallengeVerification: true,
        challengeCreateFn: async (authz, challenge, keyAuthorization) => {
          if (challenge.type !== 'http-01') throw new Error(`the CA offered no http-01 challenge for ${authz.identifier.value}`);
          if (authz.identifier.value !== host) throw new Error(`the CA asked about ${authz.identifier.value}, not ${host}`);
          if (!ACME_TOKEN.test(challenge.token)) throw new Error('the CA sent a challenge token that is not base64url');
          await store.putChallenge(challenge.token, { host, keyAuthorization, expiresAt: now() + challengeTtlMs });
        },
        challengeRemoveFn: async (_authz, challenge) => {
          await store.removeChallenge(challenge.token);
        },
      });
      const facts = leafFacts(chainPem);
      if (!facts.names.includes(host)) throw new Error(`the CA issued a certificate for ${facts.names.join(', ') || 'no name'}, not ${host}`);
      // Kept, an expired certificate would be served, and be due again at once: an order every tick.
      if (facts.notAfter <= now()) throw new AcmeAttemptError({ kind: 'ca', message: `the CA issued a certificate for ${host} that expired at ${new Date(facts.notAfter).toISOString()}` });
      return { serial: facts.serial, notBefore: facts.notBefore, notAfter: facts.notAfter, chainPem, keyPem: keyBuffer.toString() };
    }, { requestTimeoutMs, deadlineMs: attemptTimeoutMs, deadlineMessage: `the CA did not complete the order for ${host} within ${seconds(attemptTimeoutMs)} s` });
  }

  const account = () =>
    (client ??= openAccount().catch((error) => {
      client = undefined;
      throw error;
    }));

  return {
    async revoke(chainPem) {
      await withProblemCapture(async () => {
        try {
          await (await account()).revokeCertificate(chainPem);
        } catch (error) {
          // RFC 8555 §6.7 alreadyRevoked: the goal is reached.
          if (!/already been revoked|alreadyRevoked/i.test((error as Error).message)) throw error;
        }
      }, { requestTimeoutMs, deadlineMs: attemptTimeoutMs, deadlineMessage: `the CA did not complete the revocation within ${seconds(attemptTimeoutMs)} s` });
    },
    async issue(host) {
      try {
        try {
          return await order(host);
        } catch (error) {
          // The CA lost or deleted our account (a test CA restarted, an account deactivated): register
          // a new one, once, and order again. Another process's client learns it at its own failure.
          if (!(error instanceof AcmeAttemptError) || error.failure.type !== 'accountDoesNotExist') throw error;
          forgotten = (await client?.catch(() => undefined))?.getAccountUrl();
          client = undefined;
          return await order(host);
        }
      } catch (error) {
        if (error instanceof AcmeAttemptError && error.failure.kind === 'rate_limited') {
          throw new AcmeAttemptError({ ...error.failure, scope: rateLimitScope(host, error.failure.message) });
        }
        if (error instanceof AcmeAttemptError && error.failure.kind === 'other') {
          const code = await caUnreachable(directoryUrl);
          if (code) throw new AcmeAttemptError({ kind: 'network', message: `cannot reach the CA at ${directoryUrl}: ${code}` });
        }
        throw error;
      }
    },
  };
}
