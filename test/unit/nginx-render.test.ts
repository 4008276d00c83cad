import { describe, it, expect } from 'vitest';
import { edgeOptionsFromEnv, renderNginxConfig, renderSitesMap } from '../../nginx/render.ts';

const options = (env: Record<string, string> = {}) => edgeOptionsFromEnv({ NGINX_OUT: '/srv/edge', SITES_DIR: '/srv/sites', ...env }, '/app');
const SITES = [
  { id: 'docs', domains: ['docs.example'] },
  { id: 'acme', domains: ['acme.example', 'acme.test'] },
];

describe('the generated nginx config', () => {
  it('keys the HTML cache by scheme, host and URI, so tenants never share entries', () => {
    const locations = renderNginxConfig(options(), SITES)['amt-locations.conf']!;
    expect(locations).toContain('proxy_cache_key "$scheme://$host$request_uri";');
    expect(locations).not.toContain('$proxy_host');
  });

  it('bypasses and never stores the cache for visitors with a session cookie', () => {
    const files = renderNginxConfig(options(), SITES);
    expect(files['nginx.conf']).toContain('"~*(^|;\\s*)(__Host-)?amt_session=" 1;');
    expect(files['amt-locations.conf']).toContain('proxy_cache_bypass $amt_has_session;');
    expect(files['amt-locations.conf']).toContain('proxy_no_cache $amt_has_session;');
  });

  it('never exposes metrics or status', () => {
    const locations = renderNginxConfig(options(), SITES)['amt-locations.conf']!;
    expect(locations).toContain('location ^~ /_platform/metrics { return 404; }');
    expect(locations).toContain('location ^~ /_platform/status { return 404; }');
  });

  it('passes Host, X-Forwarded-* and the request id to the app over keep-alive upstream connections', () => {
    const files = renderNginxConfig(options({ NGINX_UPSTREAM: 'app:4321' }), SITES);
    expect(files['nginx.conf']).toMatch(/upstream amt_cluster \{\s+server app:4321 max_fails=0;\s+keepalive 64;/);
    for (const header of ['Host $host', 'X-Forwarded-Host $host', 'X-Forwarded-Proto $scheme', 'X-Forwarded-For $proxy_add_x_forwarded_for', 'X-Request-Id $amt_request_id']) {
      expect(files['amt-locations.conf']).toContain(`proxy_set_header ${header};`);
    }
  });

  it('adds an HTTP/2 TLS server and turns plain HTTP into a redirect when a certificate is given', () => {
    const files = renderNginxConfig(options({ TLS_CERT: '/etc/tls/wild.pem', TLS_KEY: '/etc/tls/wild.key' }), SITES);
    expect(files['nginx.conf']).toContain('listen 8443 ssl http2 default_server;');
    expect(files['nginx.conf']).toContain('return 301 https://$host$request_uri;');
    expect(files['nginx.conf']).toContain('location ^~ /.well-known/acme-challenge/');
    expect(files['amt-locations-tls.conf']).toContain('Strict-Transport-Security');
    expect(files['amt-locations.conf']).not.toContain('Strict-Transport-Security');
    expect(renderNginxConfig(options(), SITES)['nginx.conf']).not.toContain('ssl');
  });

  it('proxies and caches CSS when there is no shared disk (NGINX_CSS_DIR empty)', () => {
    expect(renderNginxConfig(options({ NGINX_CSS_DIR: '' }), SITES)['amt-locations.conf']).toContain('proxy_cache_valid 200 365d;');
    expect(renderNginxConfig(options(), SITES)['amt-locations.conf']).toContain('alias /app/astro-multi-tenant/site-css/;');
  });

  it('rejects a malformed rate or burst, naming the variable', () => {
    expect(() => options({ NGINX_RATE: 'fast' })).toThrow(/NGINX_RATE/);
    expect(() => options({ NGINX_BURST: '-1' })).toThrow(/NGINX_BURST/);
  });
});

describe('the host → site map', () => {
  it('lists every domain of every site, sorted by site, plus the platform wildcard (quoted regex)', () => {
    const map = renderSitesMap(SITES, 'sites.example.com');
    expect(map.indexOf('acme.example acme;')).toBeLessThan(map.indexOf('docs.example docs;'));
    expect(map).toContain('acme.test acme;');
    expect(map).toContain('default "-";');
    expect(map).toContain('"~^(?<amt_wildcard>[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)\\.sites\\.example\\.com$" $amt_wildcard;');
  });
});

describe('the map hash size', () => {
  it('grows with the number of domains so nginx never warns about the sites map', async () => {
    const { mapHashSize } = await import('../../nginx/render.ts');
    expect(mapHashSize(SITES)).toBe(2048);
    const many = Array.from({ length: 10_000 }, (_, i) => ({ id: `s${i}`, domains: [`s${i}.example`] }));
    expect(mapHashSize(many)).toBe(32768);
    expect(renderNginxConfig(options(), many)['nginx.conf']).toContain('map_hash_max_size 32768;');
  });
});
