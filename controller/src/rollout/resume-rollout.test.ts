import { describe, expect, it } from 'vitest';
import type { ReportedSite } from './plan-rollout.js';
import { mergeReportedIntoRollout, resumeRollout } from './resume-rollout.js';
import {
  type RolloutState,
  type SiteProgress,
  siteProgress,
  startRollout,
  stepRollout,
} from './step-rollout.js';

type Progress = Omit<SiteProgress, 'site'>;

import { plan, wave } from '../../../test/support/rollout-plans.js';

const p = plan([
  wave('canary', ['a']),
  wave('rest', ['b', 'c', 'd', 'e'], { concurrency: 4, maxFailures: 4 }),
]);

/** A rollout in the middle of wave `rest`, with the given statuses forced in. */
function midRollout(
  perSite: Record<string, Progress>,
  phase: RolloutState['phase'] = 'running',
): RolloutState {
  let s = startRollout(p).state;
  s = stepRollout(s, { type: 'siteSucceeded', site: 'a', healthy: true }).state;
  return {
    ...s,
    phase,
    perSite: s.perSite.map((p): SiteProgress => {
      const forced = perSite[p.site];
      return forced ? { site: p.site, ...forced } : p;
    }),
  };
}

const report = (appliedHash?: string, pendingHash?: string): ReportedSite => ({
  reachable: true,
  appliedHash,
  pendingHash,
});

interface Case {
  name: string;
  before: Progress;
  report?: ReportedSite;
  after: Partial<Progress>;
  confirm?: boolean;
  phase?: RolloutState['phase'];
}

const applying: Progress = { status: 'applying', attempts: 1 };
const cases: Case[] = [
  {
    name: 'applying, agent has the plan hash → confirmed',
    before: applying,
    report: report('h-b'),
    after: { status: 'confirmed' },
  },
  {
    name: 'applying, agent holds it pending → confirm only',
    before: applying,
    report: report('old-b', 'h-b'),
    after: { status: 'applying', attempts: 1 },
    confirm: true,
  },
  {
    name: 'applying, agent has the old hash → pending again (never skipped)',
    before: applying,
    report: report('old-b'),
    after: { status: 'pending', attempts: 1 },
  },
  {
    name: 'applying, agent unreachable → pending again',
    before: applying,
    report: { reachable: false, appliedHash: 'h-b' },
    after: { status: 'pending' },
  },
  { name: 'applying, no report → pending again', before: applying, after: { status: 'pending' } },
  {
    name: 'pending, agent already has the plan hash → confirmed',
    before: { status: 'pending', attempts: 0 },
    report: report('h-b'),
    after: { status: 'confirmed' },
  },
  {
    name: 'pending but the agent holds it pending (state written before the dispatch was) → confirm only',
    before: { status: 'pending', attempts: 0 },
    report: report('old-b', 'h-b'),
    after: { status: 'applying', attempts: 1 },
    confirm: true,
  },
  {
    name: 'confirmed stays confirmed even if the agent now reports another hash (drift, not this rollout)',
    before: { status: 'confirmed', attempts: 1 },
    report: report('other'),
    after: { status: 'confirmed' },
  },
  {
    name: 'unreachable but the agent has the plan hash → confirmed',
    before: { status: 'unreachable', attempts: 1, failure: 'unreachable', error: 'timeout' },
    report: report('h-b'),
    after: { status: 'confirmed', failure: undefined, error: undefined },
  },
  {
    name: 'unhealthy stays failed although applied',
    before: { status: 'failed', attempts: 1, failure: 'unhealthy' },
    report: report('h-b'),
    after: { status: 'failed', failure: 'unhealthy' },
  },
  {
    name: 'refused stays failed when the agent does not have it',
    before: { status: 'failed', attempts: 1, failure: 'refused' },
    report: report('old-b'),
    after: { status: 'failed', failure: 'refused' },
  },
  {
    name: 'halted: a pending apply is left to the agent deadline, not confirmed',
    before: applying,
    report: report('old-b', 'h-b'),
    after: { status: 'reverted', failure: 'unconfirmed' },
    phase: 'halted',
  },
];

describe('mergeReportedIntoRollout', () => {
  it.each(cases)('$name', (c) => {
    const state = midRollout({ b: c.before }, c.phase);
    const reported = new Map<string, ReportedSite>(c.report ? [['b', c.report]] : []);
    const merged = mergeReportedIntoRollout(state, reported);
    const entries = Object.entries(c.after);
    expect(siteProgress(merged.state, 'b')).toMatchObject(
      Object.fromEntries(entries.filter(([, v]) => v !== undefined)),
    );
    for (const [k] of entries.filter(([, v]) => v === undefined))
      expect(siteProgress(merged.state, 'b')).not.toHaveProperty(k);
    expect(merged.confirm).toEqual(c.confirm ? ['b'] : []);
  });
});

describe('resumeRollout', () => {
  it('after a crash mid-wave: confirms what is pending, re-applies what is not, never re-applies confirmed sites', () => {
    // Crash with b..e in flight. b landed, c is pending confirmation, d never got there, e unreachable now.
    const crashed = midRollout({
      b: applying,
      c: applying,
      d: applying,
      e: applying,
    });
    const reported = new Map<string, ReportedSite>([
      ['a', report('h-a')],
      ['b', report('h-b')],
      ['c', report('old-c', 'h-c')],
      ['d', report('old-d')],
      ['e', { reachable: false }],
    ]);
    const { state, actions } = resumeRollout(crashed, reported);
    expect(actions).toEqual([
      { type: 'confirm', wave: 'rest', sites: [p.waves[1]!.sites[1]] },
      { type: 'start', wave: 'rest', sites: [p.waves[1]!.sites[2], p.waves[1]!.sites[3]] },
    ]);
    expect(Object.fromEntries(state.perSite.map((v) => [v.site, [v.status, v.attempts]]))).toEqual({
      a: ['confirmed', 1],
      b: ['confirmed', 1],
      c: ['applying', 1],
      d: ['applying', 2],
      e: ['applying', 2],
    });
  });

  it('a resumed wave whose sites all turn out confirmed passes and the next starts', () => {
    const p2 = plan([wave('canary', ['a']), wave('rest', ['b'])]);
    const crashed = startRollout(p2).state; // a applying
    const { actions } = resumeRollout(crashed, new Map([['a', report('h-a')]]));
    expect(actions.map((a) => a.type)).toEqual(['wavePassed', 'start']);
  });

  it('repeats a rollback that never reported back', () => {
    const halted = midRollout({ b: { status: 'confirmed', attempts: 1, rollingBack: true } }, 'halted');
    const { actions } = resumeRollout(halted, new Map());
    expect(actions).toEqual([{ type: 'rollback', sites: [p.waves[1]!.sites[0]] }]);
  });
});
