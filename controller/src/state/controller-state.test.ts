import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { plan, wave } from '../../../test/support/rollout-plans.js';
import { UplinkError } from '../errors.js';
import type { ReportedSite } from '../rollout/plan-rollout.js';
import { resumeRollout } from '../rollout/resume-rollout.js';
import { startRollout, stepRollout } from '../rollout/step-rollout.js';
import {
  CONTROLLER_STATE_FILE,
  type ControllerState,
  ControllerStateStore,
  cachedReports,
  emptyControllerState,
  parseControllerState,
  readControllerState,
  recordGoodCommit,
  recordInvalidCommit,
  recordSiteOutcome,
  type SiteRecord,
  withHealthBaseline,
  withRollout,
  writeControllerState,
} from './controller-state.js';
import { writeFileAtomic } from './write-file-atomic.js';

const C1 = 'a'.repeat(40);
const C2 = 'b'.repeat(40);
const record = (outcome: SiteRecord['outcome'], hash = 'h2', generation = 'g2'): SiteRecord => ({
  generation,
  hash,
  commit: C2,
  at: 1_800_000_000_000,
  outcome,
});

let dir: string;
let file: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'uplink-state-'));
  file = join(dir, CONTROLLER_STATE_FILE);
});
afterEach(() => rm(dir, { recursive: true, force: true }));

function fullState(): ControllerState {
  let s = emptyControllerState();
  s = recordSiteOutcome(s, 'a', record('applied'));
  s = recordSiteOutcome(s, 'b', record('unreachable'));
  s = recordGoodCommit(s, C2);
  s = recordInvalidCommit(s, {
    commit: C1,
    at: 1_800_000_000_000,
    reason: 'invalid-spec',
    message: '1 error',
    diagnostics: [
      { severity: 'error', file: 'sites/a.yaml', line: 3, col: 5, path: 'providers[0]', message: 'bad' },
    ],
  });
  const p = plan([wave('canary', ['a'], { bakeMs: 1000 }), wave('rest', ['b', 'c'], { concurrency: 2 })], {
    commit: C2,
  });
  let r = startRollout(p).state;
  r = stepRollout(r, { type: 'siteSucceeded', site: 'a', healthy: true }).state;
  r = stepRollout(r, { type: 'bakeStarted', now: 5 }).state;
  r = stepRollout(r, { type: 'newCommit', commit: C1 }).state;
  return withRollout(s, r);
}

describe('controller state file', () => {
  it('a missing file is an empty state', async () => {
    expect(await readControllerState(file)).toEqual(emptyControllerState());
  });

  it('round-trips, and leaves no temporary file behind', async () => {
    const state = fullState();
    await writeControllerState(file, state);
    expect(await readControllerState(file)).toEqual(state);
    expect(await readdir(dir)).toEqual([CONTROLLER_STATE_FILE]);
  });

  it.each([
    ['empty', '', /not JSON/],
    ['truncated', JSON.stringify(emptyControllerState()).slice(0, 20), /not JSON/],
    ['another version', JSON.stringify({ ...emptyControllerState(), version: 2 }), /version 2 is not 1/],
    [
      'a wrong field',
      JSON.stringify({ ...emptyControllerState(), lastGoodCommit: 'main' }),
      /at lastGoodCommit/,
    ],
    ['an unknown field', JSON.stringify({ ...emptyControllerState(), extra: 1 }), /corrupt at \(top level\)/],
    [
      'a baseline with a bad provider list',
      JSON.stringify({ ...emptyControllerState(), healthBaseline: { commit: C2, upBefore: { a: 'isp1' } } }),
      /at healthBaseline\.upBefore\.a/,
    ],
    [
      'a rollout missing a planned site',
      (() => {
        const s = fullState();
        const perSite = s.rollout!.perSite.filter((p) => p.site !== 'c');
        return JSON.stringify({ ...s, rollout: { ...s.rollout, perSite } });
      })(),
      /at rollout\.perSite: does not list the planned sites in plan order/,
    ],
  ])('%s → a clear error, not a crash', async (_name, text, message) => {
    await writeFile(file, text);
    const error = await readControllerState(file).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UplinkError);
    expect((error as UplinkError).kind).toBe('failed');
    expect((error as Error).message).toMatch(message);
    expect((error as Error).message).toContain(file);
    expect((error as Error).message).toMatch(/move the file aside/);
  });

  it('parseControllerState accepts what writeControllerState wrote', () => {
    const state = fullState();
    expect(parseControllerState('x', JSON.stringify(state))).toEqual(state);
  });
});

describe('the health baseline (D86)', () => {
  const running = () => {
    const p = plan([wave('canary', ['a'], { bakeMs: 1000 }), wave('rest', ['b', 'c'])], { commit: C2 });
    let r = startRollout(p).state;
    r = stepRollout(r, { type: 'siteSucceeded', site: 'a', healthy: true }).state;
    return stepRollout(r, { type: 'bakeStarted', now: 5 }).state;
  };
  const baseline = { commit: C2, upBefore: { a: ['isp1', 'isp2'], c: ['isp2'] } };

  it('round-trips with the rollout it belongs to', async () => {
    const state = withRollout(withHealthBaseline(emptyControllerState(), baseline), running());
    await writeControllerState(file, state);
    expect((await readControllerState(file)).healthBaseline).toEqual(baseline);
  });

  it('a state file written before the baseline existed still loads, without one', async () => {
    // As an older Uplink wrote it: a rollout baking, no healthBaseline field.
    const old = { ...withRollout(emptyControllerState(), running()) };
    expect(Object.keys(old)).not.toContain('healthBaseline');
    await writeFile(file, `${JSON.stringify(old)}\n`);
    const loaded = await readControllerState(file);
    expect(loaded.rollout?.phase).toBe('baking');
    expect(loaded.healthBaseline).toBeUndefined();
  });

  it('stays while its rollout runs, and goes once that rollout ends or another takes its place', () => {
    const base = withRollout(withHealthBaseline(emptyControllerState(), baseline), running());
    expect(base.healthBaseline).toEqual(baseline);
    const next = stepRollout(base.rollout!, { type: 'tick', now: 2000 }).state; // canary passed
    expect(next.phase).toBe('running');
    expect(withRollout(base, next).healthBaseline).toEqual(baseline);
    const ended = [
      ['superseded', { ...next, phase: 'superseded' as const, supersededBy: C1 }],
      ['done', { ...next, phase: 'done' as const }],
      ['halted', { ...next, phase: 'halted' as const }],
      ['another commit', startRollout(plan([wave('all', ['a'])], { commit: C1 })).state],
    ] as const;
    for (const [why, rollout] of ended) {
      const after = withRollout(base, rollout);
      expect(after.healthBaseline, why).toBeUndefined();
      expect(Object.keys(after), why).not.toContain('healthBaseline');
    }
    expect(withRollout(base, null).healthBaseline).toBeUndefined();
  });
});

describe('recordSiteOutcome', () => {
  const base = recordSiteOutcome(emptyControllerState(), 'a', record('applied', 'h1', 'g1'));
  it.each([
    ['applied', true],
    ['unchanged', true],
    ['unhealthy', true],
    ['rolled-back', true],
    ['failed', false],
    ['refused', false],
    ['unreachable', false],
    ['unconfirmed', false],
  ] as const)('%s → lastApplied updated: %s', (outcome, applied) => {
    const next = recordSiteOutcome(base, 'a', record(outcome));
    expect(next.sites.a!.lastAttempted).toEqual(record(outcome));
    expect(next.sites.a!.lastApplied!.generation).toBe(applied ? 'g2' : 'g1');
    expect(base.sites.a!.lastAttempted!.generation).toBe('g1'); // not mutated
  });

  it('cachedReports offers the last applied hash as an unreachable report', () => {
    const s = recordSiteOutcome(base, 'b', record('unreachable'));
    expect(cachedReports(s)).toEqual(
      new Map<string, ReportedSite>([
        ['a', { reachable: false, appliedHash: 'h1' }],
        ['b', { reachable: false }],
      ]),
    );
  });
});

describe('ControllerStateStore', () => {
  it('coalesces a burst of updates and ends with the newest state on disk', async () => {
    const store = await ControllerStateStore.open(file);
    for (let i = 0; i < 200; i++) {
      store.update((s) => recordSiteOutcome(s, `site-${i}`, record('applied', `h${i}`)));
    }
    await store.flush();
    const loaded = await readControllerState(file);
    expect(Object.keys(loaded.sites)).toHaveLength(200);
    expect(loaded).toEqual(store.state);
    const reopened = await ControllerStateStore.open(file);
    expect(reopened.state).toEqual(store.state);
  });

  it('reports a failed write on flush and writes again once it can', async () => {
    const nested = join(dir, 'later', CONTROLLER_STATE_FILE);
    const store = await ControllerStateStore.open(nested);
    store.update((s) => recordGoodCommit(s, C1));
    await expect(store.flush()).rejects.toThrow(/cannot write the controller state/);
    await mkdir(join(dir, 'later'));
    await store.flush();
    expect((await readControllerState(nested)).lastGoodCommit).toBe(C1);
  });
});

describe('writeFileAtomic', () => {
  it('replaces the content whole and cleans up when the rename fails', async () => {
    await writeFileAtomic(file, 'one');
    await writeFileAtomic(file, 'two');
    expect(await readFile(file, 'utf8')).toBe('two');
    const target = join(dir, 'is-a-dir');
    await mkdir(join(target, 'x'), { recursive: true });
    await expect(writeFileAtomic(target, 'x')).rejects.toThrow();
    expect((await readdir(dir)).sort()).toEqual([CONTROLLER_STATE_FILE, 'is-a-dir']);
  });
});

describe('resume after a controller restart', () => {
  it('a persisted mid-wave rollout resumes: confirmed sites are not re-applied, none is skipped', async () => {
    const p = plan([wave('canary', ['a']), wave('rest', ['b', 'c', 'd'], { concurrency: 3 })], {
      commit: C2,
    });
    let r = startRollout(p).state;
    r = stepRollout(r, { type: 'siteSucceeded', site: 'a', healthy: true }).state; // rest: b, c, d applying
    r = stepRollout(r, { type: 'siteSucceeded', site: 'b', healthy: true }).state;
    await writeControllerState(file, withRollout(emptyControllerState(), r));

    // SIGKILL here; c's apply had landed (its result was lost), d's never reached the router.
    const loaded = (await readControllerState(file)).rollout!;
    const reported = new Map<string, ReportedSite>([
      ['a', { reachable: true, appliedHash: 'h-a' }],
      ['b', { reachable: true, appliedHash: 'h-b' }],
      ['c', { reachable: true, appliedHash: 'h-c' }],
      ['d', { reachable: true, appliedHash: 'old-d' }],
    ]);
    const { state, actions } = resumeRollout(loaded, reported);
    expect(actions).toEqual([{ type: 'start', wave: 'rest', sites: [p.waves[1]!.sites[2]] }]);
    expect(Object.fromEntries(state.perSite.map((v) => [v.site, v.status]))).toEqual({
      a: 'confirmed',
      b: 'confirmed',
      c: 'confirmed',
      d: 'applying',
    });
  });
});
