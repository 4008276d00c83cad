import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from '../log.ts';
import type { RouteKind } from '../ops/metrics.ts';
import type { RequestTarget } from '../http/request-path.ts';
import type { NormalizedHost } from '../tenant/normalize-host.ts';
import type { Site } from '../sites/loader.ts';
import type { Viewer } from '../session/sessions.ts';

/**
 * What a stage returns: the route kind when it answered the request (decided once, by the stage
 * that answers, and used for metrics and the access log), or undefined to pass it on.
 */
export type Outcome = RouteKind | undefined;

/** One step of the request pipeline. */
export type Stage<C> = (ctx: C) => Outcome | Promise<Outcome>;

/** Every request, from the moment it arrives. */
export interface Exchange {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  /** X-Request-Id: the client's when it is well-formed, otherwise a fresh UUID. */
  readonly id: string;
  /** pino child carrying reqId, and site once the tenant is known; made on first use. */
  readonly log: Logger;
  /** The tenant, once known: for metrics and the access log even when a later stage throws. */
  siteId: string | undefined;
  /** The authority of a target sent in absolute form; it replaces the Host header (RFC 9112 §3.2.2). */
  targetAuthority?: string;
}

/** A request whose Host and target have been checked (stages/host.ts). */
export interface HostedRequest extends Exchange {
  /** Scheme the visitor used (X-Forwarded-Proto from a trusted proxy, else the socket's). */
  readonly proto: 'http' | 'https';
  /** Normalised host: lowercase ASCII (punycode), no trailing dot, and the port the client named. */
  readonly host: NormalizedHost;
  /** host[:port] as it belongs in URLs we generate for this visitor. */
  readonly authority: string;
  readonly target: RequestTarget;
}

/** A request for a site that loaded and validated (stages/tenant.ts). */
export interface SiteRequest extends HostedRequest {
  readonly site: Site;
  /** scheme://primary-domain[:port]: canonical URLs, sitemaps and redirects use it. */
  readonly siteOrigin: string;
  /** How long resolving and loading the site took (ms), for Server-Timing. */
  readonly siteLoadMs: number;
  /** Who is signed in on this site; asked of the session store only when a stage calls it. */
  viewer(): Promise<Viewer>;
}
