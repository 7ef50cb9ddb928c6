import { describe, expect, it } from 'vitest';
import type { StatusResult } from '#agent/model';
import { plan, wave } from '../../../test/support/rollout-plans.js';
import { startRollout } from '../rollout/index.js';
import type { SiteHistory } from '../state/index.js';
import { backoffAfter, chooseReconcile, type ReconcileInput } from './choose-reconcile.js';
import { reportFromStatus, type SiteReport, unreachableReport } from './site-report.js';

const C = '1'.repeat(40);
const desired = new Map([
  ['a', 'HA'],
  ['b', 'HB'],
  ['c', 'HC'],
]);

function runs(hash: string | null, pending = false): SiteReport {
  return reportFromStatus(
    {
      applied: hash ? { generation: 'g', hash, site: 's', at: 1 } : null,
      pending: pending ? { generation: 'p', hash: 'HX', site: 's', at: 1, deadline: 2 } : null,
    } as StatusResult,
    100,
  );
}

const done = { ...startRollout(plan([wave('w', ['a'])], { commit: C })).state, phase: 'done' as const };
const attempt = (outcome: string, hash: string): SiteHistory => ({
  lastAttempted: { generation: 'g', hash, commit: C, at: 50, outcome: outcome as 'applied' },
});

function input(over: Partial<ReconcileInput> = {}): ReconcileInput {
  return {
    mode: 'auto',
    commit: C,
    desired,
    reports: new Map([
      ['a', runs('HA')],
      ['b', runs('OLD')],
      ['c', runs('HC')],
    ]),
    history: {},
    rollout: done,
    busy: false,
    fleetSuspended: false,
    suspendedSites: new Set(),
    now: 1_000,
    ...over,
  };
}

describe('chooseReconcile', () => {
  it('auto: every reachable site behind the commit in force, nothing pending', () => {
    expect(chooseReconcile(input())).toEqual({ sites: ['b'], blocked: null });
    const reports = new Map([
      ['a', runs(null)],
      ['b', runs('OLD', true)],
      ['c', unreachableReport('refused', 100)],
    ]);
    expect(chooseReconcile(input({ reports })).sites).toEqual(['a']);
  });

  it('report: only the sites the rollout missed (unreachable then, answering now)', () => {
    expect(chooseReconcile(input({ mode: 'report' })).sites).toEqual([]);
    expect(
      chooseReconcile(input({ mode: 'report', history: { b: attempt('unreachable', 'HB') } })).sites,
    ).toEqual(['b']);
  });

  it('a failed attempt waits for its backoff; a missed one does not', () => {
    const history = {
      b: { ...attempt('refused', 'HB'), reconcile: { hash: 'HB', failures: 1, nextAt: 2_000 } },
    };
    expect(chooseReconcile(input({ history })).sites).toEqual([]);
    expect(chooseReconcile(input({ history, now: 2_000 })).sites).toEqual(['b']);
    // A backoff for another (older) target does not hold the new one back.
    expect(
      chooseReconcile(input({ history: { b: { reconcile: { hash: 'OLDER', failures: 3, nextAt: 9e9 } } } }))
        .sites,
    ).toEqual(['b']);
  });

  it('blocked while suspended, busy, before the commit rolled out, or after a halt; suspended sites are left out', () => {
    expect(chooseReconcile(input({ fleetSuspended: true }))).toEqual({ sites: [], blocked: 'suspended' });
    expect(chooseReconcile(input({ busy: true })).blocked).toBe('a rollout is in flight');
    expect(chooseReconcile(input({ rollout: null })).blocked).toMatch(/not been rolled out/);
    expect(chooseReconcile(input({ rollout: { ...done, phase: 'halted' } })).blocked).toBe(
      'the last rollout is halted',
    );
    expect(chooseReconcile(input({ suspendedSites: new Set(['b']) })).sites).toEqual([]);
  });

  it('backoff doubles up to its maximum', () => {
    expect([1, 2, 3, 4, 10].map((n) => backoffAfter(n, 60_000, 300_000))).toEqual([
      60_000, 120_000, 240_000, 300_000, 300_000,
    ]);
  });
});
