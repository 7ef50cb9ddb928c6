import { describe, expect, it } from 'vitest';
import { FakeFleet } from '../../../test/support/fake-site-transport.js';
import { desiredOf, fleetOf, validWave } from '../../../test/support/rollout-plans.js';
import type { ValidFleet, ValidSite } from '../spec/valid-site.js';
import type { CompiledCommit } from './compile-commit.js';
import { prepareRollout } from './prepare-rollout.js';
import { type RunLog, type RunRolloutOptions, resumeRolloutRun, runRollout } from './run-rollout.js';
import { reportFromStatus, type SiteReport } from './site-report.js';

const SITES = ['a', 'b', 'c', 'd', 'e', 'f'];
const COMMIT = 'c'.repeat(40);
const silent: RunLog = { info() {}, warn() {}, error() {} };

function compiled(fleet: ValidFleet, hashes: Record<string, string>): Extract<CompiledCommit, { ok: true }> {
  return {
    ok: true,
    commit: COMMIT,
    fleet,
    sites: new Map(fleet.sites.map((s) => [s.name, s] as const)),
    desired: desiredOf(hashes),
    warnings: [],
  };
}

function fleet(options: { rollbackOnFailure?: boolean; bakeMs?: number; maxFailures?: number } = {}) {
  const f = fleetOf(
    SITES.map((name) => ({
      name,
      labels: (name === 'a' ? { canary: 'yes' } : {}) as Record<string, string>,
    })),
    [
      validWave('canary', { select: { labels: { canary: 'yes' }, sites: [] }, bakeMs: options.bakeMs ?? 20 }),
      validWave('first', { count: 2, bakeMs: options.bakeMs ?? 20, maxFailures: options.maxFailures ?? 0 }),
      validWave('rest', { bakeMs: 0, concurrency: 3 }),
    ],
  );
  return { ...f, rollout: { ...f.rollout, rollbackOnFailure: options.rollbackOnFailure ?? false } };
}

const hashes = (prefix: string) => Object.fromEntries(SITES.map((s) => [s, `${prefix}-${s}`]));

async function rollout(
  agents: FakeFleet,
  f: ValidFleet,
  target: Record<string, string>,
  extra: Partial<RunRolloutOptions> = {},
) {
  const c = compiled(f, target);
  const prepared = await prepareRollout({
    compiled: c,
    transport: agents,
    concurrency: 4,
    reports: new Map(),
    freshForMs: 60_000,
    now: () => agents.clock,
  });
  const run = runRollout(prepared.plan, {
    sites: c.sites,
    desired: c.desired,
    transport: agents,
    reports: prepared.reports,
    log: silent,
    ...extra,
  });
  return { prepared, final: await run.done, run };
}

describe('runRollout', () => {
  it('applies waves in order and checks each site after the bake before the next wave starts', async () => {
    const agents = new FakeFleet(SITES, (s) => `old-${s}`);
    const { final } = await rollout(agents, fleet(), hashes('new'));
    expect(final.phase).toBe('done');
    for (const s of SITES) expect(agents.appliedHash(s)).toBe(`new-${s}`);
    // Calls after the initial status query: canary apply, its bake check, then wave "first".
    const after = agents.calls.slice(SITES.length).map((c) => `${c.method}:${c.site}`);
    const aApply = after.indexOf('apply:a');
    const aCheck = after.indexOf('status:a');
    const bApply = after.indexOf('apply:b');
    expect(aApply).toBeGreaterThanOrEqual(0);
    expect(aCheck).toBeGreaterThan(aApply);
    expect(bApply).toBeGreaterThan(aCheck);
    // Wave "first" (b, c) is checked after its bake before "rest" (d, e, f) starts.
    const cCheck = after.indexOf('status:c');
    expect(
      Math.min(after.indexOf('apply:d'), after.indexOf('apply:e'), after.indexOf('apply:f')),
    ).toBeGreaterThan(cCheck);
  });

  it('a canary whose change cuts its management path reverts; the rollout halts and no other site changes', async () => {
    const agents = new FakeFleet(SITES, (s) => `old-${s}`);
    agents.cutsManagement.set('a', 'new-a');
    const { final } = await rollout(agents, fleet(), hashes('new'));
    expect(final.phase).toBe('halted');
    expect(final.halt?.wave).toBe('canary');
    expect(agents.applies().map((c) => c.site)).toEqual(['a']);
    for (const s of SITES) expect(agents.appliedHash(s)).toBe(`old-${s}`);
  });

  it('a site with a provider down after the bake that was up before fails; with rollbackOnFailure the updated sites go back', async () => {
    const agents = new FakeFleet(SITES, (s) => `old-${s}`);
    agents.providersDownAfter.set('c', { hash: 'new-c', providers: ['isp1'] });
    const f = fleet({ rollbackOnFailure: true });
    const previous = desiredOf(hashes('old'));
    const { final } = await rollout(agents, f, hashes('new'), {
      previousDesired: async (site, hash) =>
        previous.get(site)?.hash === hash ? previous.get(site) : undefined,
    });
    expect(final.phase).toBe('halted');
    expect(final.halt).toMatchObject({ wave: 'first', failed: ['c'] });
    // a (canary) and b, c (first wave) went back; d, e, f were never touched.
    for (const s of ['a', 'b', 'c']) expect(agents.appliedHash(s)).toBe(`old-${s}`);
    for (const s of ['d', 'e', 'f']) expect(agents.applies(s)).toEqual([]);
    // c applied the new state before it turned unhealthy: it goes back too.
    expect(
      final.perSite
        .filter((p) => p.status === 'rolled-back')
        .map((p) => p.site)
        .sort(),
    ).toEqual(['a', 'b', 'c']);
  });

  it('an unreachable site counts against the budget and is planned again next time', async () => {
    const agents = new FakeFleet(SITES, (s) => `old-${s}`);
    agents.down.add('b');
    const { final } = await rollout(agents, fleet({ maxFailures: 1 }), hashes('new'));
    expect(final.phase).toBe('done');
    expect(final.perSite.find((p) => p.site === 'b')?.status).toBe('unreachable');
    agents.down.delete('b');
    const second = await rollout(agents, fleet({ maxFailures: 1 }), hashes('new'));
    expect(second.prepared.plan.waves.flatMap((w) => w.sites.map((s) => s.site))).toEqual(['b']);
    expect(agents.appliedHash('b')).toBe('new-b');
  });

  it('a site that never answers fails after the site timeout', async () => {
    const agents = new FakeFleet(SITES, (s) => `old-${s}`);
    agents.hangs.add('a');
    const f = fleet();
    const short = { ...f, rollout: { ...f.rollout, siteTimeoutMs: 30 } };
    const { final } = await rollout(agents, short, hashes('new'));
    expect(final.phase).toBe('halted');
    expect(final.perSite.find((p) => p.site === 'a')).toMatchObject({
      status: 'unreachable',
      failure: 'unreachable',
    });
  });

  it('a site whose apply answers after the site timeout is never confirmed, and done waits for that apply', async () => {
    const agents = new FakeFleet(SITES, (s) => `old-${s}`);
    agents.answersLate.add('a');
    const f = fleet();
    const short = { ...f, rollout: { ...f.rollout, siteTimeoutMs: 30 } };
    const { final } = await rollout(agents, short, hashes('new'), {
      onNotice: (n) => {
        // The agent's answer arrives just as the rollout gives up on the site.
        if (n.type === 'siteOutcome' && n.site === 'a' && n.outcome === 'timeout') agents.answer('a');
      },
    });
    expect(final.phase).toBe('halted');
    expect(final.perSite.find((p) => p.site === 'a')?.status).toBe('unreachable');
    // No confirm after the timeout: the canary stays on its old state (the agent reverted).
    expect(agents.calls.filter((c) => c.method === 'confirm' && c.site === 'a')).toEqual([]);
    expect(agents.appliedHash('a')).toBe('old-a');
    expect(agents.agents.get('a')?.lastRevert?.hash).toBe('new-a');
    // done resolved only after the late apply had returned.
    expect(agents.calls.some((c) => c.method === 'applySettled' && c.site === 'a')).toBe(true);
    for (const s of SITES.slice(1)) expect(agents.applies(s)).toEqual([]);
  });

  it('nothing changed: one status call per site and no apply; fresh current reports cost no call', async () => {
    const agents = new FakeFleet(SITES, (s) => `new-${s}`);
    const { prepared, final } = await rollout(agents, fleet(), hashes('new'));
    expect(prepared.asked).toBe(SITES.length);
    expect(final.phase).toBe('done');
    expect(agents.applies()).toEqual([]);
    const before = agents.calls.length;
    const fresh = new Map<string, SiteReport>();
    for (const s of SITES)
      fresh.set(s, reportFromStatus(await agents.status({ name: s } as ValidSite), agents.clock));
    const callsForFresh = agents.calls.length;
    const again = await prepareRollout({
      compiled: compiled(fleet(), hashes('new')),
      transport: agents,
      concurrency: 4,
      reports: fresh,
      freshForMs: 60_000,
      now: () => agents.clock,
    });
    expect(callsForFresh - before).toBe(SITES.length);
    expect(again.asked).toBe(0);
    expect(agents.calls.length).toBe(callsForFresh);
  });

  it('a newer commit supersedes the rollout at the next wave boundary', async () => {
    const agents2 = new FakeFleet(SITES, (s) => `old-${s}`);
    const c = compiled(fleet(), hashes('new'));
    const prepared = await prepareRollout({
      compiled: c,
      transport: agents2,
      concurrency: 4,
      reports: new Map(),
      freshForMs: 1,
      now: () => 0,
    });
    const r = runRollout(prepared.plan, {
      sites: c.sites,
      desired: c.desired,
      transport: agents2,
      reports: prepared.reports,
      log: silent,
      onNotice: (n) => {
        if (n.type === 'siteOutcome' && n.site === 'a') r.newCommit('d'.repeat(40));
      },
    });
    const s = await r.done;
    expect(s.phase).toBe('superseded');
    expect(s.supersededBy).toBe('d'.repeat(40));
    expect(agents2.applies().map((x) => x.site)).toEqual(['a']);
  });

  it('resumes after a restart: confirmed sites are not applied again, a pending one is only confirmed, the rest are applied', async () => {
    const agents = new FakeFleet(SITES, (s) => `old-${s}`);
    const f = fleet({ bakeMs: 0 });
    const c = compiled(f, hashes('new'));
    const prepared = await prepareRollout({
      compiled: c,
      transport: agents,
      concurrency: 4,
      reports: new Map(),
      freshForMs: 1,
      now: () => 0,
    });
    // Simulate a controller that died after the canary and the first wave's "b" confirmed,
    // while "c" was pending: a state persisted mid-rollout, and the agents' truth.
    let saved: ReturnType<ReturnType<typeof runRollout>['state']> | undefined;
    const states: (typeof saved)[] = [];
    const first = runRollout(prepared.plan, {
      sites: c.sites,
      desired: c.desired,
      transport: agents,
      reports: prepared.reports,
      log: silent,
      onState: (s) => states.push(s),
    });
    await first.done;
    saved = states.find(
      (s) =>
        s?.perSite.find((p) => p.site === 'b')?.status === 'confirmed' &&
        s.perSite.find((p) => p.site === 'c')?.status === 'applying',
    );
    expect(saved).toBeDefined();
    // Undo what happened after that point on the agents: c pending, d e f old.
    const agentsAfterCrash = new FakeFleet(SITES, (s) => (['a', 'b'].includes(s) ? `new-${s}` : `old-${s}`));
    const cGen = `${COMMIT}-${'new-c'.slice(0, 12)}`;
    agentsAfterCrash.leavePending('c', cGen, 'new-c');
    const reports = new Map<string, SiteReport>();
    for (const s of SITES)
      reports.set(s, reportFromStatus(await agentsAfterCrash.status({ name: s } as ValidSite), 0));
    const resumed = resumeRolloutRun(saved!, {
      sites: c.sites,
      desired: c.desired,
      transport: agentsAfterCrash,
      reports,
      log: silent,
    });
    const final = await resumed.done;
    expect(final.phase).toBe('done');
    expect(
      agentsAfterCrash
        .applies()
        .map((x) => x.site)
        .sort(),
    ).toEqual(['d', 'e', 'f']);
    expect(agentsAfterCrash.calls.filter((x) => x.method === 'confirm' && x.site === 'c')).toHaveLength(1);
    for (const s of SITES) expect(agentsAfterCrash.appliedHash(s)).toBe(`new-${s}`);
  });
});
