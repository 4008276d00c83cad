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
    expect(files['nginx.conf']).toContain(`include /srv/edge/amt-acme.conf;`);
    expect(files['amt-locations-tls.conf']).toContain('Strict-Transport-Security');
    expect(files['amt-locations.conf']).not.toContain('Strict-Transport-Security');
    expect(renderNginxConfig(options(), SITES)['nginx.conf']).not.toContain('ssl');
  });

  it('proxies and caches CSS when there is no shared disk (NGINX_CSS_DIR empty)', () => {
    expect(renderNginxConfig(options({ NGINX_CSS_DIR: '' }), SITES)['amt-locations.conf']).toContain('proxy_cache_valid 200 365d;');
    expect(renderNginxConfig(options(), SITES)['amt-locations.conf']).toContain('alias /app/astro-multi-tenant/site-css/;');
  });

  it('serves ACME HTTP-01 tokens from the site\'s disk, else from the app, never cached and never redirected', () => {
    const locations = renderNginxConfig(options(), SITES)['amt-locations.conf']!;
    const acme = locations.slice(locations.indexOf('location ^~ /.well-known/acme-challenge/'), locations.indexOf('location ^~ /.well-known/ {'));
    expect(acme).toContain('location ~ "^/\\.well-known/acme-challenge/[A-Za-z0-9_-]+$" {');
    expect(acme).toContain('root /srv/sites/$amt_site/public;');
    expect(acme).toContain('try_files $uri @acme_app;');
    expect(acme).toContain('add_header Cache-Control "no-store" always;');
    expect(acme).toContain('proxy_hide_header Cache-Control;');
    expect(acme).not.toMatch(/^\s*proxy_cache\s/m);
    expect(acme).not.toContain('return 301');

    // With TLS, plain HTTP redirects everything but health probes and these same locations.
    const tls = renderNginxConfig(options({ TLS_CERT: '/etc/tls/wild.pem', TLS_KEY: '/etc/tls/wild.key' }), SITES);
    const plain = tls['nginx.conf']!.slice(tls['nginx.conf']!.indexOf('listen 8080'), tls['nginx.conf']!.indexOf('return 301'));
    expect(plain).toContain('include /srv/edge/amt-acme.conf;');
    expect(tls['amt-acme.conf']).toContain('try_files $uri @acme_app;');
    expect(tls['amt-acme.conf']).not.toContain('Strict-Transport-Security');
    expect(tls['amt-locations-tls.conf']).toContain('location ^~ /.well-known/acme-challenge/');
    expect(renderNginxConfig(options(), SITES)['amt-acme.conf']).toBeUndefined();
  });

  it('serves the rest of /.well-known/ from the site\'s disk, and leaves hidden names below it to the app', () => {
    const locations = renderNginxConfig(options(), SITES)['amt-locations.conf']!;
    const wellKnown = locations.slice(locations.indexOf('location ^~ /.well-known/ {'), locations.indexOf('# Files with an extension'));
    expect(wellKnown).toContain('root /srv/sites/$amt_site/public;');
    expect(wellKnown).toContain('disable_symlinks on;');
    expect(wellKnown).toContain('location ~ "^/\\.well-known/(.*/)?\\." { try_files /nonexistent @app; }');
    expect(wellKnown).toContain('try_files $uri @app;');
  });

  it('answers If-Modified-Since per RFC 9110 (a later date is 304 too) and byte ranges on proxied files', () => {
    const locations = renderNginxConfig(options(), SITES)['amt-locations.conf']!;
    expect(locations).toContain('if_modified_since before;');
    const app = locations.slice(locations.indexOf('location @app {'));
    expect(app).toContain('proxy_cache amt_cache;');
    expect(app).toContain('proxy_force_ranges on;');
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
