import { describe, it, expect } from 'vitest';
import { clusterProblem } from '../../astro-multi-tenant/server/session/embedded-mode.ts';

const cluster = (instances: string) => ({ exec_mode: 'cluster_mode', instances });

describe('clusterProblem', () => {
  it('lets a single process run without Redis (embedded sessions)', () => {
    expect(clusterProblem({}, false, false)).toBeUndefined();
    expect(clusterProblem({ NODE_ENV: 'production' }, false, false)).toBeUndefined();
  });

  it('lets a PM2 fork-mode process run without Redis', () => {
    expect(clusterProblem({ exec_mode: 'fork_mode', instances: '1' }, false, false)).toBeUndefined();
  });

  it('refuses a PM2 cluster of 2 instances without Redis, naming REDIS_URL', () => {
    const problem = clusterProblem(cluster('2'), false, false);
    expect(problem).toBeDefined();
    expect(problem).toContain('REDIS_URL');
    expect(problem).toContain('2 instances');
  });

  it('refuses a cluster of "max" or 0 instances (all cores) without Redis', () => {
    expect(clusterProblem(cluster('max'), false, false)).toContain('REDIS_URL');
    expect(clusterProblem(cluster('0'), false, false)).toContain('REDIS_URL');
    expect(clusterProblem(cluster('-1'), false, false)).toContain('REDIS_URL');
  });

  it('lets a PM2 cluster of 1 instance run without Redis', () => {
    expect(clusterProblem(cluster('1'), false, false)).toBeUndefined();
  });

  it('refuses Redis without SESSION_KEYS, even for one process', () => {
    for (const env of [{}, cluster('1'), cluster('4')]) {
      const problem = clusterProblem(env, true, false);
      expect(problem, JSON.stringify(env)).toContain('SESSION_KEYS');
      expect(problem).not.toContain('REDIS_URL is not set');
    }
  });

  it('lets a cluster with Redis and SESSION_KEYS run', () => {
    expect(clusterProblem(cluster('4'), true, true)).toBeUndefined();
    expect(clusterProblem({}, true, true)).toBeUndefined();
  });

  it('complains about the missing Redis first when a cluster has neither Redis nor keys', () => {
    expect(clusterProblem(cluster('3'), false, false)).toContain('REDIS_URL');
  });
});
