import { describe, expect, it } from 'vitest';
import { desiredOf, fleetOf, validWave } from '../../../test/support/rollout-plans.js';
import { compileSite } from '../compile/compile-site.js';
import { readFleetFiles } from '../repo/read-fleet-files.js';
import { loadFleet } from '../spec/load-fleet.js';
import { planRollout, type ReportedSite } from './plan-rollout.js';

const sites = [
  { name: 'a', labels: { canary: 'true' } },
  { name: 'b' },
  { name: 'c' },
  { name: 'd' },
  { name: 'e' },
];
const waves = [
  validWave('canary', { select: { labels: { canary: 'true' }, sites: [] }, bakeMs: 30_000, concurrency: 1 }),
  validWave('early', { count: 2, maxFailures: 1 }),
  validWave('rest'),
];
const fleet = fleetOf(sites, waves);
const desired = desiredOf({ a: 'A2', b: 'B2', c: 'C2', d: 'D2', e: 'E2' });
const reachable = (appliedHash?: string): ReportedSite => ({ reachable: true, appliedHash });

describe('planRollout', () => {
  it('plans only sites whose applied hash differs, with the reason', () => {
    const reported = new Map<string, ReportedSite>([
      ['a', reachable('A1')],
      ['b', reachable('B2')],
      ['c', reachable(undefined)],
      ['d', { reachable: false, appliedHash: 'D1' }],
      // e: no report at all
    ]);
    const plan = planRollout({ fleet, desired, reported, commit: 'abc' });
    expect(plan.commit).toBe('abc');
    expect(plan.unchanged).toEqual(['b']);
    expect(
      plan.waves.map((w) => [w.name, w.sites.map((s) => [s.site, s.reason, s.hash, s.previousHash])]),
    ).toEqual([
      ['canary', [['a', 'changed', 'A2', 'A1']]],
      ['early', [['c', 'new', 'C2', undefined]]],
      [
        'rest',
        [
          ['d', 'unknown', 'D2', 'D1'],
          ['e', 'unknown', 'E2', undefined],
        ],
      ],
    ]);
    expect(plan.waves[0]).toMatchObject({ concurrency: 1, maxFailures: 0, bakeMs: 30_000 });
    expect(plan.waves[1]).toMatchObject({ concurrency: 2, maxFailures: 1, bakeMs: 1000 });
    expect(plan.rollbackOnFailure).toBe(true);
  });

  it("assigns waves over the whole fleet: a site's wave does not depend on what else changed", () => {
    // Only d changes. Over the whole fleet the count-2 wave takes b and c, so d is in rest.
    const reported = new Map<string, ReportedSite>(
      Object.entries({ a: 'A2', b: 'B2', c: 'C2', d: 'D1', e: 'E2' }).map(([s, h]) => [s, reachable(h)]),
    );
    const plan = planRollout({ fleet, desired, reported, commit: 'abc' });
    expect(plan.waves.map((w) => w.name)).toEqual(['rest']);
    expect(plan.waves[0]!.sites.map((s) => s.site)).toEqual(['d']);
    expect(plan.unchanged).toEqual(['a', 'b', 'c', 'e']);
  });

  it('a pending apply of the same hash is not applied: the site is planned', () => {
    const reported = new Map<string, ReportedSite>([
      ['a', { reachable: true, appliedHash: 'A1', pendingHash: 'A2' }],
    ]);
    const plan = planRollout({ fleet, desired, reported, commit: 'abc' });
    expect(plan.waves[0]!.sites).toEqual([{ site: 'a', hash: 'A2', previousHash: 'A1', reason: 'changed' }]);
  });

  it('an unreachable site whose cached applied hash is current is unchanged', () => {
    const reported = new Map<string, ReportedSite>([['a', { reachable: false, appliedHash: 'A2' }]]);
    expect(planRollout({ fleet, desired, reported, commit: 'abc' }).unchanged).toContain('a');
  });

  it('nothing changed: no waves', () => {
    const reported = new Map<string, ReportedSite>(
      [...desired].map(([site, d]) => [site, reachable(d.hash)] as const),
    );
    const plan = planRollout({ fleet, desired, reported, commit: 'abc' });
    expect(plan.waves).toEqual([]);
    expect(plan.unchanged).toEqual(['a', 'b', 'c', 'd', 'e']);
  });

  it('a site without a compiled desired state is a bug', () => {
    expect(() =>
      planRollout({ fleet, desired: desiredOf({ a: 'A2' }), reported: new Map(), commit: 'abc' }),
    ).toThrow(/site b: no compiled desired state/);
  });

  it('plans the example fleet in its declared wave order', async () => {
    const load = loadFleet(
      await readFleetFiles(new URL('../../../fleet-repo-example', import.meta.url).pathname),
    );
    expect(load.fleet).toBeDefined();
    const fleet = load.fleet!;
    const desired = new Map(fleet.sites.map((s) => [s.name, compileSite(s)] as const));
    const plan = planRollout({ fleet, desired, reported: new Map(), commit: 'abc' });
    const declared = fleet.rollout.waves.map((w) => w.name);
    const planned = plan.waves.map((w) => w.name);
    expect(planned).toEqual(declared.filter((n) => planned.includes(n)));
    expect(plan.waves.flatMap((w) => w.sites.map((s) => s.site)).sort()).toEqual(
      fleet.sites.map((s) => s.name).sort(),
    );
  });

  describe('a canary for every change (D122)', () => {
    const applied = (changed: readonly string[]) =>
      new Map<string, ReportedSite>(
        Object.entries({ a: 'A2', b: 'B2', c: 'C2', d: 'D2', e: 'E2' }).map(([s, h]) => [
          s,
          reachable(changed.includes(s) ? `${h}-old` : h),
        ]),
      );
    const shape = (plan: ReturnType<typeof planRollout>) =>
      plan.waves.map((w) => [
        w.name,
        w.standInFrom ?? null,
        w.sites.map((s) => s.site),
        w.bakeMs,
        w.concurrency,
      ]);

    it('a change that touches no canary site: its first changed site goes alone, with the canary wave’s bake', () => {
      const plan = planRollout({ fleet, desired, reported: applied(['b', 'c', 'd', 'e']), commit: 'abc' });
      expect(shape(plan)).toEqual([
        ['canary', 'early', ['b'], 30_000, 1],
        ['early', null, ['c'], 1000, 2],
        ['rest', null, ['d', 'e'], 1000, 2],
      ]);
      expect(plan.waves[0]!.maxFailures).toBe(0);
    });

    it('the stand-in may empty its source wave: the next wave follows', () => {
      const plan = planRollout({ fleet, desired, reported: applied(['d', 'e']), commit: 'abc' });
      expect(shape(plan)).toEqual([
        ['canary', 'rest', ['d'], 30_000, 1],
        ['rest', null, ['e'], 1000, 2],
      ]);
    });

    it('a change that touches a canary site, or no more sites than the canary holds, goes as declared', () => {
      expect(
        shape(planRollout({ fleet, desired, reported: applied(['a', 'd', 'e']), commit: 'abc' })),
      ).toEqual([
        ['canary', null, ['a'], 30_000, 1],
        ['rest', null, ['d', 'e'], 1000, 2],
      ]);
      expect(shape(planRollout({ fleet, desired, reported: applied(['e']), commit: 'abc' }))).toEqual([
        ['rest', null, ['e'], 1000, 2],
      ]);
    });

    it('only, exclude (suspended sites) and no failure budget (reconciliation)', () => {
      const plan = planRollout({
        fleet,
        desired,
        reported: applied(['b', 'c', 'd', 'e']),
        commit: 'abc',
        trigger: 'reconcile',
        only: new Set(['c', 'd', 'e']),
        exclude: new Set(['d']),
        noFailureBudget: true,
      });
      expect(plan.trigger).toBe('reconcile');
      expect(plan.suspended).toEqual(['d']);
      expect(plan.unchanged).toEqual(['a']);
      expect(shape(plan)).toEqual([
        ['canary', 'early', ['c'], 30_000, 1],
        ['rest', null, ['e'], 1000, 2],
      ]);
      expect(plan.waves.map((w) => w.maxFailures)).toEqual([1, 1]);
    });
  });
});
