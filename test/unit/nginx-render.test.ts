import { describe, it, expect } from 'vitest';
import { EDGE_FILES_HEADER, EDGE_FILES_PREFIX, edgeOptionsFromEnv, renderModulesConf, renderNginxConfig } from '../../nginx/render.ts';
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
    // The plain-HTTP server of a TLS setup has no internal location: nothing is offered there.
    expect(tls['amt-acme.conf']).toContain(`proxy_set_header ${EDGE_FILES_HEADER} "";`);
    expect(tls['nginx.conf']).toContain(`proxy_set_header ${EDGE_FILES_HEADER} "";`);
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

  it('adds an HTTP/2 TLS server and turns plain HTTP into a redirect when a certificate is given', () => {
    const files = render({ TLS_CERT: '/etc/tls/wild.pem', TLS_KEY: '/etc/tls/wild.key' });
    expect(block(files['nginx.conf']!, 'stream {')).toMatch(/listen 8443;\s+limit_conn amt_conn_per_ip \d+;\s+proxy_pass unix:\/srv\/edge\/amt-https\.sock;/);
    expect(files['nginx.conf']).toContain('listen unix:/srv/edge/amt-https.sock ssl http2 proxy_protocol default_server;');
    expect(files['nginx.conf']).toContain('return 301 https://$host$request_uri;');
    expect(files['nginx.conf']).toContain(`include /srv/edge/amt-acme.conf;`);
    expect(files['amt-locations-tls.conf']).toContain('Strict-Transport-Security');
    expect(files['amt-locations.conf']).not.toContain('Strict-Transport-Security');
    expect(render()['nginx.conf']).not.toContain('ssl');
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

    // With TLS, plain HTTP redirects everything but health probes and these same locations.
    const tls = render({ TLS_CERT: '/etc/tls/wild.pem', TLS_KEY: '/etc/tls/wild.key' });
    const plain = tls['nginx.conf']!.slice(tls['nginx.conf']!.indexOf('amt-http.sock proxy_protocol'), tls['nginx.conf']!.indexOf('return 301'));
    expect(plain).toContain('include /srv/edge/amt-acme.conf;');
    expect(tls['amt-acme.conf']).toContain('location ^~ /.well-known/acme-challenge/ {');
    expect(tls['amt-acme.conf']).not.toContain('Strict-Transport-Security');
    expect(tls['amt-locations-tls.conf']).toContain('location ^~ /.well-known/acme-challenge/');
    expect(render()['amt-acme.conf']).toBeUndefined();
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
