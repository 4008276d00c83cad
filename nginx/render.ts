import { isAbsolute, join, resolve } from 'node:path';

/**
 * Renders the nginx configuration for the edge in front of the cluster. Pure: the same options
 * always give the same files, so tests run `nginx -t` on exactly what ships
 * (test/integration/edge*.test.ts start a real nginx from it; deploy-files.test.ts checks the
 * compose rendering). There is no committed example to keep in step.
 *
 * Nothing in it depends on the site folders: which host is which site, and whether a page or a
 * `public/` file may be served, is decided by the app on every request (docs/edge.md, "Who
 * decides"), so adding, moving or withdrawing a site never needs a new configuration.
 */
export interface EdgeOptions {
  /** Where nginx.conf and its includes are written; temp and cache dirs live below it by default. */
  outDir: string;
  /** host:port of the PM2 cluster (or a Kubernetes Service). */
  upstream: string;
  /** host:port or port for plain HTTP. */
  listen: string;
  /** host:port or port for TLS + HTTP/2, used only when TLS is on (a certificate or a certificate folder is given). */
  tlsListen: string;
  /** The port browsers reach the HTTPS server on, for redirects: ":8443", or "" for 443. */
  tlsPublicPort: string;
  /** The wildcard certificate for `*.platformDomain` (and the bare domain), if any. */
  tlsCertificate: string | undefined;
  tlsCertificateKey: string | undefined;
  /**
   * Certificates by name, as nginx sees the folder: `<host>.crt` and `<host>.key` (written by the
   * app from the shared store, server/tls/). Read on every handshake, so a new or renewed
   * certificate is served without a reload. Undefined = no per-name certificates.
   */
  certsDir: string | undefined;
  /** The certificate for handshakes without a usable name (no SNI, an IP, a malformed name). */
  defaultCertificate: string;
  defaultCertificateKey: string;
  /** Site folders as nginx sees them: the files the app names are sent from here. */
  sitesDir: string;
  /** Built stylesheets; undefined = proxy /_platform/css/ to the app and cache it. */
  cssDir: string | undefined;
  cacheDir: string;
  platformDomain: string;
  /** limit_req rate per client IP, e.g. "20r/s", and its burst. */
  rate: string;
  burst: number;
  /** Open TCP connections one client address may have at once (and requests in flight, for HTTP/2). */
  connectionsPerClient: number;
  /** Seconds a client may take to send a request header, or between two reads of its body; sends get 3×. */
  clientTimeoutSeconds: number;
  /** worker_connections of each worker; checked against connectionsPerClient (connectionBudget). */
  workerConnections: number;
  /** worker_processes: a number, or "auto" (one per core). */
  workerProcesses: string;
  /** Worker user; unset = nginx's default (only matters when the master runs as root). */
  user: string | undefined;
  /** Load and enable brotli when the module is installed. */
  brotliModules: string[];
  /** Where mime.types is. */
  mimeTypes: string;
  /** Log destinations: a path (/dev/stderr and /dev/stdout work), or "off" for the access log. */
  accessLog: string;
  errorLog: string;
}

export const SESSION_COOKIE_PATTERN = '(^|;\\s*)(__Host-)?amt_session=';

/**
 * The internal location the app names in `X-Accel-Redirect` (`<prefix><site id>/public/<path>`).
 * nginx offers it to the app in the EDGE_FILES_HEADER request header; the app reads both from
 * server/http/accel-redirect.ts, which must agree on the header name.
 */
export const EDGE_FILES_PREFIX = '/_amt_files/';
export const EDGE_FILES_HEADER = 'X-Amt-Edge-Files';

/** Site ids as the app accepts them (tenant/resolve-host.ts SITE_ID_PATTERN), for the internal location. */
const SITE_ID = '[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?';

/**
 * Connections one client at its limit can hold in one worker: each TCP connection is three nginx
 * connections (the client's, the stream proxy's to the HTTP server's unix socket, and the HTTP
 * server's accepted end) plus one to the app while a request is in flight.
 */
export function connectionsPerClientAtLimit(connectionsPerClient: number): number {
  return 4 * connectionsPerClient;
}

/** How many clients at their limit one worker must hold at once before the config is accepted. */
export const CLIENTS_AT_LIMIT_PER_WORKER = 8;

/** Unix socket paths are limited to 107 bytes (sockaddr_un.sun_path on Linux). */
const MAX_SOCKET_PATH = 107;

/** The unix socket between the stream front (per-client limits) and the HTTP server of `scheme`. */
export function innerSocket(outDir: string, scheme: 'http' | 'https'): string {
  return join(outDir, `amt-${scheme}.sock`);
}

/**
 * Headers every proxied request carries. The app learns the visitor's host, scheme and address
 * from the X-Forwarded-* set here (it trusts them from TRUSTED_PROXIES only), and whether it may
 * answer a public file with X-Accel-Redirect: `files` offers the internal location; otherwise the
 * header is sent empty, which nginx drops, so a visitor can never send it through nginx either.
 */
function proxyHeaders(files: boolean, indent = '        '): string {
  return [
    'proxy_http_version 1.1;',
    'proxy_set_header Connection "";',
    'proxy_set_header Host $host;',
    'proxy_set_header X-Forwarded-Host $host$amt_host_port;',
    'proxy_set_header X-Forwarded-Proto $scheme;',
    'proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;',
    'proxy_set_header X-Request-Id $amt_request_id;',
    `proxy_set_header ${EDGE_FILES_HEADER} "${files ? EDGE_FILES_PREFIX : ''}";`,
  ]
    .map((line) => indent + line)
    .join('\n');
}

function securityHeaders(tls: boolean, indent = '        '): string {
  const lines = [
    'add_header X-Content-Type-Options "nosniff" always;',
    'add_header X-Frame-Options "SAMEORIGIN" always;',
    'add_header Referrer-Policy "strict-origin-when-cross-origin" always;',
    'add_header Permissions-Policy "camera=(), microphone=(), geolocation=()" always;',
    // $amt_hsts (renderTlsMaps): includeSubDomains on the platform's own names only.
    ...(tls ? ['add_header Strict-Transport-Security $amt_hsts always;'] : []),
  ];
  return lines.map((line) => indent + line).join('\n');
}

/**
 * ACME HTTP-01 (RFC 8555 §8.3): `/.well-known/acme-challenge/<token>` from the app, which answers
 * its own ACME client's tokens from the shared store, else the site's
 * `public/.well-known/acme-challenge/` for whichever site owns the host now. Never
 * cached (a remembered 404 or an old token fails the challenge) and never redirected: the
 * plain-HTTP server's redirect to HTTPS skips this path (renderTlsMaps, $amt_https_probe).
 */
function renderAcmeLocations(o: EdgeOptions, tls: boolean): string {
  return `    # ACME HTTP-01 tokens: never cached, never redirected.
    location ^~ /.well-known/acme-challenge/ {
${proxyHeaders(false)}
        proxy_pass http://amt_cluster;
        # No proxy_cache here, and the app's caching words replaced: tokens are short-lived.
        proxy_hide_header Cache-Control;
        add_header Cache-Control "no-store" always;
${securityHeaders(tls)}
    }
`;
}

/**
 * The internal location that sends a site's file from disk once the app has named it. The app
 * decides whether and which file (tenant, site.json, containment); nginx only opens it, and on its
 * own refuses what the app never names: anything outside `<site>/public/`, any dot-name, and any
 * symlink below the site folder (`disable_symlinks … from=` the site folder, which itself may be a
 * link: checked component by component with O_NOFOLLOW, so a link swapped in after the app's check
 * is refused, not followed). `internal`: a visitor who types this path gets a 404.
 */
function renderFilesLocation(o: EdgeOptions, tls: boolean): string {
  const sites = o.sitesDir.replace(/\/+$/, '');
  return `    # Site files the app has authorised (X-Accel-Redirect: ${EDGE_FILES_PREFIX}<site>/public/<path>),
    # sent from disk by nginx. Ranges, If-Range, HEAD and the validators are nginx's static module's;
    # Content-Type and Cache-Control are the app's (nginx keeps them from the redirecting answer).
    location ^~ ${EDGE_FILES_PREFIX} {
        internal;
        root /nonexistent;
        location ~ "/\\." {
            internal;
            return 404;
        }
        location ~ "^${EDGE_FILES_PREFIX}(?<amt_file_site>${SITE_ID})/(?<amt_file_path>public/.+)$" {
            internal;
            alias ${sites}/$amt_file_site/$amt_file_path;
            disable_symlinks on from=${sites}/$amt_file_site;
            error_page 403 = @amt_file_refused;
            add_header X-Served-By "nginx-static" always;
${securityHeaders(tls, '            ')}
        }
    }

    location @amt_file_refused {
        return 404;
    }
`;
}

function renderLocations(o: EdgeOptions, tls: boolean): string {
  const security = securityHeaders(tls);
  const css = o.cssDir
    ? `    # Built stylesheets: content-hashed names, so cached for a year and never revalidated.
    location ^~ /_platform/css/ {
        alias ${o.cssDir.endsWith('/') ? o.cssDir : `${o.cssDir}/`};
        disable_symlinks on;
        add_header Cache-Control "public, max-age=31536000, immutable" always;
        add_header X-Served-By "nginx-static" always;
${security}
        try_files $uri =404;
    }`
    : `    # Built stylesheets from the app (no shared disk here), cached for a year: names are hashed.
    location ^~ /_platform/css/ {
${proxyHeaders(false)}
        proxy_pass http://amt_cluster;
        proxy_cache amt_cache;
        proxy_cache_key "$scheme://$host$amt_host_port$request_uri";
        proxy_cache_valid 200 365d;
        add_header X-Cache-Status $upstream_cache_status always;
${security}
    }`;
  // Files go to the app without the proxy cache: the app answers them with X-Accel-Redirect,
  // which nginx never stores, and proxy_cache_lock would make concurrent requests for one file
  // wait for each other (in 500 ms steps) for nothing.
  const fileProxy = `${proxyHeaders(true)}
        proxy_pass http://amt_cluster;
        proxy_next_upstream error timeout;
        proxy_next_upstream_tries 2;
        # A file the app sends itself (no shared disk, or a name nginx cannot be given) still
        # gets byte ranges: nginx cuts them from the whole file the app sends.
        proxy_force_ranges on;
${security}`;
  return `# Generated by nginx/render.ts: the locations shared by the HTTP and HTTPS servers.

    # RFC 9110 §13.1.3: a file not modified since the date the visitor has is 304, also when that
    # date is later than the file's (nginx's default, "exact", would send it all again).
    if_modified_since before;

    # Operators only: metrics, status and the TLS ask are answered by the app to ADMIN_ALLOW /
    # ADMIN_TOKEN, and the edge does not expose them at all.
    location ^~ /_platform/metrics { return 404; }
    location ^~ /_platform/status { return 404; }
    location ^~ /_platform/tls/ { return 404; }

    location = /_platform/healthz {
${proxyHeaders(false)}
        proxy_pass http://amt_cluster;
        access_log off;
    }

${css}

    # Sign-in and session endpoints: never cached, small bodies only.
    location ^~ /_platform/session/ {
        limit_req zone=amt_per_ip burst=${Math.max(1, Math.ceil(o.burst / 4))} nodelay;
${proxyHeaders(false)}
        proxy_pass http://amt_cluster;
        proxy_no_cache 1;
        proxy_cache_bypass 1;
${security}
    }

${renderAcmeLocations(o, tls)}
    # RFC 8615 /.well-known/ (security.txt, …): the app serves the site's public/.well-known/.
    location ^~ /.well-known/ {
        limit_req zone=amt_per_ip burst=${o.burst} nodelay;
${fileProxy}
    }

    # Files with an extension: the app decides (which site the host is now, whether its
    # site.json is valid, whether the file exists inside its public/ folder) and answers with
    # X-Accel-Redirect; nginx then sends the file from disk (the internal location below).
    location ~ "\\.[A-Za-z0-9]{1,10}$" {
        limit_req zone=amt_per_ip burst=${o.burst} nodelay;
${fileProxy}
    }

    # Generated per site and micro-cached like pages, although they have an extension.
    location = /robots.txt {
        limit_req zone=amt_per_ip burst=${o.burst} nodelay;
        try_files /nonexistent @app;
    }
    location = /sitemap.xml {
        limit_req zone=amt_per_ip burst=${o.burst} nodelay;
        try_files /nonexistent @app;
    }

    location / {
        limit_req zone=amt_per_ip burst=${o.burst} nodelay;
        try_files /nonexistent @app;
    }

    location @app {
${proxyHeaders(true)}
        proxy_pass http://amt_cluster;
        # Idempotent requests move to another worker if one is gone mid-reload; POST never does.
        proxy_next_upstream error timeout;
        proxy_next_upstream_tries 2;

        # Micro-cache for anonymous pages. The key has the tenant's host, or two tenants would share
        # entries. A session cookie bypasses the cache both ways, and nginx never stores a response
        # that sets a cookie.
        proxy_cache amt_cache;
        proxy_cache_key "$scheme://$host$amt_host_port$request_uri";
        proxy_cache_bypass $amt_has_session;
        proxy_no_cache $amt_has_session;
        # Only the app's explicit word stores anything: X-Accel-Expires, which it sends on
        # anonymous pages, sitemaps and public redirects (EDGE_CACHE_S). Cache-Control is for
        # browsers; honouring it here kept app-served files for their max-age after deletion.
        proxy_ignore_headers Cache-Control Expires;
        # Never a stale copy: with "updating" or an error list, an entry whose refresh came back
        # 303/404/503 (not storable) was served STALE again and again, so withdrawn content stayed
        # for minutes. An expired entry is fetched anew, one request per key at a time; the rest wait.
        proxy_cache_use_stale off;
        proxy_cache_lock on;
        # Byte ranges (a site's public files when the app sends them itself; Safari plays no video
        # without them). With proxy_cache on, nginx asks the app for the whole response (it drops
        # Range and If-Range upstream), so the cache only ever stores whole responses under a URL's
        # key, and nginx cuts the range itself. By default it cuts only responses it may store;
        # forcing ranges covers uncacheable ones too. nginx only cuts a 200 of known length:
        # chunked pages stay whole.
        proxy_force_ranges on;
        add_header X-Cache-Status $upstream_cache_status always;
${security}
    }

${renderFilesLocation(o, tls)}`;
}

/**
 * The stream front: every client TCP connection is counted per address at accept, before a byte
 * of HTTP is read, and passed on (with the PROXY protocol, so the HTTP server learns the address)
 * to the HTTP server's unix socket. The http module's limit_conn counts only requests whose
 * header has arrived, so it cannot see half-sent requests; this can. Over the limit, nginx closes
 * the new connection at once.
 */
function renderStream(o: EdgeOptions, tls: boolean): string {
  const server = (listen: string, scheme: 'http' | 'https') => `    server {
        listen ${listen};
        limit_conn amt_conn_per_ip ${o.connectionsPerClient};
        proxy_pass unix:${innerSocket(o.outDir, scheme)};
        proxy_protocol on;
        proxy_connect_timeout 5s;
        # Idle longer than the HTTP server's keep-alive and the app's answer time: the HTTP server
        # closes first, and its timeouts are the ones that bound a client.
        proxy_timeout 75s;
    }`;
  return `
# Per-client connection limit, counted at accept (see the http block for the request limits).
stream {
    limit_conn_zone $binary_remote_addr zone=amt_conn_per_ip:10m;
    limit_conn_log_level warn;

${server(o.listen, 'http')}
${tls ? `${server(o.tlsListen, 'https')}\n` : ''}}
`;
}

/**
 * A host name as a file name in the certificate folder: lower-case letters, digits, dots and
 * hyphens, starting and ending with a letter or digit (so never "/", never a leading dot, never
 * "_default"). nginx hands `$ssl_server_name` over raw when its own host check declines a name
 * (ngx_http_ssl_servername keeps going with the default server), so this pattern is the only thing
 * between a client's SNI and a path: a name it does not match gets the default certificate.
 */
export const CERT_NAME_PATTERN = '[a-z0-9](?:[a-z0-9.-]{0,251}[a-z0-9])?';

/** `*.platformDomain` one label deep, and the bare domain: what the wildcard certificate covers. */
function platformPattern(platformDomain: string): string {
  const escaped = platformDomain.replace(/[.\\+*?^$()[\]{}|]/g, '\\$&');
  return `^(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\\.)?${escaped}$`;
}

/**
 * Which certificate a TLS handshake gets, and which plain-HTTP requests are redirected to HTTPS.
 *
 * - Handshake (`$ssl_server_name`, evaluated per handshake): a platform name gets the wildcard
 *   certificate (TLS_CERT); any other well-formed name gets `<certsDir>/<name>.crt` and `.key`;
 *   no SNI or a malformed name gets the default certificate. nginx 1.22 loads a variable
 *   certificate on every handshake and has no fallback: a name without a file fails the handshake
 *   (ngx_http_ssl_certificate → "cannot load certificate", an internal_error alert), which is how
 *   names we do not serve are refused (docs/edge.md, "HTTPS for custom domains").
 * - Redirect (`$amt_https_probe`, tested with `-f` on each plain-HTTP request): the file a host's
 *   certificate would be read from, so only a host whose certificate exists now is sent to HTTPS;
 *   ACME challenges and health probes never are.
 */
export function renderTlsMaps(o: EdgeOptions): string {
  const wildcard = o.tlsCertificate && o.tlsCertificateKey ? { cert: o.tlsCertificate, key: o.tlsCertificateKey } : undefined;
  const platform = `"~${platformPattern(o.platformDomain)}"`;
  const none = join(o.outDir, 'no-certificate');
  const certs = o.certsDir?.replace(/\/+$/, '');
  const byName = (source: string, capture: string, ext: 'crt' | 'key', fallback: string) =>
    [
      `    map ${source} $amt_${capture}_${ext} {`,
      `        default ${fallback};`,
      ...(wildcard ? [`        ${platform} ${ext === 'crt' ? wildcard.cert : wildcard.key};`] : []),
      ...(certs ? [`        "~^(?<amt_${capture}_${ext}_name>${CERT_NAME_PATTERN})$" ${certs}/$amt_${capture}_${ext}_name.${ext};`] : []),
      '    }',
    ].join('\n');
  return `
    # Certificates by name (renderTlsMaps in nginx/render.ts): the wildcard for platform names,
    # <certs>/<name>.crt for other well-formed names, the default for no SNI or a malformed one.
${byName('$ssl_server_name', 'sni', 'crt', o.defaultCertificate)}
${byName('$ssl_server_name', 'sni', 'key', o.defaultCertificateKey)}
    # Plain HTTP goes to HTTPS only for a host whose certificate file exists now (-f per request).
${byName('$host', 'host', 'crt', none)}
    map $uri $amt_https_probe {
        default $amt_host_crt;
        "~^/\\.well-known/acme-challenge/" ${none};
        /_platform/healthz ${none};
    }
    # HSTS: a year everywhere; includeSubDomains only on the platform's own names, never on a
    # tenant's domain (its other subdomains may be served elsewhere, over plain HTTP).
    map $host $amt_hsts {
        default "max-age=31536000";
        ${platform} "max-age=31536000; includeSubDomains";
    }
`;
}

/**
 * `load_module` lines for the modules this machine's nginx needs loaded (Debian builds the stream
 * module as a dynamic module, libnginx-mod-stream; nginx.org builds and the official image have it
 * built in, and need no line). Written by the edge CLI next to nginx.conf, which includes it.
 */
export function renderModulesConf(modulePaths: readonly string[]): string {
  return ['# Written by npm run nginx:config for the nginx on this machine: modules it loads dynamically.', ...modulePaths.map((m) => `load_module ${m};`), ''].join('\n');
}

export const MODULES_CONF = 'amt-modules.conf';

/** The default certificate's files in NGINX_OUT, made by `npm run nginx:config` when missing (cli/edge.ts). */
export const DEFAULT_CERTIFICATE = 'default-certificate.pem';
export const DEFAULT_CERTIFICATE_KEY = 'default-certificate.key';

export function renderNginxConfig(o: EdgeOptions): Record<string, string> {
  const out = o.outDir;
  const wildcard = Boolean(o.tlsCertificate && o.tlsCertificateKey);
  const tls = wildcard || o.certsDir !== undefined;
  const tempDir = (name: string) => join(out, 'temp', name);
  for (const scheme of ['http', 'https'] as const) {
    if (innerSocket(out, scheme).length > MAX_SOCKET_PATH) throw new Error(`NGINX_OUT: "${out}" is too long for the unix socket ${innerSocket(out, scheme)} (at most ${MAX_SOCKET_PATH} bytes)`);
  }
  const main = `# Generated by nginx/render.ts (npm run nginx:config). Edit the generator, not this file.
${o.user ? `user ${o.user};\n` : ''}include ${join(out, MODULES_CONF)};
${o.brotliModules.map((m) => `load_module ${m};`).join('\n')}${o.brotliModules.length ? '\n' : ''}worker_processes ${o.workerProcesses};
# Each connection is a file descriptor, and so is each file being sent: twice the connections.
worker_rlimit_nofile ${2 * o.workerConnections};
pid ${join(out, 'nginx.pid')};
error_log ${o.errorLog} warn;

events {
    # ${CLIENTS_AT_LIMIT_PER_WORKER}+ clients at their limit (${o.connectionsPerClient} connections, ${connectionsPerClientAtLimit(o.connectionsPerClient)} worker connections each) fit in one worker.
    worker_connections ${o.workerConnections};
}
${renderStream(o, tls)}
http {
    include ${o.mimeTypes};
    default_type application/octet-stream;
    server_tokens off;
    sendfile on;
    tcp_nopush on;
    # Every client is bounded in time: a request header must arrive within this, a body must not
    # pause longer, and a client that reads nothing for 3x as long is dropped. Timed-out
    # connections are reset, so their memory and socket are freed at once.
    client_header_timeout ${o.clientTimeoutSeconds}s;
    client_body_timeout ${o.clientTimeoutSeconds}s;
    send_timeout ${3 * o.clientTimeoutSeconds}s;
    reset_timedout_connection on;
    keepalive_timeout 30s;
    # Only sign-in forms post to the app; nothing legitimate is bigger than this.
    client_max_body_size 64k;

    # The client's address comes from the stream front (PROXY protocol over the unix socket).
    set_real_ip_from unix:;
    real_ip_header proxy_protocol;

    client_body_temp_path ${tempDir('body')};
    proxy_temp_path ${tempDir('proxy')};
    fastcgi_temp_path ${tempDir('fastcgi')};
    uwsgi_temp_path ${tempDir('uwsgi')};
    scgi_temp_path ${tempDir('scgi')};

    # The port the browser named in Host (":8080", or "" for a default port): the app compares a
    # sign-in Origin with scheme://host:port, and $host alone drops the port. Not $http_host: with an
    # absolute-form request line nginx routes and caches by the request line's host, and the app
    # must see that same host. Not $server_port: behind a port mapping it is not the browser's port.
    map $http_host $amt_host_port {
        default "";
        "~(?<amt_port>:[0-9]{1,5})$" $amt_port;
    }

    # Keep the visitor's request id, or make one, and hand it to the app and the logs.
    map $http_x_request_id $amt_request_id {
        default $http_x_request_id;
        "" $request_id;
    }
    map $http_cookie $amt_has_session {
        default 0;
        "~*${SESSION_COOKIE_PATTERN}" 1;
    }

    log_format amt_json escape=json '{"time":"$time_iso8601","remote":"$remote_addr","host":"$host",'
        '"method":"$request_method","uri":"$request_uri","status":$status,"bytes":$body_bytes_sent,'
        '"ms":$request_time,"upstream_ms":"$upstream_response_time","cache":"$upstream_cache_status",'
        '"reqId":"$amt_request_id"}';
    access_log ${o.accessLog === 'off' ? 'off' : `${o.accessLog} amt_json`};

    gzip on;
    gzip_vary on;
    gzip_proxied any;
    gzip_min_length 512;
    gzip_types text/plain text/css text/xml application/xml application/json application/javascript image/svg+xml;
${o.brotliModules.length ? '    brotli on;\n    brotli_types text/plain text/css text/xml application/xml application/json application/javascript image/svg+xml;\n' : ''}
    limit_req_zone $binary_remote_addr zone=amt_per_ip:10m rate=${o.rate};
    limit_req_status 429;
    # Requests in flight per client: one per connection over HTTP/1.1 (the stream front bounds
    # those), each stream over HTTP/2.
    limit_conn_zone $binary_remote_addr zone=amt_requests_per_ip:10m;
    limit_conn_status 429;

    proxy_cache_path ${o.cacheDir} levels=1:2 keys_zone=amt_cache:20m max_size=1g inactive=10m use_temp_path=off;

    upstream amt_cluster {
        server ${o.upstream} max_fails=0;
        keepalive 64;
        keepalive_timeout 55s;
    }

    # Every tenant host, wildcard and custom: which site a host is, is the app's decision.
    server {
        listen unix:${innerSocket(out, 'http')} proxy_protocol default_server;
        server_name _;
        limit_conn amt_requests_per_ip ${o.connectionsPerClient};
${
  tls
    ? `        # A host whose certificate exists goes to HTTPS (308 keeps the method and body); the rest,
        # and ACME challenges and health probes always, are answered here.
        if (-f $amt_https_probe) {
            return 308 https://$host${o.tlsPublicPort}$request_uri;
        }
`
    : ''
}        include ${join(out, 'amt-locations.conf')};
    }
${
  tls
    ? `${renderTlsMaps(o)}
    # TLS: ${o.certsDir ? `each name's certificate from ${o.certsDir}, read on every handshake (new and renewed ones need no reload)${wildcard ? `, the wildcard for *.${o.platformDomain}` : ''}` : `the wildcard certificate for *.${o.platformDomain}`}.
    # See docs/edge.md ("HTTPS for custom domains", "TLS with a wildcard certificate").
    server {
        listen unix:${innerSocket(out, 'https')} ssl http2 proxy_protocol default_server;
        server_name _;
        limit_conn amt_requests_per_ip ${o.connectionsPerClient};
        ssl_certificate ${o.certsDir ? '$amt_sni_crt' : o.tlsCertificate};
        ssl_certificate_key ${o.certsDir ? '$amt_sni_key' : o.tlsCertificateKey};
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_prefer_server_ciphers off;
        ssl_session_cache shared:amt_tls:10m;
        ssl_session_timeout 1d;
        include ${join(out, 'amt-locations-tls.conf')};
    }
`
    : ''
}}
`;
  const files: Record<string, string> = {
    'nginx.conf': main,
    'amt-locations.conf': renderLocations(o, false),
  };
  if (tls) files['amt-locations-tls.conf'] = renderLocations(o, true);
  return files;
}

type Env = Record<string, string | undefined>;

function wholeNumber(env: Env, name: string, fallback: number, min: number): number {
  const text = env[name];
  const value = text === undefined || text === '' ? fallback : Number(text);
  if (!Number.isInteger(value) || value < min) throw new Error(`${name}: "${text}" must be a whole number ≥ ${min}`);
  return value;
}

/**
 * Options from the environment (see the table in docs/edge.md); paths resolve against `cwd`.
 *
 * @throws Error naming the variable when a value is malformed, or when NGINX_WORKER_CONNECTIONS
 *   cannot hold CLIENTS_AT_LIMIT_PER_WORKER clients at NGINX_CONN_PER_IP connections each.
 */
export function edgeOptionsFromEnv(env: Env, cwd: string, installed: { brotliModules: string[] } = { brotliModules: [] }): EdgeOptions {
  const abs = (value: string) => (isAbsolute(value) ? value : resolve(cwd, value));
  const outDir = abs(env.NGINX_OUT || 'nginx/generated');
  const port = env.PORT || '4321';
  const burst = wholeNumber(env, 'NGINX_BURST', 40, 1);
  const rate = env.NGINX_RATE || '20r/s';
  if (!/^\d+r\/[sm]$/.test(rate)) throw new Error(`NGINX_RATE: "${rate}" must look like 20r/s or 600r/m`);
  const connectionsPerClient = wholeNumber(env, 'NGINX_CONN_PER_IP', 64, 1);
  const clientTimeoutSeconds = wholeNumber(env, 'NGINX_CLIENT_TIMEOUT_S', 10, 1);
  const workerConnections = wholeNumber(env, 'NGINX_WORKER_CONNECTIONS', 8192, 64);
  const needed = CLIENTS_AT_LIMIT_PER_WORKER * connectionsPerClientAtLimit(connectionsPerClient);
  if (workerConnections < needed) {
    throw new Error(
      `NGINX_WORKER_CONNECTIONS: ${workerConnections} cannot hold ${CLIENTS_AT_LIMIT_PER_WORKER} clients at NGINX_CONN_PER_IP=${connectionsPerClient} (${connectionsPerClientAtLimit(connectionsPerClient)} worker connections each): raise it to ${needed} or lower NGINX_CONN_PER_IP`,
    );
  }
  const workerProcesses = env.NGINX_WORKERS || 'auto';
  if (!/^(auto|[1-9]\d{0,2})$/.test(workerProcesses)) throw new Error(`NGINX_WORKERS: "${workerProcesses}" must be "auto" or a whole number ≥ 1`);
  const cssDir = env.NGINX_CSS_DIR === '' ? undefined : abs(env.NGINX_CSS_DIR || env.CSS_DIR || 'astro-multi-tenant/site-css');
  const tlsListen = env.NGINX_TLS_LISTEN || '8443';
  const tlsPublicPort = env.NGINX_TLS_PUBLIC_PORT || /(\d+)$/.exec(tlsListen)?.[1] || '443';
  if (!/^\d{1,5}$/.test(tlsPublicPort) || Number(tlsPublicPort) < 1 || Number(tlsPublicPort) > 65535) throw new Error(`NGINX_TLS_PUBLIC_PORT: "${tlsPublicPort}" must be a port number (1-65535)`);
  const certsDir = env.NGINX_CERTS_DIR || env.CERTS_DIR;
  if ((env.NGINX_DEFAULT_CERT === undefined) !== (env.NGINX_DEFAULT_KEY === undefined)) throw new Error('NGINX_DEFAULT_CERT and NGINX_DEFAULT_KEY: set both or neither');
  return {
    outDir,
    upstream: env.NGINX_UPSTREAM || `127.0.0.1:${port}`,
    listen: env.NGINX_LISTEN || '8080',
    tlsListen,
    tlsPublicPort: tlsPublicPort === '443' ? '' : `:${tlsPublicPort}`,
    tlsCertificate: env.TLS_CERT ? abs(env.TLS_CERT) : undefined,
    tlsCertificateKey: env.TLS_KEY ? abs(env.TLS_KEY) : undefined,
    certsDir: certsDir ? abs(certsDir) : undefined,
    defaultCertificate: abs(env.NGINX_DEFAULT_CERT || join(outDir, DEFAULT_CERTIFICATE)),
    defaultCertificateKey: abs(env.NGINX_DEFAULT_KEY || join(outDir, DEFAULT_CERTIFICATE_KEY)),
    sitesDir: abs(env.NGINX_SITES_DIR || env.SITES_DIR || 'sites'),
    cssDir,
    cacheDir: abs(env.NGINX_CACHE_DIR || join(outDir, 'cache')),
    platformDomain: (env.PLATFORM_DOMAIN || 'localhost').toLowerCase(),
    rate,
    burst,
    connectionsPerClient,
    clientTimeoutSeconds,
    workerConnections,
    workerProcesses,
    user: env.NGINX_USER || undefined,
    brotliModules: installed.brotliModules,
    mimeTypes: env.NGINX_MIME_TYPES || '/etc/nginx/mime.types',
    accessLog: env.NGINX_ACCESS_LOG || join(outDir, 'access.log'),
    errorLog: env.NGINX_ERROR_LOG || join(outDir, 'error.log'),
  };
}
