import type { StatusModel } from '../ops/status.ts';
import type { DomainVerifier } from './domain-verifier.ts';

/**
 * Adds each site's custom domains and aliases with their ownership check to the status model
 * (DOMAIN_VERIFICATION=dns); the model is returned as is when verification is off.
 */
export function withDomainStatus(status: () => Promise<StatusModel>, verifier: DomainVerifier | undefined): () => Promise<StatusModel> {
  if (!verifier) return status;
  return async () => {
    const model = await status();
    const domains = model.sites.flatMap((site) => verifier.describe(site.id, [...site.domains, ...site.aliases]));
    return { ...model, domains };
  };
}
