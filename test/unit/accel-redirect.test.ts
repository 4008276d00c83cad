import { describe, expect, it } from 'vitest';
import type { IncomingMessage } from 'node:http';
import { accelRedirectUri, edgeFilesPrefix } from '../../astro-multi-tenant/server/http/accel-redirect.ts';
import { parseTrustedProxies } from '../../astro-multi-tenant/server/tenant/trusted-proxies.ts';

const trusted = parseTrustedProxies('127.0.0.1,10.0.0.0/8');
const req = (remoteAddress: string, offer?: string) => ({ headers: offer === undefined ? {} : { 'x-amt-edge-files': offer }, socket: { remoteAddress } }) as unknown as IncomingMessage;

describe('the X-Accel-Redirect offer', () => {
  it('is taken from a trusted peer only, by the socket address', () => {
    expect(edgeFilesPrefix(req('127.0.0.1', '/_amt_files/'), trusted)).toBe('/_amt_files/');
    expect(edgeFilesPrefix(req('::ffff:10.1.2.3', '/_amt_files/'), trusted)).toBe('/_amt_files/');
    for (const peer of ['127.0.0.2', '192.168.1.1', '::1']) expect(edgeFilesPrefix(req(peer, '/_amt_files/'), trusted), peer).toBeUndefined();
    expect(edgeFilesPrefix(req('127.0.0.1'), trusted)).toBeUndefined();
    expect(edgeFilesPrefix(req('127.0.0.1', '/_amt_files/'), parseTrustedProxies(''))).toBeUndefined();
  });

  it.each(['', '/', '_amt_files/', '/_amt_files', '/../etc/', '/a//b/', '/a b/', '/a/./', 'http://x/', '/_amt_files/?x=1/'])('refuses the malformed prefix %j', (offer) => {
    expect(edgeFilesPrefix(req('127.0.0.1', offer), trusted)).toBeUndefined();
  });
});

describe('the X-Accel-Redirect URI', () => {
  it('percent-encodes every name once, so nginx decodes it back to the file', () => {
    expect(accelRedirectUri('/_amt_files/', 'acme', ['public', 'logo.svg'])).toBe('/_amt_files/acme/public/logo.svg');
    expect(accelRedirectUri('/_amt_files/', 'acme', ['public', 'a b', '100% a?b#c é.txt'])).toBe('/_amt_files/acme/public/a%20b/100%25%20a%3Fb%23c%20%C3%A9.txt');
  });

  it.each([[['public', '..', 'site.json']], [['public', '.', 'x']], [['public', '', 'x']], [['public', 'a/b']], [['public', 'a\0b']]])('names nothing for %j (the file is then sent by the app)', (segments) => {
    expect(accelRedirectUri('/_amt_files/', 'acme', segments)).toBeUndefined();
  });
});
