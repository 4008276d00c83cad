import type * as AcmeClientModule from 'acme-client';

/**
 * acme-client, loaded on first use. Importing it costs hundreds of milliseconds (axios,
 * node-forge, asn1 libraries: 0.6–0.8 s measured on a loaded 2-core machine), which every server
 * start and every `npm run sites` command paid although ACME is off unless ACME_DIRECTORY_URL is
 * set. Loaded once per process; later calls share the promise.
 */
export type AcmeClient = typeof AcmeClientModule.default;

let loading: Promise<AcmeClient> | undefined;

export function loadAcmeClient(): Promise<AcmeClient> {
  return (loading ??= import('acme-client').then((module) => module.default));
}
