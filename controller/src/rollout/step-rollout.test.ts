import { describe, expect, it } from 'vitest';
import { plan, wave } from '../../../test/support/rollout-plans.js';
import type { RolloutPlan } from './plan-rollout.js';
import {
  continueRollout,
  isSettled,
  type RolloutAction,
  type RolloutEvent,
  type RolloutState,
  siteProgress,
  startRollout,
  stepRollout,
} from './step-rollout.js';

/** Starts the plan, feeds the events, and returns the last state with every action, in order. */
function run(p: RolloutPlan, events: RolloutEvent[]): { state: RolloutState; actions: RolloutAction[] } {
  const first = startRollout(p);
  let state = first.state;
  const actions = [...first.actions];
  for (const e of events) {
    const step = stepRollout(state, e);
    state = step.state;
    actions.push(...step.actions);
  }
  return { state, actions };
}

/** Actions as short strings: `start:w1:a,b`, `bake:w1:1000`, `passed:w1`, `halt:w1:a`, `rollback:a`, … */
function brief(actions: RolloutAction[]): string[] {
  return actions.map(describeAction);
}

function describeAction(a: RolloutAction): string {
  switch (a.type) {
    case 'start':
    case 'confirm':
      return `${a.type}:${a.wave}:${a.sites.map((s) => s.site).join(',')}`;
    case 'startBake':
      return `bake:${a.wave}:${a.bakeMs}`;
    case 'wavePassed':
      return `passed:${a.wave}`;
    case 'halt':
      return `halt:${a.halt.wave}:${a.halt.failed.join(',')}`;
    case 'rollback':
      return `rollback:${a.sites.map((s) => s.site).join(',')}`;
    case 'done':
      return 'done';
    case 'superseded':
      return `superseded:${a.by}`;
    case 'suspended':
      return 'suspended';
    case 'ignored':
      return 'ignored';
  }
}

const ok = (site: string): RolloutEvent => ({ type: 'siteSucceeded', site, healthy: true });
const fail = (
  site: string,
  kind: 'failed' | 'refused' | 'unconfirmed' | 'unreachable' = 'failed',
): RolloutEvent => ({
  type: 'siteFailed',
  site,
  kind,
  error: `${kind} here`,
});
const statuses = (s: RolloutState) => Object.fromEntries(s.perSite.map((v) => [v.site, v.status]));

interface Case {
  name: string;
  plan: RolloutPlan;
  events: RolloutEvent[];
  actions: string[];
  phase: RolloutState['phase'];
  statuses?: Record<string, string>;
}

const twoWaves = plan([wave('canary', ['a']), wave('rest', ['b', 'c'], { concurrency: 2 })]);

const cases: Case[] = [
  {
    name: 'waves run in order, each after the previous one confirmed',
    plan: twoWaves,
    events: [ok('a'), ok('c'), ok('b')],
    actions: ['start:canary:a', 'passed:canary', 'start:rest:b,c', 'passed:rest', 'done'],
    phase: 'done',
    statuses: { a: 'confirmed', b: 'confirmed', c: 'confirmed' },
  },
  {
    name: 'an empty plan is done at once',
    plan: plan([]),
    events: [],
    actions: ['done'],
    phase: 'done',
  },
  {
    name: 'concurrency: one slot refilled as each site lands',
    plan: plan([wave('w', ['a', 'b', 'c'], { concurrency: 2 })]),
    events: [ok('b'), ok('a'), ok('c')],
    actions: ['start:w:a,b', 'start:w:c', 'passed:w', 'done'],
    phase: 'done',
  },
  {
    name: 'the wave passes only after the bake elapsed',
    plan: plan([wave('canary', ['a'], { bakeMs: 1000 }), wave('rest', ['b'])]),
    events: [
      ok('a'),
      { type: 'bakeStarted', now: 5000 },
      { type: 'tick', now: 5999 },
      { type: 'tick', now: 6000 },
      ok('b'),
    ],
    actions: ['start:canary:a', 'bake:canary:1000', 'passed:canary', 'start:rest:b', 'passed:rest', 'done'],
    phase: 'done',
  },
  {
    name: 'ticks before the bake clock started do nothing',
    plan: plan([wave('canary', ['a'], { bakeMs: 1000 })]),
    events: [ok('a'), { type: 'tick', now: 10_000_000 }],
    actions: ['start:canary:a', 'bake:canary:1000'],
    phase: 'baking',
  },
  {
    name: 'confirmed but unhealthy is a failure: the canary halts the rollout, later waves untouched',
    plan: twoWaves,
    events: [{ type: 'siteSucceeded', site: 'a', healthy: false }],
    actions: ['start:canary:a', 'halt:canary:a'],
    phase: 'halted',
    statuses: { a: 'failed', b: 'pending', c: 'pending' },
  },
  {
    name: 'a failed canary halts; without rollbackOnFailure nothing is rolled back',
    plan: twoWaves,
    events: [fail('a', 'refused')],
    actions: ['start:canary:a', 'halt:canary:a'],
    phase: 'halted',
    statuses: { a: 'failed', b: 'pending', c: 'pending' },
  },
  {
    name: 'an unconfirmed apply counts as reverted and halts',
    plan: twoWaves,
    events: [fail('a', 'unconfirmed')],
    actions: ['start:canary:a', 'halt:canary:a'],
    phase: 'halted',
    statuses: { a: 'reverted', b: 'pending', c: 'pending' },
  },
  {
    name: 'an unreachable site counts against the budget',
    plan: plan([wave('w', ['a', 'b'], { concurrency: 2, maxFailures: 0 }), wave('rest', ['c'])]),
    events: [ok('a'), fail('b', 'unreachable')],
    actions: ['start:w:a,b', 'halt:w:b'],
    phase: 'halted',
    statuses: { a: 'confirmed', b: 'unreachable', c: 'pending' },
  },
  {
    name: 'failures within the budget let the wave pass',
    plan: plan([wave('w', ['a', 'b', 'c'], { concurrency: 3, maxFailures: 1 }), wave('rest', ['d'])]),
    events: [fail('a', 'unreachable'), ok('b'), ok('c'), ok('d')],
    actions: ['start:w:a,b,c', 'passed:w', 'start:rest:d', 'passed:rest', 'done'],
    phase: 'done',
    statuses: { a: 'unreachable', b: 'confirmed', c: 'confirmed', d: 'confirmed' },
  },
  {
    name: 'beyond the budget the wave halts at once and starts no more sites',
    plan: plan([wave('w', ['a', 'b', 'c', 'd'], { concurrency: 2, maxFailures: 1 })]),
    events: [fail('a'), fail('b'), ok('c')],
    actions: ['start:w:a,b', 'start:w:c', 'halt:w:a,b'],
    phase: 'halted',
    // c was in flight: its result is recorded; d never starts.
    statuses: { a: 'failed', b: 'failed', c: 'confirmed', d: 'pending' },
  },
  {
    name: 'rollbackOnFailure rolls back the sites this rollout updated, across waves',
    plan: plan([wave('canary', ['a']), wave('w', ['b', 'c', 'd'], { concurrency: 3 })], {
      rollbackOnFailure: true,
    }),
    events: [ok('a'), ok('b'), fail('c')],
    actions: ['start:canary:a', 'passed:canary', 'start:w:b,c,d', 'halt:w:c', 'rollback:a,b'],
    phase: 'halted',
  },
  {
    name: 'an in-flight site that lands after the halt is rolled back too',
    plan: plan([wave('w', ['a', 'b'], { concurrency: 2 })], { rollbackOnFailure: true }),
    events: [fail('a'), ok('b'), { type: 'siteRolledBack', site: 'b', ok: true }],
    actions: ['start:w:a,b', 'halt:w:a', 'rollback:b'],
    phase: 'halted',
    statuses: { a: 'failed', b: 'rolled-back' },
  },
  {
    name: 'an unhealthy site is rolled back (it did apply); a failed one is not (the agent restored it)',
    plan: plan([wave('w', ['a', 'b'], { concurrency: 2, maxFailures: 1 })], { rollbackOnFailure: true }),
    events: [{ type: 'siteSucceeded', site: 'a', healthy: false }, fail('b')],
    actions: ['start:w:a,b', 'halt:w:a,b', 'rollback:a'],
    phase: 'halted',
  },
  {
    name: 'a site turning unhealthy during the bake halts the wave',
    plan: plan([wave('w', ['a'], { bakeMs: 60_000 }), wave('rest', ['b'])], { rollbackOnFailure: true }),
    events: [
      ok('a'),
      { type: 'bakeStarted', now: 0 },
      { type: 'siteUnhealthy', site: 'a', error: 'isp1 down' },
      { type: 'tick', now: 60_000 },
    ],
    actions: ['start:w:a', 'bake:w:60000', 'halt:w:a', 'rollback:a'],
    phase: 'halted',
    statuses: { a: 'failed', b: 'pending' },
  },
  {
    name: 'a new commit mid-wave waits for the wave boundary, then supersedes',
    plan: plan([wave('canary', ['a'], { bakeMs: 100 }), wave('rest', ['b'])]),
    events: [
      { type: 'newCommit', commit: 'c2' },
      ok('a'),
      { type: 'bakeStarted', now: 0 },
      { type: 'tick', now: 100 },
    ],
    actions: ['start:canary:a', 'bake:canary:100', 'passed:canary', 'superseded:c2'],
    phase: 'superseded',
    statuses: { a: 'confirmed', b: 'pending' },
  },
  {
    name: 'the newest of several commits wins',
    plan: twoWaves,
    events: [{ type: 'newCommit', commit: 'c2' }, { type: 'newCommit', commit: 'c3' }, ok('a')],
    actions: ['start:canary:a', 'passed:canary', 'superseded:c3'],
    phase: 'superseded',
  },
  {
    name: 'a new commit during the last wave lets the rollout finish',
    plan: plan([wave('w', ['a'])]),
    events: [{ type: 'newCommit', commit: 'c2' }, ok('a')],
    actions: ['start:w:a', 'passed:w', 'done'],
    phase: 'done',
  },
  {
    name: 'a failure during a superseded wave still halts',
    plan: twoWaves,
    events: [{ type: 'newCommit', commit: 'c2' }, fail('a')],
    actions: ['start:canary:a', 'halt:canary:a'],
    phase: 'halted',
  },
  {
    name: "the rollout's own commit, and a commit after the end, are ignored",
    plan: plan([wave('w', ['a'])]),
    events: [{ type: 'newCommit', commit: 'c1' }, ok('a'), { type: 'newCommit', commit: 'c2' }],
    actions: ['start:w:a', 'ignored', 'passed:w', 'done', 'ignored'],
    phase: 'done',
  },
  {
    name: 'suspension mid-wave lets the wave finish, then stops at the boundary',
    plan: twoWaves,
    events: [{ type: 'suspend' }, ok('a')],
    actions: ['start:canary:a', 'passed:canary', 'suspended'],
    phase: 'suspended',
    statuses: { a: 'confirmed', b: 'pending', c: 'pending' },
  },
  {
    name: 'a resume before the boundary cancels the suspension',
    plan: twoWaves,
    events: [{ type: 'suspend' }, { type: 'resume' }, ok('a'), ok('b'), ok('c')],
    actions: ['start:canary:a', 'passed:canary', 'start:rest:b,c', 'passed:rest', 'done'],
    phase: 'done',
  },
  {
    name: 'a failure in a suspending wave still halts',
    plan: plan([wave('w', ['a', 'b'], { concurrency: 2 })]),
    events: [{ type: 'suspend' }, ok('a'), fail('b')],
    actions: ['start:w:a,b', 'halt:w:b'],
    phase: 'halted',
  },
  {
    name: 'late and repeated reports are ignored',
    plan: twoWaves,
    events: [ok('b'), ok('a'), ok('a'), fail('zz'), { type: 'bakeStarted', now: 1 }],
    actions: [
      'start:canary:a',
      'ignored',
      'passed:canary',
      'start:rest:b,c',
      'ignored',
      'ignored',
      'ignored',
    ],
    phase: 'running',
  },
];

describe('stepRollout', () => {
  it.each(cases)('$name', (c) => {
    const { state, actions } = run(c.plan, c.events);
    expect(brief(actions)).toEqual(c.actions);
    expect(state.phase).toBe(c.phase);
    if (c.statuses) expect(statuses(state)).toEqual(c.statuses);
  });

  it('counts attempts and keeps the error of a failure', () => {
    const { state } = run(twoWaves, [fail('a', 'unreachable')]);
    expect(siteProgress(state, 'a')).toEqual({
      site: 'a',
      status: 'unreachable',
      attempts: 1,
      failure: 'unreachable',
      error: 'unreachable here',
    });
    expect(state.halt).toEqual({
      wave: 'canary',
      failed: ['a'],
      reason: 'wave canary: 1 site(s) failed, more than its failure budget of 0',
    });
  });

  it('is settled only when terminal with nothing in flight and no rollback outstanding', () => {
    const p = plan([wave('w', ['a', 'b'], { concurrency: 2 })], { rollbackOnFailure: true });
    let { state } = run(p, [fail('a')]);
    expect(state.phase).toBe('halted');
    expect(isSettled(state)).toBe(false); // b is in flight
    state = stepRollout(state, ok('b')).state;
    expect(isSettled(state)).toBe(false); // b is being rolled back
    state = stepRollout(state, { type: 'siteRolledBack', site: 'b', ok: false, error: 'ssh down' }).state;
    expect(isSettled(state)).toBe(true);
    expect(siteProgress(state, 'b')).toMatchObject({
      status: 'confirmed',
      error: 'rollback failed: ssh down',
    });
  });

  it('state is plain JSON: a persisted copy steps the same way', () => {
    const { state } = run(twoWaves, [ok('a')]);
    const copy = JSON.parse(JSON.stringify(state)) as RolloutState;
    expect(stepRollout(copy, ok('b'))).toEqual(stepRollout(state, ok('b')));
  });

  it('continueRollout asks again for a bake clock that was never started', () => {
    const p = plan([wave('w', ['a'], { bakeMs: 500 })]);
    const { state } = run(p, [ok('a')]);
    expect(brief([...continueRollout(state).actions])).toEqual(['bake:w:500']);
    const baking = stepRollout(state, { type: 'bakeStarted', now: 0 }).state;
    expect(continueRollout(baking).actions).toEqual([]);
  });

  it('does not mutate the state it is given', () => {
    const first = startRollout(twoWaves).state;
    const frozen = JSON.stringify(first);
    stepRollout(first, ok('a'));
    stepRollout(first, fail('a'));
    expect(JSON.stringify(first)).toBe(frozen);
  });
});
