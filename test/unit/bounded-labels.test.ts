import { describe, it, expect } from 'vitest';
import { OTHER_LABEL, createBoundedLabels, methodLabel, statusClass } from '../../astro-multi-tenant/server/ops/bounded-labels.ts';

describe('createBoundedLabels', () => {
  it('lets the first N distinct sites keep their own label and counts every later one as _other', () => {
    const labels = createBoundedLabels(2);
    expect(labels.label('alpha')).toBe('alpha');
    expect(labels.label('beta')).toBe('beta');
    expect(labels.label('gamma')).toBe(OTHER_LABEL);
    expect(labels.label('delta')).toBe('_other');
    expect(labels.size).toBe(2);
  });

  it('keeps a labelled site labelled forever, however many newcomers arrive after it', () => {
    const labels = createBoundedLabels(2);
    labels.label('alpha');
    labels.label('beta');
    for (let i = 0; i < 1000; i++) labels.label(`site-${i}`);
    expect(labels.label('alpha')).toBe('alpha');
    expect(labels.label('beta')).toBe('beta');
    expect(labels.label('site-0')).toBe(OTHER_LABEL);
    expect(labels.size).toBe(2);
  });

  it('does not spend a slot on a site it has already labelled', () => {
    const labels = createBoundedLabels(2);
    expect(labels.label('alpha')).toBe('alpha');
    expect(labels.label('alpha')).toBe('alpha');
    expect(labels.label('alpha')).toBe('alpha');
    expect(labels.size).toBe(1);
    expect(labels.label('beta')).toBe('beta');
  });

  it('labels everything _other when the limit is zero', () => {
    const labels = createBoundedLabels(0);
    expect(labels.label('alpha')).toBe(OTHER_LABEL);
    expect(labels.size).toBe(0);
  });

  it('gives each label set its own budget', () => {
    const a = createBoundedLabels(1);
    const b = createBoundedLabels(1);
    expect(a.label('alpha')).toBe('alpha');
    expect(b.label('beta')).toBe('beta');
    expect(a.label('beta')).toBe(OTHER_LABEL);
  });
});

describe('statusClass', () => {
  it('maps every real status to its class', () => {
    expect(statusClass(100)).toBe('1xx');
    expect(statusClass(200)).toBe('2xx');
    expect(statusClass(204)).toBe('2xx');
    expect(statusClass(301)).toBe('3xx');
    expect(statusClass(404)).toBe('4xx');
    expect(statusClass(499)).toBe('4xx');
    expect(statusClass(500)).toBe('5xx');
    expect(statusClass(599)).toBe('5xx');
  });

  it('folds statuses outside 100..599 into a single "other" class', () => {
    for (const status of [0, -1, 99, 600, 700, 999, 1000, Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(statusClass(status), String(status)).toBe('other');
    }
  });
});

describe('methodLabel', () => {
  it('keeps GET, HEAD and POST as they are', () => {
    expect(methodLabel('GET')).toBe('GET');
    expect(methodLabel('HEAD')).toBe('HEAD');
    expect(methodLabel('POST')).toBe('POST');
  });

  it('counts made-up, unusual, lower-case and missing methods as OTHER', () => {
    for (const method of ['PUT', 'DELETE', 'OPTIONS', 'PATCH', 'BREW', 'get', 'X'.repeat(200), '', undefined]) {
      expect(methodLabel(method)).toBe('OTHER');
    }
  });
});
