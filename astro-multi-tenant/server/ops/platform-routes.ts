import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AdminAccess } from './admin-access.ts';
import type { Health } from './health.ts';
import type { RouteKind } from './metrics.ts';
import type { StatusModel } from './status.ts';
import { renderStatusPage } from './status-page.ts';
import type { TlsAsk } from './tls-ask.ts';

export interface PlatformRoutesDeps {
  health: Health;
  admin: AdminAccess;
  /** Metrics of every worker, combined. */
  metrics: () => Promise<{ text: string; contentType: string }>;
  status: () => Promise<StatusModel>;
  isDraining: () => boolean;
  /** `/_platform/tls/ask?domain=`: Caddy's on-demand TLS question (ops/tls-ask.ts); absent = 404. */
  tlsAsk?: TlsAsk;
}

function send(res: ServerResponse, status: number, type: string, body: string, extra: Record<string, string> = {}) {
  res.statusCode = status;
  res.setHeader('Content-Type', type);
  res.setHeader('Content-Length', Buffer.byteLength(body));
  res.setHeader('Cache-Control', 'no-store');
  for (const [k, v] of Object.entries(extra)) res.setHeader(k, v);
  res.end(res.req?.method === 'HEAD' ? undefined : body);
}

/**
 * The platform's own endpoints, answered on every host before tenant routing (a load balancer
 * probing by IP has no tenant Host). Returns the route kind when it answered, undefined otherwise.
 */
export function createPlatformRoutes(deps: PlatformRoutesDeps) {
  return async function handlePlatform(req: IncomingMessage, res: ServerResponse): Promise<RouteKind | undefined> {
    const url = req.url ?? '/';
    if (!url.startsWith('/_platform/')) return undefined;
    const [path = '', query = ''] = url.split('?', 2);
    if (path === '/_platform/healthz') {
      send(res, 200, 'text/plain; charset=utf-8', 'ok\n');
      return 'health';
    }
    if (path === '/_platform/readyz') {
      const result = await deps.health.readiness();
      const admin = deps.admin(req.headers, req.socket.remoteAddress).ok;
      // Visitors learn only which check failed; the reason (paths, Redis addresses) is for operators.
      const checks = result.checks.map((c) => (admin || c.ok ? c : { name: c.name, ok: c.ok }));
      send(res, result.ready ? 200 : 503, 'application/json', `${JSON.stringify({ status: result.status, checks })}\n`);
      return 'health';
    }
    const isMetrics = path === '/_platform/metrics';
    const isStatus = path === '/_platform/status' || path === '/_platform/status.json';
    const isAsk = path === '/_platform/tls/ask' && deps.tlsAsk !== undefined;
    if (!isMetrics && !isStatus && !isAsk) return undefined;
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      send(res, 405, 'text/plain; charset=utf-8', 'Method not allowed\n', { Allow: 'GET, HEAD' });
      return 'method_not_allowed';
    }
    const decision = deps.admin(req.headers, req.socket.remoteAddress);
    if (!decision.ok) {
      send(res, decision.status, 'text/plain; charset=utf-8', `${decision.status === 401 ? 'Unauthorized' : 'Forbidden'}: ${decision.reason}\n`, decision.status === 401 ? { 'WWW-Authenticate': 'Bearer' } : {});
      return 'forbidden';
    }
    if (isAsk) {
      const answer = await deps.tlsAsk!(query);
      send(res, answer.status, 'text/plain; charset=utf-8', `${answer.message}\n`);
      return answer.status === 400 ? 'bad_request' : 'platform';
    }
    if (isMetrics) {
      const { text, contentType } = await deps.metrics();
      send(res, 200, contentType, text);
      return 'metrics';
    }
    const model = await deps.status();
    const wantsJson = path.endsWith('.json') || /\bapplication\/json\b/.test(String(req.headers.accept ?? ''));
    if (wantsJson) send(res, 200, 'application/json', `${JSON.stringify(model, null, 2)}\n`);
    else send(res, 200, 'text/html; charset=utf-8', renderStatusPage(model, new URLSearchParams(query).get('q') ?? ''));
    return 'status';
  };
}
