import { describe, it, expect } from 'vitest';
import { asPlatformError, ContentError, ERRORS, PlatformError } from '../../astro-multi-tenant/server/errors.ts';
import { BodyError } from '../../astro-multi-tenant/server/session/request-body.ts';
import { SessionStoreUnavailable } from '../../astro-multi-tenant/server/session/store.ts';

describe('the error registry', () => {
  it('gives every code exactly one HTTP status, and only 4xx codes show their message to visitors', () => {
    for (const [code, entry] of Object.entries(ERRORS)) {
      expect(entry.status, code).toBeGreaterThanOrEqual(400);
      expect(entry.status, code).toBeLessThan(600);
      if (entry.answer.kind === 'text') expect(entry.status, code).toBeLessThan(500);
    }
  });

  it.each([
    [new BodyError('BODY_TOO_LARGE', 'body larger than 16384 bytes'), 413],
    [new BodyError('BODY_UNSUPPORTED_TYPE', 'Content-Type must be …', 'text/xml'), 415],
    [new BodyError('BODY_MALFORMED', 'body is not valid JSON'), 400],
    [new SessionStoreUnavailable('get', new Error('ECONNREFUSED')), 503],
    [new ContentError('SITE_CONFIG_INVALID', [{ file: 'sites/a/site.json', field: 'name', reason: 'required' }]), 503],
    [new ContentError('PAGE_INVALID', [{ file: 'sites/a/pages/x.md', field: 'frontmatter.title', reason: 'required' }]), 503],
    [new PlatformError('HOST_DUPLICATE', 'two Host lines', 'a.example'), 400],
    [new PlatformError('PATH_FORBIDDEN', 'dot-segment', '/.git'), 404],
  ])('maps %s to its status through its code', (error, status) => {
    expect(error).toBeInstanceOf(PlatformError);
    expect(error.status).toBe(status);
    expect(asPlatformError(error)).toBe(error);
  });

  it('keeps the offending input and, for content, the file and field', () => {
    const error = new ContentError('SITE_CONFIG_INVALID', [{ file: 'sites/a/site.json', field: 'theme.primary', reason: 'not a colour' }]);
    expect(error.input).toBe('sites/a/site.json');
    expect(error.message).toBe('sites/a/site.json: theme.primary: not a colour');
  });

  it.each([new Error('boom'), new TypeError('x is undefined'), 'a string', undefined, { weird: true }])('turns anything else thrown (%s) into INTERNAL (500), keeping the cause', (thrown) => {
    const error = asPlatformError(thrown);
    expect(error.code).toBe('INTERNAL');
    expect(error.status).toBe(500);
    expect(error.answer.kind).toBe('internal');
    expect(error.cause).toBe(thrown);
  });
});
