import { describe, expect, it } from 'vitest';
import { rateLimitScope } from '../../astro-multi-tenant/server/tls/acme-problem.ts';

/** Let's Encrypt's rate-limit details (Boulder), current and older wordings. */
describe('whose rate limit a CA refusal is', () => {
  it('is the host\'s when the CA names the host, a domain it is under, or its exact set of names', () => {
    expect(rateLimitScope('n1.evil.test', 'too many certificates (50) already issued for "evil.test" in the last 168h0m0s, retry after 2026-12-07 00:00:00 UTC: see https://letsencrypt.org/docs/rate-limits/#new-certificates-per-registered-domain')).toBe('host');
    expect(rateLimitScope('shop.test', 'too many certificates (5) already issued for this exact set of identifiers in the last 168h0m0s, retry after 2026-12-07 00:00:00 UTC')).toBe('host');
    expect(rateLimitScope('www.shop.test', 'too many failed authorizations (5) for "www.shop.test" in the last 1h0m0s, retry after 2026-11-30 15:00:00 UTC')).toBe('host');
    expect(rateLimitScope('a.shop.test', 'Error creating new order :: too many certificates already issued for: shop.test: see https://letsencrypt.org/docs/rate-limits/')).toBe('host');
    expect(rateLimitScope('shop.test', 'Error creating new order :: too many certificates already issued for exact set of domains: shop.test')).toBe('host');
  });

  it('is the whole account\'s when the CA names no domain of this host (new orders, registrations) or another one, or says nothing', () => {
    expect(rateLimitScope('shop.test', 'too many new orders (300) recently: see https://letsencrypt.org/docs/rate-limits/#new-orders-per-account')).toBe('account');
    expect(rateLimitScope('shop.test', 'too many certificates (50) already issued for "evil.test" in the last 168h0m0s')).toBe('account');
    expect(rateLimitScope('notevil.test', 'too many certificates (50) already issued for "evil.test"')).toBe('account');
    expect(rateLimitScope('shop.test', undefined)).toBe('account');
  });
});
