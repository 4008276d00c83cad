import { describe, expect, it } from 'vitest';
import { orderDue } from '../../astro-multi-tenant/server/tls/order-queue.ts';
import type { CertificateRecord } from '../../astro-multi-tenant/server/tls/certificate-store.ts';

const DAY = 86_400_000;
const now = 1_000 * DAY;
const cert = (daysLeft: number): CertificateRecord => ({ site: 's', serial: 'AA', notBefore: now - 80 * DAY, notAfter: now + daysLeft * DAY, failures: 0 });

describe('the order of due certificates', () => {
  it('renews a certificate about to expire before any new name, then new names, then the other renewals soonest first', () => {
    const records = new Map([['soon.test', cert(3)], ['later.test', cert(20)], ['mid.test', cert(10)], ['gone.test', cert(-1)]]);
    const due = [['new.test', 's'], ['later.test', 's'], ['mid.test', 's'], ['soon.test', 's'], ['gone.test', 's']] as const;
    expect(orderDue(due, records, now).map(([h]) => h)).toEqual(['gone.test', 'soon.test', 'new.test', 'mid.test', 'later.test']);
  });

  it('lets sites take turns: each site\'s first host before any site\'s second, whatever order the hosts were listed in', () => {
    const due = [['a1.test', 'a'], ['a2.test', 'a'], ['a3.test', 'a'], ['b1.test', 'b'], ['c1.test', 'c'], ['c2.test', 'c']] as const;
    expect(orderDue(due, new Map(), now)).toEqual([['a1.test', 'a'], ['b1.test', 'b'], ['c1.test', 'c'], ['a2.test', 'a'], ['c2.test', 'c'], ['a3.test', 'a']]);
  });
});
