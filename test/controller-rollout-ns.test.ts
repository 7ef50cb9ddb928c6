/**
 * The controller's rollout against five namespace routers with real sshd and the installed
 * agent daemon (test/controller-rollout-ns-lab.ts): `uplink rollout --config` run in the
 * lab's controller namespace.
 *
 * - A good change goes through every wave in plan order, and each wave's sites are all
 *   applied, confirmed and checked again after the bake before the next wave's first apply
 *   (from the controller's log and state, and from the agents' own applied times).
 * - A canary change that would move the route back to the controller is refused by the
 *   agent's management-path guard: the rollout halts, no router changes.
 * - The same change with --allow-management-change cuts the canary's management path: the
 *   confirm over a new connection cannot be made, the canary reverts by itself, the rollout
 *   halts, and no other site changes.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  addPolicy,
  agentStatus,
  agentStatuses,
  CANARY,
  commitAndPush,
  git,
  journalEntries,
  journaledApplies,
  kernelSnapshots,
  logLines,
  type RolloutLab,
  readControllerState,
  runUplink,
  SITES,
  setBaseSysctl,
  startDaemon,
  stateDirOf,
  until,
  untilRollout,
  useRolloutLab,
  writeControllerConfig,
} from './controller-rollout-ns-lab.js';
import { type ExecResult, requireRoot } from './lab/index.js';

interface FinalState {
  phase: string;
  plan: { commit: string; waves: Array<{ name: string; bakeMs: number; sites: Array<{ site: string }> }> };
  perSite: Array<{ site: string; status: string; failure?: string; error?: string }>;
  halt?: { wave: string; reason: string; failed: string[] };
}

describe.skipIf(!requireRoot())('uplink rollout against namespace routers', () => {
  const lab = useRolloutLab('rollout');

  it('a good change goes through every wave in order, each baked and checked before the next', async () => {
    const { rl, config } = lab;
    const sshdBefore = new Map(SITES.map((s) => [s, acceptedConnections(rl, s)] as const));
    const result = await runUplink(rl, ['rollout', '--config', config, '--log', '--format', 'json']);
    expect(result.exitCode, result.stderr.slice(-4000)).toBe(0);
    const final = JSON.parse(result.stdout) as FinalState;
    expect(final.phase).toBe('done');
    expect(final.plan.commit).toBe(rl.lab.repo.commit);
    const waves = final.plan.waves.map((w) => ({
      name: w.name,
      bakeMs: w.bakeMs,
      sites: w.sites.map((s) => s.site),
    }));
    expect(waves.map((w) => w.name)).toEqual(['canary', 'early', 'rest']);
    expect(waves[0]!.sites).toEqual([CANARY]);
    expect(waves[1]!.sites).toHaveLength(2);
    expect(waves.flatMap((w) => w.sites).sort()).toEqual([...SITES].sort());
    expect(final.perSite.every((p) => p.status === 'confirmed')).toBe(true);

    // The controller's log: per wave `applying` → every site confirmed → `baking` → `wave passed`,
    // and the next wave's `applying` only after that.
    const log = logLines(result.stderr);
    const at = (msg: string, wave: string) => {
      const line = log.find((l) => l.msg === msg && l.wave === wave);
      expect(line, `log line "${msg}" of wave ${wave}`).toBeDefined();
      return line!.time;
    };
    const confirmedAt = (site: string) => {
      const line = log.find((l) => l.msg === 'site confirmed' && l.site === site);
      expect(line, `"site confirmed" of ${site}`).toBeDefined();
      return line!.time;
    };
    for (const [i, wave] of waves.entries()) {
      const applying = at('applying', wave.name);
      const confirmed = wave.sites.map(confirmedAt);
      expect(Math.min(...confirmed)).toBeGreaterThanOrEqual(applying);
      const passed = at('wave passed', wave.name);
      if (wave.bakeMs > 0) {
        const baking = at('baking', wave.name);
        expect(baking).toBeGreaterThanOrEqual(Math.max(...confirmed));
        // The bake elapsed: the wave passes no earlier than its bake time after the last confirm.
        expect(passed - baking).toBeGreaterThanOrEqual(wave.bakeMs);
      }
      expect(passed).toBeGreaterThanOrEqual(Math.max(...confirmed));
      const next = waves[i + 1];
      if (next) expect(at('applying', next.name)).toBeGreaterThanOrEqual(passed);
    }

    // The agents' view: every site runs the commit's generation, and each wave's applies
    // started only after the previous wave's last apply plus its bake.
    const statuses = await agentStatuses(rl);
    const appliedAt = (site: string) => {
      const s = statuses.get(site)!;
      expect(s.applied?.generation.startsWith(`${rl.lab.repo.commit}-`), site).toBe(true);
      expect(s.pending).toBeNull();
      return s.applied!.at;
    };
    for (let i = 1; i < waves.length; i++) {
      const previous = waves[i - 1]!;
      const lastBefore = Math.max(...previous.sites.map(appliedAt));
      const firstNext = Math.min(...waves[i]!.sites.map(appliedAt));
      expect(firstNext).toBeGreaterThanOrEqual(lastBefore + previous.bakeMs);
    }
    // Each site was applied exactly once.
    for (const site of SITES) {
      const s = statuses.get(site)!;
      expect(journaledApplies(rl.lab.site(site), s.applied!.generation), site).toBe(1);
    }
    // The post-bake check asked each baked site again: status before planning and the apply on
    // one connection, the confirm on a new one, status after the bake — three connections; two
    // in the last wave, which has no bake.
    for (const wave of waves)
      for (const site of wave.sites)
        expect(acceptedConnections(rl, site) - sshdBefore.get(site)!, site).toBe(wave.bakeMs > 0 ? 3 : 2);

    // `uplink status` tells the same story.
    const status = await runUplink(rl, ['status', '--config', config, '--format', 'json']);
    expect(status.exitCode, status.stderr).toBe(0);
    const state = readControllerState(stateDirOf(rl, 'rollout'))!;
    expect(state.lastGoodCommit).toBe(rl.lab.repo.commit);
    for (const site of SITES) expect(state.sites[site]?.lastApplied?.outcome).toBe('applied');
  }, 240_000);

  it('a canary change that would cut the management path is refused by the guard: halt, nothing changes', async () => {
    const { rl, config } = lab;
    const before = await kernelSnapshots(rl);
    const statusBefore = await agentStatuses(rl);
    const commit = pushManagementCut(rl);

    const result = await runUplink(rl, ['rollout', '--config', config, '--log', '--format', 'json']);
    const { canary } = haltedAtCanary(result, commit);
    expect(canary.status).toBe('failed');
    expect(canary.failure).toBe('refused');
    expect(canary.error).toMatch(/management/i);

    expect(await kernelSnapshots(rl)).toEqual(before);
    const statusAfter = await agentStatuses(rl);
    for (const site of SITES) {
      expect(statusAfter.get(site)!.applied, site).toEqual(statusBefore.get(site)!.applied);
      expect(statusAfter.get(site)!.pending, site).toBeNull();
    }
  }, 240_000);

  it('with --allow-management-change the cut canary cannot be confirmed and reverts by itself; nothing else changes', async () => {
    const { rl, config } = lab;
    const before = await kernelSnapshots(rl);
    const statusBefore = await agentStatuses(rl);
    const commit = readControllerState(stateDirOf(rl, 'rollout'))!.rollout!.plan.commit;

    const result = await runUplink(rl, [
      'rollout',
      '--config',
      config,
      '--allow-management-change',
      '--log',
      '--format',
      'json',
    ]);
    const { final, canary } = haltedAtCanary(result, commit);
    expect(canary.status).toBe('reverted');
    expect(canary.failure).toBe('unconfirmed');

    // The canary did apply the change (the agent journaled it) and reverted it on its own.
    const generation = generationOf(final, CANARY);
    expect(journaledApplies(rl.lab.site(CANARY), generation)).toBe(1);
    const reverted = await until('the canary to revert', async () => {
      const s = await agentStatus(rl.lab.site(CANARY));
      return s.lastRevert?.generation === generation && s.pending === null ? s : undefined;
    });
    expect(reverted.lastRevert).toMatchObject({ reason: 'confirm-timeout', result: 'ok' });
    expect(reverted.applied).toEqual(statusBefore.get(CANARY)!.applied);

    // Every router, the canary included, owns exactly what it owned before.
    expect(await kernelSnapshots(rl)).toEqual(before);
    const statusAfter = await agentStatuses(rl);
    for (const site of SITES.filter((s) => s !== CANARY)) {
      expect(statusAfter.get(site)!.applied, site).toEqual(statusBefore.get(site)!.applied);
      expect(statusAfter.get(site)!.lastRevert, site).toEqual(statusBefore.get(site)!.lastRevert);
      expect(journaledApplies(rl.lab.site(site), generationOf(final, site)), site).toBe(0);
    }
    // And the canary answers over SSH again.
    const status = await runUplink(rl, ['status', '--config', config, '--format', 'json']);
    expect(status.exitCode).toBe(1);
    expect(JSON.parse(status.stdout).rollout.phase).toBe('halted');
  }, 240_000);
  it('under uplink run, a newer commit takes over the rollout at the next wave boundary', async () => {
    const { rl } = lab;
    // Back to the state every router runs, then a daemon on a fresh state dir.
    git(rl, 'revert', '--no-edit', 'HEAD');
    git(rl, 'push', '-q', 'origin', 'main');
    const head = git(rl, 'rev-parse', 'HEAD');
    const daemonConfig = writeControllerConfig(rl, 'supersede');
    const stateDir = stateDirOf(rl, 'supersede');
    startDaemon(rl, 'supersede', daemonConfig);
    await untilRollout(stateDir, head, ['done'], 'the daemon in force');

    setBaseSysctl(rl, 'net.ipv4.conf.all.log_martians', 1);
    const older = commitAndPush(rl, 'log martians');
    await untilRollout(stateDir, older, ['baking'], 'the canary wave of the older commit baking');
    setBaseSysctl(rl, 'net.ipv4.conf.default.log_martians', 1);
    const newer = commitAndPush(rl, 'log martians on new interfaces too');

    const done = await untilRollout(
      stateDir,
      newer,
      ['done', 'halted'],
      'the newer commit rolled out',
      180_000,
    );
    expect(done.rollout!.phase).toBe('done');
    const statuses = await agentStatuses(rl);
    for (const site of SITES)
      expect(statuses.get(site)!.applied?.generation.startsWith(`${newer}-`), site).toBe(true);

    // The older rollout stopped at a wave boundary: the sites it confirmed got it once, the
    // others never did.
    const log = logLines(readFileSync(join(rl.dir, 'supersede.log'), 'utf8'));
    expect(log.some((l) => l.msg === 'rollout superseded by a newer commit' && l.commit === older)).toBe(
      true,
    );
    const confirmedOlder = log
      .filter((l) => l.msg === 'site confirmed' && l.commit === older)
      .map((l) => l.site as string);
    expect(confirmedOlder).toContain(CANARY);
    const untouched = SITES.filter((s) => !confirmedOlder.includes(s));
    expect(untouched.length).toBeGreaterThan(0);
    for (const site of SITES) {
      const applies = journalEntries(rl.lab.site(site)).filter(
        (e) => e.op === 'commit-apply' && e.generation?.startsWith(`${older}-`),
      ).length;
      expect(applies, site).toBe(confirmedOlder.includes(site) ? 1 : 0);
    }
    // Every wave of the older rollout that started finished before the newer one's first apply.
    const lastOlder = Math.max(
      ...log.filter((l) => l.commit === older && l.msg === 'site confirmed').map((l) => l.time),
    );
    const firstNewer = log.find((l) => l.msg === 'applying' && l.commit === newer)!.time;
    expect(firstNewer).toBeGreaterThanOrEqual(lastOlder);
    await rl.lab.kill('supersede');
  }, 300_000);
});

/**
 * Pushes a change to every site (a sysctl in the base group) that also gives the canary a
 * "partner network" policy whose prefix, mistyped, covers the controller's address, so
 * replies to the controller would leave via isp1.
 */
function pushManagementCut(rl: RolloutLab): string {
  setBaseSysctl(rl, 'net.ipv4.conf.all.log_martians', 1);
  addPolicy(rl, CANARY, { name: 'partner-network', to: '192.0.2.0/26', via: ['isp1'] });
  return commitAndPush(
    rl,
    'log martians; lartc-split: partner network via isp1 (mistyped: covers the management network)',
  );
}

/**
 * `uplink rollout` exited 1 with the rollout of `commit` halted in the canary wave: every site
 * planned, the later waves never started. Returns the final state and the canary's entry.
 */
function haltedAtCanary(result: ExecResult, commit: string) {
  expect(result.exitCode, result.stderr.slice(-4000)).toBe(1);
  const final = JSON.parse(result.stdout) as FinalState;
  expect(final.plan.commit).toBe(commit);
  expect(final.phase).toBe('halted');
  expect(final.halt?.wave).toBe('canary');
  expect(final.perSite.map((p) => p.site).sort()).toEqual([...SITES].sort());
  expect(final.perSite.filter((p) => p.site !== CANARY).every((p) => p.status === 'pending')).toBe(true);
  return { final, canary: final.perSite.find((p) => p.site === CANARY)! };
}

function generationOf(final: FinalState, site: string): string {
  const planned = final.plan.waves.flatMap((w) => w.sites).find((s) => s.site === site) as
    | { site: string; hash: string }
    | undefined;
  expect(planned, site).toBeDefined();
  return `${final.plan.commit}-${planned!.hash.slice(0, 12)}`;
}

/** Connections the site's sshd accepted so far (its log is per site, appended). */
function acceptedConnections(rl: RolloutLab, site: string): number {
  let text = '';
  try {
    text = readFileSync(rl.lab.site(site).sshdLog, 'utf8');
  } catch {
    return 0;
  }
  return text.split('\n').filter((l) => l.includes('Accepted publickey')).length;
}
