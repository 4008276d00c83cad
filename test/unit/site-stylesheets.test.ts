import { describe, expect, it } from 'vitest';
import { createSiteStylesheets } from '../../astro-multi-tenant/server/render/site-view.ts';
import type { Site } from '../../astro-multi-tenant/server/sites/loader.ts';
import type { Logger } from '../../astro-multi-tenant/server/log.ts';

/** A logger that keeps its warnings. */
function recordingLogger() {
  const warnings: Array<{ fields: Record<string, unknown>; message: string }> = [];
  const logger = { warn: (fields: Record<string, unknown>, message: string) => warnings.push({ fields, message }) } as unknown as Logger;
  return { logger, warnings };
}

const site = (id: string, cssFile?: string) => ({ id, cssFile, cssProblem: cssFile ? undefined : 'not built' }) as unknown as Site;

describe('the stylesheets a site links', () => {
  it('links a site\'s own built stylesheet and never warns about it', () => {
    const { logger, warnings } = recordingLogger();
    const stylesheets = createSiteStylesheets({ baseStylesheets: ['/_platform/css/_base/site.0123456789abcdef.css'], logger });
    expect(stylesheets(site('acme', 'site.fedcba9876543210.css'))).toEqual(['/_platform/css/acme/site.fedcba9876543210.css']);
    expect(warnings).toEqual([]);
  });

  it('falls back to the base stylesheet, warning once per site for the first sites and then in one summary line a minute', () => {
    const { logger, warnings } = recordingLogger();
    let clock = 0;
    const stylesheets = createSiteStylesheets({ baseStylesheets: ['/base.css'], logger, now: () => clock });
    for (let i = 0; i < 5000; i++) {
      expect(stylesheets(site(`site-${i}`))).toEqual(['/base.css']);
      expect(stylesheets(site(`site-${i}`))).toEqual(['/base.css']);
    }
    const individual = warnings.filter((w) => w.fields.site !== undefined);
    expect(individual).toHaveLength(20);
    expect(individual[0]!.message).toContain('run npm run css -- site-0');
    // One summary so far (the 21st site started it), and none until a minute has passed.
    expect(warnings.filter((w) => w.fields.sites !== undefined)).toEqual([{ fields: { sites: 1 }, message: expect.stringContaining('1 more site(s)') }]);
    clock += 60_000;
    stylesheets(site('site-5000'));
    const summaries = warnings.filter((w) => w.fields.sites !== undefined);
    expect(summaries).toHaveLength(2);
    expect(summaries[1]!.fields.sites).toBe(5000 - 21 + 1);
    expect(warnings.length).toBeLessThanOrEqual(22);
  });
});
