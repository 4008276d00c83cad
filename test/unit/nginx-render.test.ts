import { describe, it, expect } from 'vitest';
import { CERT_NAME_PATTERN, EDGE_FILES_HEADER, EDGE_FILES_PREFIX, edgeOptionsFromEnv, renderModulesConf, renderNginxConfig } from '../../nginx/render.ts';
import { EDGE_FILES_HEADER as APP_EDGE_FILES_HEADER } from '../../astro-multi-tenant/server/http/accel-redirect.ts';

const options = (env: Record<string, string> = {}) => edgeOptionsFromEnv({ NGINX_OUT: '/srv/edge', SITES_DIR: '/srv/sites', ...env }, '/app');
const render = (env: Record<string, string> = {}) => renderNginxConfig(options(env));
/** The text of the block whose opening line is `start` (ending in its "{"), braces balanced. */
function block(text: string, start: string): string {
  const at = text.indexOf(start);
  expect(at, start).toBeGreaterThanOrEqual(0);
  let depth = 0;
  for (let i = at + start.length - 1; i < text.length; i++) {
    if (text[i] === '{') depth++;
    if (text[i] === '}' && --depth === 0) return text.slice(at, i + 1);
  }
  throw new Error(`unbalanced block ${start}`);
}
/** The http server block listening on the unix socket of `scheme`. */
function serverOn(text: string, scheme: 'http' | 'https'): string {
  const at = text.lastIndexOf('server {', text.indexOf(`listen unix:/srv/edge/amt-${scheme}.sock`));
  return block(text.slice(at), 'server {');
}

describe('the generated nginx config', () => {
  it('keys the HTML cache by scheme, host and URI, so tenants never share entries', () => {
    const locations = render()['amt-locations.conf']!;
    expect(locations).toContain('proxy_cache_key "$scheme://$host$amt_host_port$request_uri";');
    expect(locations).not.toContain('$proxy_host');
  });

  it('bypasses and never stores the cache for visitors with a session cookie', () => {
    const files = render();
    expect(files['nginx.conf']).toContain('"~*(^|;\\s*)(__Host-)?amt_session=" 1;');
    expect(files['amt-locations.conf']).toContain('proxy_cache_bypass $amt_has_session;');
    expect(files['amt-locations.conf']).toContain('proxy_no_cache $amt_has_session;');
  });

  it('stores only what the app marks with X-Accel-Expires, and never serves a stale copy', () => {
    const app = block(render()['amt-locations.conf']!, 'location @app {');
    expect(app).toContain('proxy_ignore_headers Cache-Control Expires;');
    expect(app).toContain('proxy_cache_use_stale off;');
    expect(app).not.toContain('proxy_cache_background_update');
    expect(app).not.toMatch(/proxy_cache_valid/);
  });

  it('never exposes metrics or status', () => {
    const locations = render()['amt-locations.conf']!;
    expect(locations).toContain('location ^~ /_platform/metrics { return 404; }');
    expect(locations).toContain('location ^~ /_platform/status { return 404; }');
    expect(locations).toContain('location ^~ /_platform/tls/ { return 404; }');
  });

  it('passes Host, X-Forwarded-* and the request id to the app over keep-alive upstream connections', () => {
    const files = render({ NGINX_UPSTREAM: 'app:4321' });
    expect(files['nginx.conf']).toMatch(/upstream amt_cluster \{\s+server app:4321 max_fails=0;\s+keepalive 64;/);
    for (const header of ['Host $host', 'X-Forwarded-Host $host$amt_host_port', 'X-Forwarded-Proto $scheme', 'X-Forwarded-For $proxy_add_x_forwarded_for', 'X-Request-Id $amt_request_id']) {
      expect(files['amt-locations.conf']).toContain(`proxy_set_header ${header};`);
    }
  });

  it('sets the X-Accel-Redirect offer on every proxied location (so a visitor can never send it), offering it only where files are served', () => {
    expect(EDGE_FILES_HEADER.toLowerCase()).toBe(APP_EDGE_FILES_HEADER);
    const tls = render({ TLS_CERT: '/etc/tls/wild.pem', TLS_KEY: '/etc/tls/wild.key' });
    for (const [name, text] of Object.entries(tls)) {
      const proxied = text.split(/\n\s*location /).filter((part) => part.includes('proxy_pass http://'));
      for (const location of proxied) expect(location, `${name}: ${location.slice(0, 60)}`).toMatch(new RegExp(`proxy_set_header ${EDGE_FILES_HEADER} "(${EDGE_FILES_PREFIX}|)";`));
    }
    const locations = tls['amt-locations.conf']!;
    expect(block(locations, 'location @app {')).toContain(`proxy_set_header ${EDGE_FILES_HEADER} "${EDGE_FILES_PREFIX}";`);
    expect(block(locations, 'location ~ "\\.[A-Za-z0-9]{1,10}$" {')).toContain(`proxy_set_header ${EDGE_FILES_HEADER} "${EDGE_FILES_PREFIX}";`);
  });

  it('sends files the app names from an internal location: public/ of a valid site id only, no dot-names, no symlinks below the site folder', () => {
    const files = block(render()['amt-locations.conf']!, `location ^~ ${EDGE_FILES_PREFIX} {`);
    expect(files).toMatch(/^\s*internal;/m);
    expect(files).toContain('location ~ "/\\." {');
    expect(files).toContain('(?<amt_file_path>public/.+)$"');
    expect(files).toContain('alias /srv/sites/$amt_file_site/$amt_file_path;');
    expect(files).toContain('disable_symlinks on from=/srv/sites/$amt_file_site;');
    // Files never go through the proxy cache (and its lock).
    const fileLocation = block(render()['amt-locations.conf']!, 'location ~ "\\.[A-Za-z0-9]{1,10}$" {');
    expect(fileLocation).not.toContain('proxy_cache');
    expect(fileLocation).not.toContain('root ');
  });

  it('counts each client’s TCP connections in a stream front, and bounds header, body and send times', () => {
    const main = render({ NGINX_CONN_PER_IP: '32', NGINX_CLIENT_TIMEOUT_S: '7', NGINX_WORKER_CONNECTIONS: '4096' })['nginx.conf']!;
    const stream = block(main, 'stream {');
    expect(stream).toContain('limit_conn_zone $binary_remote_addr zone=amt_conn_per_ip:10m;');
    expect(stream).toMatch(/listen 8080;\s+limit_conn amt_conn_per_ip 32;\s+proxy_pass unix:\/srv\/edge\/amt-http\.sock;\s+proxy_protocol on;/);
    const http = block(main, 'http {');
    expect(http).toContain('listen unix:/srv/edge/amt-http.sock proxy_protocol default_server;');
    expect(http).toContain('real_ip_header proxy_protocol;');
    expect(http).toContain('limit_conn amt_requests_per_ip 32;');
    for (const line of ['client_header_timeout 7s;', 'client_body_timeout 7s;', 'send_timeout 21s;', 'reset_timedout_connection on;']) expect(http).toContain(line);
    expect(main).toContain('worker_connections 4096;');
    expect(main).toContain('worker_rlimit_nofile 8192;');
    expect(main).toContain(`include /srv/edge/amt-modules.conf;`);
  });

  it('refuses a worker_connections budget that cannot hold 8 clients at their limit, naming both variables', () => {
    expect(() => options({ NGINX_CONN_PER_IP: '64', NGINX_WORKER_CONNECTIONS: '2047' })).toThrow(/NGINX_WORKER_CONNECTIONS.*NGINX_CONN_PER_IP=64.*2048/);
    expect(options({ NGINX_CONN_PER_IP: '64', NGINX_WORKER_CONNECTIONS: '2048' }).workerConnections).toBe(2048);
    for (const [name, value] of [['NGINX_CONN_PER_IP', '0'], ['NGINX_CLIENT_TIMEOUT_S', 'soon'], ['NGINX_WORKERS', '0'], ['NGINX_WORKER_CONNECTIONS', '1.5']]) {
      expect(() => options({ [name!]: value! }), name).toThrow(new RegExp(name!));
    }
  });

  it('refuses an output folder whose unix socket path would be too long', () => {
    expect(() => render({ NGINX_OUT: `/${'x'.repeat(100)}` })).toThrow(/NGINX_OUT/);
  });

  it('loads the modules it is given, one load_module line each', () => {
    expect(renderModulesConf(['/usr/lib/nginx/modules/ngx_stream_module.so'])).toContain('load_module /usr/lib/nginx/modules/ngx_stream_module.so;');
    expect(renderModulesConf([])).not.toContain('load_module');
  });

  it('adds an HTTP/2 TLS server with the wildcard certificate, and redirects only platform names to it when no certificate folder is given', () => {
    const files = render({ TLS_CERT: '/etc/tls/wild.pem', TLS_KEY: '/etc/tls/wild.key', PLATFORM_DOMAIN: 'example.com' });
    expect(block(files['nginx.conf']!, 'stream {')).toMatch(/listen 8443;\s+limit_conn amt_conn_per_ip \d+;\s+proxy_pass unix:\/srv\/edge\/amt-https\.sock;/);
    const https = serverOn(files['nginx.conf']!, 'https');
    expect(https).toContain('listen unix:/srv/edge/amt-https.sock ssl http2 proxy_protocol default_server;');
    expect(https).toContain('ssl_certificate /etc/tls/wild.pem;');
    // Plain HTTP redirects a host only when its certificate file exists: the wildcard for platform names only.
    const redirectMap = block(files['nginx.conf']!, 'map $host $amt_host_crt {');
    expect(redirectMap).toContain('"~^(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\\.)?example\\.com$" /etc/tls/wild.pem;');
    expect(redirectMap).toContain('default /srv/edge/no-certificate;');
    expect(files['nginx.conf']).toContain('return 308 https://$host:8443$request_uri;');
    expect(files['amt-locations-tls.conf']).toContain('add_header Strict-Transport-Security $amt_hsts always;');
    expect(files['amt-locations.conf']).not.toContain('Strict-Transport-Security');
    expect(render()['nginx.conf']).not.toContain('ssl');
  });

  it('serves each name its own certificate from the certificate folder, read per handshake, with the default for no SNI or a malformed name', () => {
    const files = render({ CERTS_DIR: '/var/lib/amt/certs', PLATFORM_DOMAIN: 'example.com' });
    const main = files['nginx.conf']!;
    const https = serverOn(main, 'https');
    expect(https).toContain('ssl_certificate $amt_sni_crt;');
    expect(https).toContain('ssl_certificate_key $amt_sni_key;');
    const crt = block(main, 'map $ssl_server_name $amt_sni_crt {');
    expect(crt).toContain('default /srv/edge/default-certificate.pem;');
    expect(crt).toContain('"~^(?<amt_sni_crt_name>[a-z0-9](?:[a-z0-9.-]{0,251}[a-z0-9])?)$" /var/lib/amt/certs/$amt_sni_crt_name.crt;');
    // No wildcard given: platform names are looked up by name like any other.
    expect(crt).not.toContain('example\\.com');
    expect(block(main, 'map $ssl_server_name $amt_sni_key {')).toContain('/var/lib/amt/certs/$amt_sni_key_name.key;');
    // The wildcard, when given too, wins for platform names; the checks are in order, so it comes first.
    const both = block(render({ CERTS_DIR: '/var/lib/amt/certs', TLS_CERT: '/w.pem', TLS_KEY: '/w.key', PLATFORM_DOMAIN: 'example.com' })['nginx.conf']!, 'map $ssl_server_name $amt_sni_crt {');
    expect(both.indexOf('/w.pem')).toBeGreaterThan(0);
    expect(both.indexOf('/w.pem')).toBeLessThan(both.indexOf('$amt_sni_crt_name.crt'));
    // An operator's own default certificate, and NGINX_CERTS_DIR for nginx's view of the folder.
    const own = render({ CERTS_DIR: '/app/certs', NGINX_CERTS_DIR: '/srv/certs', NGINX_DEFAULT_CERT: '/d.pem', NGINX_DEFAULT_KEY: '/d.key' })['nginx.conf']!;
    expect(block(own, 'map $ssl_server_name $amt_sni_crt {')).toContain('default /d.pem;');
    expect(own).toContain('/srv/certs/$amt_sni_crt_name.crt;');
    expect(own).not.toContain('/app/certs');
    expect(() => options({ NGINX_DEFAULT_CERT: '/d.pem' })).toThrow(/NGINX_DEFAULT_CERT and NGINX_DEFAULT_KEY/);
  });

  it('never turns an SNI or Host with a slash, a leading dot, upper case or an underscore into a certificate path', () => {
    const pattern = new RegExp(`^${CERT_NAME_PATTERN}$`);
    for (const name of ['shop.test', 'a.b-c.example', 'xn--bcher-kva.example', 'localhost']) expect(pattern.test(name), name).toBe(true);
    for (const name of ['../../etc/ssl/private/key', 'a/b', '.hidden', '_default', 'Shop.Test', 'shop.test.', 'shop.test:443', '', 'a\u0000b', `${'a'.repeat(254)}`]) expect(pattern.test(name), name).toBe(false);
  });

  it('redirects plain HTTP to HTTPS with 308 only where the host\'s certificate file exists, never ACME challenges or health probes', () => {
    const main = render({ CERTS_DIR: '/certs', NGINX_TLS_LISTEN: '443' })['nginx.conf']!;
    const plain = serverOn(main, 'http');
    expect(plain).toMatch(/if \(-f \$amt_https_probe\) \{\s+return 308 https:\/\/\$host\$request_uri;\s+\}/);
    expect(plain).toContain('include /srv/edge/amt-locations.conf;');
    expect(block(main, 'map $host $amt_host_crt {')).toContain('"~^(?<amt_host_crt_name>[a-z0-9](?:[a-z0-9.-]{0,251}[a-z0-9])?)$" /certs/$amt_host_crt_name.crt;');
    const probe = block(main, 'map $uri $amt_https_probe {');
    expect(probe).toContain('default $amt_host_crt;');
    expect(probe).toContain('"~^/\\.well-known/acme-challenge/" /srv/edge/no-certificate;');
    expect(probe).toContain('/_platform/healthz /srv/edge/no-certificate;');
    // The port browsers use, when it is not the one nginx listens on (a container's port mapping).
    expect(render({ CERTS_DIR: '/certs', NGINX_TLS_LISTEN: '443', NGINX_TLS_PUBLIC_PORT: '8443' })['nginx.conf']).toContain('return 308 https://$host:8443$request_uri;');
    expect(() => options({ NGINX_TLS_PUBLIC_PORT: 'https' })).toThrow(/NGINX_TLS_PUBLIC_PORT/);
  });

  it('sends HSTS with includeSubDomains on platform names only, never on a tenant\'s domain', () => {
    const hsts = block(render({ CERTS_DIR: '/certs', PLATFORM_DOMAIN: 'example.com' })['nginx.conf']!, 'map $host $amt_hsts {');
    expect(hsts).toContain('default "max-age=31536000";');
    expect(hsts).toContain('"~^(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\\.)?example\\.com$" "max-age=31536000; includeSubDomains";');
  });

  it('proxies and caches CSS when there is no shared disk (NGINX_CSS_DIR empty)', () => {
    expect(render({ NGINX_CSS_DIR: '' })['amt-locations.conf']).toContain('proxy_cache_valid 200 365d;');
    expect(render()['amt-locations.conf']).toContain('alias /app/astro-multi-tenant/site-css/;');
  });

  it('answers ACME HTTP-01 tokens through the app, never cached and never redirected', () => {
    const locations = render()['amt-locations.conf']!;
    const acme = block(locations, 'location ^~ /.well-known/acme-challenge/ {');
    expect(acme).toContain('proxy_pass http://amt_cluster;');
    expect(acme).toContain('add_header Cache-Control "no-store" always;');
    expect(acme).toContain('proxy_hide_header Cache-Control;');
    expect(acme).not.toMatch(/^\s*proxy_cache\s/m);
    expect(acme).not.toContain('return 301');

    // With TLS, the plain-HTTP server has this same location, and its redirect skips the path.
    const tls = render({ TLS_CERT: '/etc/tls/wild.pem', TLS_KEY: '/etc/tls/wild.key' });
    expect(tls['amt-locations-tls.conf']).toContain('location ^~ /.well-known/acme-challenge/');
    expect(block(tls['nginx.conf']!, 'map $uri $amt_https_probe {')).toContain('"~^/\\.well-known/acme-challenge/"');
    expect(tls['amt-acme.conf']).toBeUndefined();
  });

  it('depends on no site folder: nothing in it names a site or a domain', () => {
    const files = render();
    expect(Object.keys(files).sort()).toEqual(['amt-locations.conf', 'nginx.conf']);
    const all = Object.values(files).join('\n');
    for (const name of ['acme.example', '/acme/', 'docs.example', 'map $host']) expect(all).not.toContain(name);
  });

  it('answers If-Modified-Since per RFC 9110 (a later date is 304 too) and byte ranges on proxied files', () => {
    const locations = render()['amt-locations.conf']!;
    expect(locations).toContain('if_modified_since before;');
    const app = block(locations, 'location @app {');
    expect(app).toContain('proxy_cache amt_cache;');
    expect(app).toContain('proxy_force_ranges on;');
  });

  it('rejects a malformed rate or burst, naming the variable', () => {
    expect(() => options({ NGINX_RATE: 'fast' })).toThrow(/NGINX_RATE/);
    expect(() => options({ NGINX_BURST: '-1' })).toThrow(/NGINX_BURST/);
  });
});
