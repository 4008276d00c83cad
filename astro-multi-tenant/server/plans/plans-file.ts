import { z } from 'zod';
import { readFile, stat } from 'node:fs/promises';
import { formatIssue, PlatformError, type ContentIssue } from '../errors.ts';
import { toContentIssues } from '../sites/schema.ts';
import { isValidSiteId } from '../tenant/resolve-host.ts';

/**
 * What a plan allows one site. Rates are per second over the whole cluster (shared through Redis,
 * per process while Redis is down); render concurrency and render time are per worker process,
 * because they protect that process's event loop. Sizes are bytes.
 */
export interface Plan {
  /** Requests per second, averaged over a window of burst / requestsPerSecond seconds. */
  requestsPerSecond: number;
  /** Requests admitted at once before the rate applies (at least requestsPerSecond). */
  burst: number;
  /** Page renders (render-cache misses) per second. */
  rendersPerSecond: number;
  /** Renders of this site running at once in one worker; more wait in a short queue. */
  renderConcurrency: number;
  /** Milliseconds of rendering per second this site may use in one worker before its uncached renders are shed. */
  renderCpuMsPerSecond: number;
  /** Page files (pages/**\/*.md) the site may have. */
  maxPages: number;
  /** Largest page file, bytes. */
  maxPageBytes: number;
  /** Total bytes under public/. */
  maxPublicBytes: number;
  /**
   * The site may call its own components (components/*.astro) from Markdown and replace shared
   * layouts (layouts/*.astro). Their code runs in the server process: the operator grants this
   * (docs/security.md), never the site owner. False unless a plan says true; see DEFAULT_PLAN_WITHOUT_FILE.
   */
  components: boolean;
}

/** A site's plan with the name it has in PLANS_FILE (`default` when the site is not listed). */
export interface NamedPlan {
  name: string;
  limits: Plan;
}

/**
 * The built-in default: generous enough that no site sized like today's sample sites, and none of
 * the benchmark's single-site runs (thousands of renders per second), ever meets it. It exists so
 * that every site has *some* bound; operators tighten it in PLANS_FILE.
 */
export const DEFAULT_PLAN: Readonly<Plan> = Object.freeze({
  requestsPerSecond: 20_000,
  burst: 40_000,
  rendersPerSecond: 10_000,
  renderConcurrency: 64,
  renderCpuMsPerSecond: 1000,
  maxPages: 10_000,
  maxPageBytes: 1024 * 1024,
  maxPublicBytes: 1024 * 1024 * 1024,
  components: false,
});

/**
 * Every site's plan when there is no PLANS_FILE: the default, with components allowed. Without a
 * plans file nobody has said which sites are whose, which is the operator's own setup (embedded
 * mode, the sample sites): their sites' components are theirs to run. A PLANS_FILE means sites of
 * others, so there only a plan that says `"components": true` allows them, the file's default too.
 */
export const DEFAULT_PLAN_WITHOUT_FILE: Readonly<Plan> = Object.freeze({ ...DEFAULT_PLAN, components: true });

/** Plan names become metric labels and status-page text: short, lowercase, no surprises. */
const PLAN_NAME = /^[a-z0-9][a-z0-9_-]{0,31}$/;

const positive = (max: number) => z.number().positive().max(max);
const whole = (max: number) => z.number().int().min(1).max(max);

const planSchema = z
  .object({
    requestsPerSecond: positive(1_000_000).optional(),
    burst: whole(10_000_000).optional(),
    rendersPerSecond: positive(1_000_000).optional(),
    renderConcurrency: whole(10_000).optional(),
    renderCpuMsPerSecond: positive(1_000_000).optional(),
    maxPages: whole(10_000_000).optional(),
    maxPageBytes: whole(1024 * 1024 * 1024).optional(),
    maxPublicBytes: whole(Number.MAX_SAFE_INTEGER).optional(),
    components: z.boolean().optional(),
  })
  .strict()
  .superRefine((plan, ctx) => {
    if (plan.burst !== undefined && plan.requestsPerSecond !== undefined && plan.burst < plan.requestsPerSecond) {
      ctx.addIssue({ code: 'custom', path: ['burst'], message: `must be at least requestsPerSecond (${plan.requestsPerSecond})` });
    }
  });

const plansFileSchema = z
  .object({
    plans: z.record(z.string(), planSchema).default({}),
    sites: z.record(z.string(), z.string()).default({}),
  })
  .strict()
  .superRefine((file, ctx) => {
    for (const name of Object.keys(file.plans)) {
      if (!PLAN_NAME.test(name)) ctx.addIssue({ code: 'custom', path: ['plans', name], message: 'plan names are 1-32 lowercase letters, digits, "-" or "_"' });
    }
    for (const [site, plan] of Object.entries(file.sites)) {
      if (!isValidSiteId(site)) ctx.addIssue({ code: 'custom', path: ['sites', site], message: 'not a valid site id (lowercase letters, digits and hyphens, 1-63 characters)' });
      if (plan !== 'default' && !Object.hasOwn(file.plans, plan)) ctx.addIssue({ code: 'custom', path: ['sites', site], message: `plan "${plan}" is not defined under "plans"` });
    }
  });

/**
 * A plan as written (fields left out) → a whole plan: each missing field takes the built-in
 * default's value, except `burst`, which defaults to twice the plan's own requestsPerSecond (the
 * default's ratio), so `{"requestsPerSecond": 5}` does not inherit a burst of 40,000.
 */
export function completePlan(partial: Partial<Plan>): Plan {
  const plan = { ...DEFAULT_PLAN, ...partial };
  if (partial.burst === undefined && partial.requestsPerSecond !== undefined) plan.burst = Math.max(1, Math.ceil(partial.requestsPerSecond * 2));
  return plan;
}

/** Which plan each site is on. */
export interface PlanBook {
  planFor(siteId: string): NamedPlan;
  /** Every plan by name, `default` included. */
  readonly plans: ReadonlyMap<string, Plan>;
}

/** The book used without a PLANS_FILE: every site on the built-in default (components allowed: DEFAULT_PLAN_WITHOUT_FILE). */
export function defaultPlanBook(): PlanBook {
  return planBook({ default: { ...DEFAULT_PLAN_WITHOUT_FILE } }, {});
}

function planBook(plans: Record<string, Plan>, sites: Record<string, string>): PlanBook {
  const byName = new Map<string, Plan>(Object.entries(plans));
  if (!byName.has('default')) byName.set('default', { ...DEFAULT_PLAN });
  const named = new Map<string, NamedPlan>([...byName].map(([name, limits]) => [name, { name, limits }]));
  const fallback = named.get('default')!;
  const assigned = new Map(Object.entries(sites).map(([site, plan]) => [site, named.get(plan) ?? fallback]));
  return {
    plans: byName,
    planFor: (siteId) => assigned.get(siteId) ?? fallback,
  };
}

/**
 * Parses and validates a PLANS_FILE text. Pure. Every problem names the file and the field
 * (`plans.small.burst`, `sites.acme`), like site.json problems. A `default` plan in the file
 * replaces the built-in default for every site the file does not list.
 */
export function parsePlansFile(text: string, file: string): { ok: true; book: PlanBook } | { ok: false; issues: ContentIssue[] } {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    return { ok: false, issues: [{ file, field: '', reason: `not valid JSON: ${(error as Error).message}` }] };
  }
  const result = plansFileSchema.safeParse(json);
  if (!result.success) return { ok: false, issues: toContentIssues(file, result.error) };
  const plans = Object.fromEntries(Object.entries(result.data.plans).map(([name, partial]) => [name, completePlan(partial as Partial<Plan>)]));
  return { ok: true, book: planBook(plans, result.data.sites) };
}

export interface PlansSourceOptions {
  /** PLANS_FILE; undefined = every site on the built-in default, nothing to watch. */
  file: string | undefined;
  /** Re-check the file's stat at most this often (ms): the same cadence as site content (CONTENT_CHECK_MS). */
  checkIntervalMs: number;
  now?: () => number;
  /** Called when a changed file does not validate (the previous plans stay in force) and when it validates again. */
  onReload?: (outcome: { ok: true; file: string } | { ok: false; file: string; message: string }) => void;
}

export interface PlansSource {
  /** The plans in force now. Synchronous and cheap (every request asks); a due re-check runs in the background. */
  current(): PlanBook;
  /** Re-checks the file now (tests, the CLI); resolves once any change is applied. */
  refresh(): Promise<void>;
}

/**
 * Loads PLANS_FILE at start and follows edits to it: the file is stat'ed at most once per
 * `checkIntervalMs` (size, mtime and inode, like the site cache), re-read when that changes, and
 * swapped in only if it validates; an invalid edit keeps the plans in force and is reported
 * through `onReload`, so a typo never lifts every limit.
 *
 * @throws PlatformError CONFIG_INVALID naming the file and every bad field, when the file cannot
 *   be read or does not validate at start (the server then refuses to start).
 */
export async function loadPlansSource(options: PlansSourceOptions): Promise<PlansSource> {
  const { file } = options;
  if (file === undefined) {
    const book = defaultPlanBook();
    return { current: () => book, refresh: async () => {} };
  }
  const now = options.now ?? Date.now;
  const fingerprintOf = async () => {
    const s = await stat(file);
    return `${s.ino}:${s.size}:${s.mtimeMs}`;
  };
  async function read(): Promise<{ fingerprint: string; result: ReturnType<typeof parsePlansFile> }> {
    const fingerprint = await fingerprintOf();
    return { fingerprint, result: parsePlansFile(await readFile(file!, 'utf8'), file!) };
  }

  let first;
  try {
    first = await read();
  } catch (error) {
    throw new PlatformError('CONFIG_INVALID', `PLANS_FILE: cannot read ${file} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`, file);
  }
  if (!first.result.ok) throw new PlatformError('CONFIG_INVALID', `PLANS_FILE: ${first.result.issues.map(formatIssue).join('; ')}`, file);
  let book = first.result.book;
  let fingerprint = first.fingerprint;
  let checkedAt = now();
  let running: Promise<void> | undefined;
  let failing = false;

  async function check(): Promise<void> {
    checkedAt = now();
    try {
      if ((await fingerprintOf()) === fingerprint) return;
      const next = await read();
      fingerprint = next.fingerprint;
      if (next.result.ok) {
        book = next.result.book;
        failing = false;
        options.onReload?.({ ok: true, file: file! });
      } else {
        failing = true;
        options.onReload?.({ ok: false, file: file!, message: next.result.issues.map(formatIssue).join('; ') });
      }
    } catch (error) {
      // Gone or unreadable for a moment (an editor's save): keep the plans in force, say so once.
      if (!failing) options.onReload?.({ ok: false, file: file!, message: `cannot read ${file} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message}); the previous plans stay in force` });
      failing = true;
      fingerprint = '';
    }
  }

  const refresh = () => (running ??= check().finally(() => (running = undefined)));
  return {
    current() {
      if (now() - checkedAt >= options.checkIntervalMs && running === undefined) void refresh();
      return book;
    },
    refresh,
  };
}
