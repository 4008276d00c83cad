/** The label value every site past the limit is counted under. */
export const OTHER_LABEL = '_other';

/**
 * Hands out label values for a per-site metric without letting 10,000 sites become 10,000 series:
 * the first `limit` distinct sites a worker sees keep their own label for the worker's life, every
 * later one is counted as `_other`. First-seen is a deliberate choice over "top-N": it never
 * relabels a series (which would break `rate()`), and the sites that get traffic first after a
 * start are, in practice, the busy ones.
 */
export function createBoundedLabels(limit: number) {
  const known = new Set<string>();
  return {
    label(value: string): string {
      if (known.has(value)) return value;
      if (known.size >= limit) return OTHER_LABEL;
      known.add(value);
      return value;
    },
    get size() {
      return known.size;
    },
  };
}

export type BoundedLabels = ReturnType<typeof createBoundedLabels>;

/** 200 → "2xx". Any status outside 100..599 is "other", so a buggy handler cannot add series. */
export function statusClass(status: number): string {
  return status >= 100 && status < 600 ? `${Math.floor(status / 100)}xx` : 'other';
}

/** Methods a client can make up must not make up series either. */
export function methodLabel(method: string | undefined): string {
  return method === 'GET' || method === 'HEAD' || method === 'POST' ? method : 'OTHER';
}
