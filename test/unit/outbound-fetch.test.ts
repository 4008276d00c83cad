import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createTlsServer, type Server as TlsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createOutboundFetch, parseOutboundAllowList, type Lookup } from '../../astro-multi-tenant/server/http/outbound-fetch.ts';
import { addressProblem } from '../../astro-multi-tenant/server/http/public-address.ts';
import { PlatformError } from '../../astro-multi-tenant/server/errors.ts';

describe('addressProblem', () => {
  it.each(['93.184.215.14', '8.8.8.8', '1.1.1.1', '2606:4700:4700::1111', '2a00:1450:4001:80b::200e', '::ffff:8.8.8.8'])('accepts the public address %s', (address) => {
    expect(addressProblem(address)).toBeUndefined();
  });

  it.each([
    ['127.0.0.1', 'loopback'],
    ['127.8.9.10', 'loopback'],
    ['::1', 'loopback'],
    ['10.0.0.1', 'private'],
    ['172.16.5.4', 'private'],
    ['192.168.1.1', 'private'],
    ['169.254.169.254', 'linkLocal'],
    ['fe80::1', 'linkLocal'],
    ['100.64.0.1', 'carrierGradeNat'],
    ['0.0.0.0', 'unspecified'],
    ['::', 'unspecified'],
    ['224.0.0.1', 'multicast'],
    ['ff02::1', 'multicast'],
    ['255.255.255.255', 'broadcast'],
    ['fd00::1', 'uniqueLocal'],
    ['::ffff:127.0.0.1', 'loopback'],
    ['::ffff:10.1.1.1', 'private'],
    ['64:ff9b::a00:1', 'rfc6052'],
    ['2002:7f00:1::', '6to4'],
    ['2001:db8::1', 'reserved'],
    ['192.0.2.1', 'reserved'],
    ['240.0.0.1', 'reserved'],
  ])('refuses %s (%s)', (address, range) => {
    expect(addressProblem(address)).toBe(`${address} is not a public address (${range})`);
  });

  it('refuses what is not an address at all', () => {
    expect(addressProblem('localhost')).toMatch(/not an IP address/);
  });
});

describe('parseOutboundAllowList', () => {
  it('matches a host on any port, or a host:port on that port only, case-insensitively', () => {
    const allow = parseOutboundAllowList('IdP.Internal, 127.0.0.1:8443,[::1]:9000');
    expect(allow.allows('idp.internal', 443)).toBe(true);
    expect(allow.allows('idp.internal', 8080)).toBe(true);
    expect(allow.allows('127.0.0.1', 8443)).toBe(true);
    expect(allow.allows('127.0.0.1', 8444)).toBe(false);
    expect(allow.allows('[::1]', 9000)).toBe(true);
    expect(allow.allows('other.internal', 443)).toBe(false);
    expect(allow.description).toBe('IdP.Internal,127.0.0.1:8443,[::1]:9000');
  });

  it('allows nothing when empty', () => {
    expect(parseOutboundAllowList('').allows('127.0.0.1', 80)).toBe(false);
    expect(parseOutboundAllowList(undefined).description).toBe('(none)');
  });

  it.each(['https://idp.example', 'idp example', 'a:b:c', 'host:99999', '[::1'])('rejects %j with CONFIG_INVALID naming the variable', (entry) => {
    let error: unknown;
    try {
      parseOutboundAllowList(`ok.example,${entry}`);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(PlatformError);
    expect((error as PlatformError).code).toBe('CONFIG_INVALID');
    expect((error as PlatformError).message).toMatch(new RegExp(`^JWKS_ALLOW_HOSTS: "${entry.replace(/[[\]]/g, '\\$&')}"`));
  });
});

describe('createOutboundFetch', () => {
  let server: Server;
  let origin: string;
  let handler: (req: IncomingMessage, res: ServerResponse) => void = (_req, res) => res.end('{}');

  beforeAll(async () => {
    server = createServer((req, res) => handler(req, res));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  const allowed = (options: { maxBytes?: number; timeoutMs?: number; maxRedirects?: number } = {}) =>
    createOutboundFetch({ allow: parseOutboundAllowList(new URL(origin).host), ...options });

  it('returns status, type and body from an allowlisted host', async () => {
    handler = (_req, res) => res.writeHead(200, { 'Content-Type': 'application/json' }).end('{"keys":[]}');
    const res = await allowed()(`${origin}/jwks.json`);
    expect(res).toMatchObject({ url: `${origin}/jwks.json`, status: 200, contentType: 'application/json' });
    expect(res.body.toString()).toBe('{"keys":[]}');
  });

  it('refuses a body larger than the limit, whether it says so in Content-Length or not', async () => {
    const big = 'x'.repeat(5000);
    handler = (_req, res) => res.writeHead(200, { 'Content-Length': big.length }).end(big);
    await expect(allowed({ maxBytes: 4096 })(`${origin}/declared`)).rejects.toThrow(/5000 bytes, more than 4096/);
    handler = (_req, res) => {
      res.writeHead(200);
      for (let i = 0; i < 5; i++) res.write('y'.repeat(1000));
      res.end();
    };
    await expect(allowed({ maxBytes: 4096 })(`${origin}/chunked`)).rejects.toThrow(/more than 4096 bytes/);
  });

  it('gives up at the deadline when the host never answers', async () => {
    handler = () => {};
    const started = Date.now();
    await expect(allowed({ timeoutMs: 300 })(`${origin}/slow`)).rejects.toThrow(/no complete answer within 300 ms/);
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it('follows at most maxRedirects redirects', async () => {
    handler = (req, res) => res.writeHead(302, { Location: `/hop${Number(req.url!.slice(4)) + 1}` }).end();
    await expect(allowed({ maxRedirects: 2 })(`${origin}/hop0`)).rejects.toThrow(/more than 2 redirects/);
  });

  it('refuses user information in the URL', async () => {
    await expect(allowed()(`http://user:pw@${new URL(origin).host}/x`)).rejects.toThrow(/user information/);
  });

  it('refuses before connecting when a name resolves to no address at all', async () => {
    const lookup: Lookup = async () => [];
    await expect(createOutboundFetch({ allow: parseOutboundAllowList(''), lookup })('https://nothing.example/x')).rejects.toThrow(/has no addresses/);
  });
});

describe('createOutboundFetch over TLS to a name it resolved itself', () => {
  let dir: string;
  let server: TlsServer;
  let port: number;
  const seen: Array<{ host: string | undefined; servername: string | undefined }> = [];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'amt-tls-'));
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'), '-days', '1', '-subj', '/CN=idp.test', '-addext', 'subjectAltName=DNS:idp.test'], { stdio: 'ignore' });
    server = createTlsServer({ key: readFileSync(join(dir, 'key.pem')), cert: readFileSync(join(dir, 'cert.pem')) }, (req, res) => {
      seen.push({ host: req.headers.host, servername: (req.socket as import('node:tls').TLSSocket).servername || undefined });
      res.writeHead(200, { 'Content-Type': 'application/json' }).end('{"keys":[]}');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });

  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    rmSync(dir, { recursive: true, force: true });
  });

  it('connects to the checked address with the name in Host and SNI, resolving it once', async () => {
    let lookups = 0;
    const lookup: Lookup = async (hostname) => {
      lookups++;
      // A rebinding resolver: the first answer is what gets checked and used; a second would differ.
      return lookups === 1 && hostname === 'idp.test' ? [{ address: '127.0.0.1', family: 4 }] : [{ address: '10.9.9.9', family: 4 }];
    };
    const fetch = createOutboundFetch({ allow: parseOutboundAllowList('idp.test'), lookup, ca: readFileSync(join(dir, 'cert.pem')) });
    const res = await fetch(`https://idp.test:${port}/jwks.json`);
    expect(res.status).toBe(200);
    expect(lookups).toBe(1);
    expect(seen.at(-1)).toEqual({ host: `idp.test:${port}`, servername: 'idp.test' });
  });

  it('still checks the certificate against the name', async () => {
    const lookup: Lookup = async () => [{ address: '127.0.0.1', family: 4 }];
    const fetch = createOutboundFetch({ allow: parseOutboundAllowList('other.test'), lookup, ca: readFileSync(join(dir, 'cert.pem')) });
    await expect(fetch(`https://other.test:${port}/jwks.json`)).rejects.toThrow(/other\.test|altnames|certificate/i);
  });

  it('without the allowlist, refuses the same name because it resolves to loopback', async () => {
    const before = seen.length;
    const lookup: Lookup = async () => [{ address: '127.0.0.1', family: 4 }];
    const fetch = createOutboundFetch({ allow: parseOutboundAllowList(''), lookup, ca: readFileSync(join(dir, 'cert.pem')) });
    await expect(fetch(`https://idp.test:${port}/jwks.json`)).rejects.toThrow('idp.test resolves to 127.0.0.1 is not a public address (loopback)');
    expect(seen.length).toBe(before);
  });
});

describe('JWKS_ALLOW_HOSTS in the configuration', () => {
  it('is read and checked at start, naming the variable', async () => {
    const { loadConfig } = await import('../../astro-multi-tenant/server/config.ts');
    expect(loadConfig({ JWKS_ALLOW_HOSTS: 'idp.internal,127.0.0.1:8443' }).jwksAllowHosts.allows('127.0.0.1', 8443)).toBe(true);
    expect(loadConfig({}).jwksAllowHosts.description).toBe('(none)');
    expect(() => loadConfig({ JWKS_ALLOW_HOSTS: 'http://idp.internal' })).toThrow(/^JWKS_ALLOW_HOSTS: "http:\/\/idp.internal" must be a host or host:port/);
  });
});
