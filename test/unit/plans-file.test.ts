import { afterEach, describe, expect, it } from 'vitest';
import { mkdtemp, rm, writeFile, rename } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_PLAN, DEFAULT_PLAN_WITHOUT_FILE, loadPlansSource, parsePlansFile } from '../../astro-multi-tenant/server/plans/plans-file.ts';

const FILE = '/etc/amt/plans.json';

function issuesOf(json: unknown) {
  const result = parsePlansFile(JSON.stringify(json), FILE);
  if (result.ok) throw new Error('expected the file to be refused');
  return result.issues.map((i) => `${i.field}: ${i.reason}`);
}

describe('PLANS_FILE', () => {
  it('puts a listed site on its plan and every other site on the default', () => {
    const result = parsePlansFile(JSON.stringify({ plans: { small: { requestsPerSecond: 5, burst: 10, rendersPerSecond: 2 } }, sites: { acme: 'small' } }), FILE);
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.book.planFor('acme')).toEqual({ name: 'small', limits: { ...DEFAULT_PLAN, requestsPerSecond: 5, burst: 10, rendersPerSecond: 2 } });
    expect(result.book.planFor('docs')).toEqual({ name: 'default', limits: DEFAULT_PLAN });
  });

  it('completes a plan from the built-in default, its burst from its own rate', () => {
    for (const [rate, burst] of [[5, 10], [0.5, 1], [120, 240]] as const) {
      const result = parsePlansFile(JSON.stringify({ plans: { p: { requestsPerSecond: rate } }, sites: { acme: 'p' } }), FILE);
      if (!result.ok) throw new Error(result.issues[0]!.reason);
      expect(result.book.planFor('acme').limits).toEqual({ ...DEFAULT_PLAN, requestsPerSecond: rate, burst });
    }
  });

  it('lets the file replace the default plan for the sites it does not list', () => {
    const result = parsePlansFile(JSON.stringify({ plans: { default: { maxPages: 50 } } }), FILE);
    if (!result.ok) throw new Error('refused');
    expect(result.book.planFor('anything').limits.maxPages).toBe(50);
    expect(result.book.planFor('anything').name).toBe('default');
  });

  it('names the field of every problem', () => {
    expect(issuesOf({ plans: { small: { burst: 'ten' } } })).toEqual([expect.stringMatching(/^plans\.small\.burst: /)]);
    expect(issuesOf({ plans: { small: { requestsPerSecond: -1 } } })).toEqual([expect.stringMatching(/^plans\.small\.requestsPerSecond: /)]);
    expect(issuesOf({ plans: { small: { renderConcurrency: 1.5 } } })).toEqual([expect.stringMatching(/^plans\.small\.renderConcurrency: /)]);
    expect(issuesOf({ plans: { small: { requestsPerSecond: 10, burst: 5 } } })).toEqual(['plans.small.burst: must be at least requestsPerSecond (10)']);
    expect(issuesOf({ plans: { small: { rps: 5 } } })).toEqual(['plans.small: unknown field(s) "rps"']);
    expect(issuesOf({ sites: { acme: 'gold' } })).toEqual(['sites.acme: plan "gold" is not defined under "plans"']);
    expect(issuesOf({ sites: { 'Not A Site': 'default' } })).toEqual([expect.stringMatching(/^sites\.Not A Site: not a valid site id/)]);
    expect(issuesOf({ plans: { 'Gold Plan': {} } })).toEqual([expect.stringMatching(/^plans\.Gold Plan: plan names/)]);
    expect(issuesOf({ plan: {} })).toEqual([': unknown field(s) "plan"']);
  });

  it('refuses text that is not JSON, naming the file', () => {
    const result = parsePlansFile('{"plans": ', FILE);
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.issues[0]).toMatchObject({ file: FILE, field: '', reason: expect.stringMatching(/^not valid JSON/) });
  });
});

describe('following PLANS_FILE', () => {
  let dir: string | undefined;
  afterEach(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('refuses to start on an invalid file, naming the file and the field', async () => {
    dir = await mkdtemp(join(tmpdir(), 'amt-plans-'));
    const file = join(dir, 'plans.json');
    await writeFile(file, JSON.stringify({ sites: { acme: 'gold' } }));
    await expect(loadPlansSource({ file, checkIntervalMs: 0 })).rejects.toThrow(`PLANS_FILE: ${file}: sites.acme: plan "gold" is not defined under "plans"`);
    await expect(loadPlansSource({ file: join(dir, 'missing.json'), checkIntervalMs: 0 })).rejects.toThrow(/PLANS_FILE: cannot read .*missing\.json \(ENOENT\)/);
  });

  it('applies an edit once its stat changes, and keeps the plans in force when the edit is invalid', async () => {
    dir = await mkdtemp(join(tmpdir(), 'amt-plans-'));
    const file = join(dir, 'plans.json');
    await writeFile(file, JSON.stringify({ plans: { small: { requestsPerSecond: 5 } }, sites: { acme: 'small' } }));
    let clock = 0;
    const reloads: string[] = [];
    const source = await loadPlansSource({ file, checkIntervalMs: 500, now: () => clock, onReload: (r) => reloads.push(r.ok ? 'ok' : r.message) });
    expect(source.current().planFor('acme').limits.requestsPerSecond).toBe(5);

    await writeFile(`${file}.tmp`, JSON.stringify({ plans: { small: { requestsPerSecond: 7 } }, sites: { acme: 'small' } }));
    await rename(`${file}.tmp`, file);
    // Not yet due: the plans in force stay without touching the disk.
    expect(source.current().planFor('acme').limits.requestsPerSecond).toBe(5);
    clock = 500;
    await source.refresh();
    expect(source.current().planFor('acme').limits.requestsPerSecond).toBe(7);

    await writeFile(`${file}.tmp`, JSON.stringify({ plans: { small: { requestsPerSecond: 'fast' } }, sites: { acme: 'small' } }));
    await rename(`${file}.tmp`, file);
    clock = 1000;
    await source.refresh();
    expect(source.current().planFor('acme').limits.requestsPerSecond).toBe(7);
    expect(reloads).toEqual(['ok', expect.stringContaining('plans.small.requestsPerSecond')]);

    await rm(file);
    clock = 1500;
    await source.refresh();
    expect(source.current().planFor('acme').limits.requestsPerSecond).toBe(7);
  });

  it('puts every site on the built-in default without a file', async () => {
    const source = await loadPlansSource({ file: undefined, checkIntervalMs: 0 });
    expect(source.current().planFor('acme')).toEqual({ name: 'default', limits: DEFAULT_PLAN_WITHOUT_FILE });
    expect(source.current().planFor('acme').limits.components).toBe(true);
  });

  it('allows site components only on plans that say so when there is a file, its default included', () => {
    const result = parsePlansFile(JSON.stringify({ plans: { studio: { components: true }, small: { requestsPerSecond: 5 } }, sites: { acme: 'studio', docs: 'small' } }), 'plans.json');
    if (!result.ok) throw new Error('expected a valid file');
    expect(result.book.planFor('acme').limits.components).toBe(true);
    expect(result.book.planFor('docs').limits.components).toBe(false);
    expect(result.book.planFor('blog').limits.components).toBe(false);
    const wrong = parsePlansFile(JSON.stringify({ plans: { studio: { components: 'yes' } } }), 'plans.json');
    expect(wrong.ok ? [] : wrong.issues.map((i) => i.field)).toEqual(['plans.studio.components']);
  });
});
