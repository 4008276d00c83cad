import type { Outcome, Stage } from './context.ts';

/**
 * Runs stages in order until one answers. Each stage either answers (returns its route kind) or
 * passes the request on unchanged (returns undefined); nothing runs after the stage that answered.
 */
export function sequence<C>(stages: readonly Stage<C>[]): Stage<C> {
  return async (ctx) => {
    for (const stage of stages) {
      const outcome = await stage(ctx);
      if (outcome !== undefined) return outcome;
    }
    return undefined;
  };
}

/**
 * A stage that learns something about the request (its host, its tenant): it either answers
 * (returns a route kind) or returns the richer context the following stages run with. This is
 * how later stages get a `site` that is never undefined.
 */
export type Refinement<C, D> = (ctx: C) => Promise<D | Outcome> | D | Outcome;

export function refine<C, D extends C>(step: Refinement<C, D>, next: Stage<D>): Stage<C> {
  return async (ctx) => {
    const result = await step(ctx);
    if (result === undefined || typeof result === 'string') return result as Outcome;
    return next(result);
  };
}
