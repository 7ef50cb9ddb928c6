import { describe, expect, it } from 'vitest';
import type { StatusResult } from '#agent/model';
import { plan, wave } from '../../../test/support/rollout-plans.js';
import { startRollout } from '../rollout/index.js';
import { captureHealthBaseline, healthBeforeOf } from './rollout-baseline.js';
import { reportFromStatus, type SiteReport, unreachableReport } from './site-report.js';

const C = 'c'.repeat(40);

function reportWith(health: Record<string, 'up' | 'down' | 'unknown'>): SiteReport {
  const status = {
    health: Object.entries(health).map(([name, state]) => ({
      name,
      state,
      since: null,
      probing: true,
      latencyMs: null,
      loss: 0,
      transitions: [],
    })),
  } as unknown as StatusResult;
  return reportFromStatus(status, 1);
}

describe('captureHealthBaseline', () => {
  it('keeps per planned site the providers up; sites with none up, and unplanned sites, are left out', () => {
    const p = plan([wave('canary', ['a']), wave('rest', ['b', 'c', 'd'])], { commit: C });
    const reports = new Map<string, SiteReport>([
      ['a', reportWith({ isp1: 'up', isp2: 'down', vpn: 'up' })],
      ['b', reportWith({ isp1: 'down', isp2: 'unknown' })],
      ['c', unreachableReport('connection refused', 2)],
      ['e', reportWith({ isp1: 'up' })], // unchanged: not in the plan
    ]);
    expect(captureHealthBaseline(p, reports)).toEqual({ commit: C, upBefore: { a: ['isp1', 'vpn'] } });
  });
});

describe('healthBeforeOf', () => {
  const rollout = startRollout(plan([wave('all', ['a', 'b'])], { commit: C })).state;

  it('gives every planned site its providers up before, as up; a site left out had none up', () => {
    expect(healthBeforeOf(rollout, { commit: C, upBefore: { a: ['isp1'] } })).toEqual(
      new Map([
        ['a', [{ name: 'isp1', state: 'up' }]],
        ['b', []],
      ]),
    );
  });

  it.each([
    ['no baseline (an older state file)', undefined],
    ['the baseline of another commit', { commit: 'd'.repeat(40), upBefore: { a: ['isp1'] } }],
  ])('%s → undefined (the caller falls back)', (_name, baseline) => {
    expect(healthBeforeOf(rollout, baseline)).toBeUndefined();
  });
});
