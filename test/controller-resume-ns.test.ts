/**
 * The controller survives its own death: the daemon (`uplink run --config`, in the lab's
 * controller namespace, against five namespace routers with real sshd and agents) is
 * SIGKILLed while a wave bakes, started again on the same state dir, and finishes the
 * rollout — without applying again any site that had confirmed, and without skipping any.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  type AgentStatus,
  agentStatus,
  agentStatuses,
  CANARY,
  commitAndPush,
  editYaml,
  git,
  journaledApplies,
  logLines,
  type RolloutLab,
  readControllerState,
  SITES,
  setBaseSysctl,
  startDaemon,
  stateDirOf,
  until,
  untilRollout,
  useRolloutLab,
  writeControllerConfig,
} from './controller-rollout-ns-lab.js';
import { requireRoot } from './lab/index.js';

/** The blocking rule's quota is used up: the controller tried a third connection to the canary. */
async function confirmBlocked(rl: RolloutLab): Promise<boolean> {
  const table = await rl.lab.run(rl.lab.controllerNs, ['nft', 'list', 'table', 'ip', 'confirm-block'], {
    allowFailure: true,
  });
  const used = /quota over 150 bytes used (\d+) bytes/.exec(table.stdout)?.[1];
  return used !== undefined && Number(used) >= 150;
}

describe.skipIf(!requireRoot())('controller SIGKILLed mid-rollout', () => {
  const lab = useRolloutLab('daemon');

  it('resumes after a restart: confirmed sites are not applied again, none is skipped', async () => {
    const { rl, config, stateDir } = lab;
    const first = startDaemon(rl, 'controller', config);
    await untilRollout(stateDir, rl.lab.repo.commit, ['done'], 'the first commit rolled out', 180_000);

    setBaseSysctl(rl, 'net.ipv4.conf.all.log_martians', 1);
    const commit = commitAndPush(rl, 'log martians everywhere');
    // Wait for the second wave's bake: the canary and that wave have confirmed, the last wave has not started.
    const baking = await until(
      'the second wave baking',
      () => {
        const s = readControllerState(stateDir);
        return s?.rollout?.plan.commit === commit && s.rollout.phase === 'baking' && s.rollout.waveIndex === 1
          ? s.rollout
          : undefined;
      },
      180_000,
    );
    process.kill(first.pid, 'SIGKILL');
    await rl.lab.kill('controller'); // forgets it; it is dead already (SIGKILL cannot be caught)
    const statusAtKill = await agentStatuses(rl);

    const [canary, early, rest] = baking.plan.waves;
    const confirmed = [...canary!.sites, ...early!.sites].map((s) => s.site);
    const notStarted = rest!.sites.map((s) => s.site);
    expect(confirmed).toHaveLength(3);
    expect(notStarted).toHaveLength(2);
    expect([...confirmed, ...notStarted].sort()).toEqual([...SITES].sort());
    const generation = (site: string) => {
      const hash = baking.plan.waves.flatMap((w) => w.sites).find((s) => s.site === site)!.hash;
      return `${commit}-${hash.slice(0, 12)}`;
    };
    for (const site of confirmed) {
      expect(statusAtKill.get(site)!.applied?.generation, site).toBe(generation(site));
      expect(statusAtKill.get(site)!.pending, site).toBeNull();
    }
    for (const site of notStarted) {
      expect(statusAtKill.get(site)!.applied?.generation.startsWith(`${rl.lab.repo.commit}-`), site).toBe(
        true,
      );
      expect(journaledApplies(rl.lab.site(site), generation(site)), site).toBe(0);
    }

    const second = startDaemon(rl, 'controller-restarted', config);
    const done = (
      await untilRollout(stateDir, commit, ['done', 'halted'], 'the resumed rollout to finish', 180_000)
    ).rollout!;
    expect(done.phase).toBe('done');
    expect(done.perSite.every((p) => p.status === 'confirmed')).toBe(true);

    const statusAfter = await agentStatuses(rl);
    for (const site of confirmed) {
      // Not applied again: the same apply (same start time) is in force, and the agent's
      // journal holds exactly one apply of this generation.
      expect(statusAfter.get(site)!.applied, site).toEqual(
        statusAtKill.get(site)!.applied as AgentStatus['applied'],
      );
      expect(journaledApplies(rl.lab.site(site), generation(site)), site).toBe(1);
    }
    for (const site of notStarted) {
      expect(statusAfter.get(site)!.applied?.generation, site).toBe(generation(site));
      expect(journaledApplies(rl.lab.site(site), generation(site)), site).toBe(1);
    }
    const log = logLines(readFileSync(second.log, 'utf8'));
    expect(log.some((l) => l.msg === 'resuming the rollout' && l.commit === commit)).toBe(true);
    // The restarted daemon applied only the last wave.
    const applying = log.filter((l) => l.msg === 'applying' && l.commit === commit);
    expect(applying.map((l) => l.wave)).toEqual(['rest']);
    await rl.lab.kill('controller-restarted');
  }, 420_000);
  it('a site left pending by the killed controller is confirmed after the restart, not applied again', async () => {
    const { rl } = lab;
    // A controller that sees no status poll until the rollout (so the canary's SSH connections
    // are exactly: status before planning, apply, confirm).
    const quiet = writeControllerConfig(rl, 'quiet', { statusPollInterval: '1h' });
    const quietState = stateDirOf(rl, 'quiet');
    const head = git(rl, 'rev-parse', 'HEAD');
    const first = startDaemon(rl, 'quiet', quiet);
    await untilRollout(quietState, head, ['done'], 'the quiet daemon in force');

    // In the controller's namespace, let two new SSH connections to the canary through
    // (status, apply) and drop the third (the confirm): 60-byte SYNs against a 150-byte quota.
    const canary = rl.lab.site(CANARY);
    await rl.lab.run(rl.lab.controllerNs, ['nft', '-f', '-'], {
      stdin: `table ip confirm-block {
  chain out {
    type filter hook output priority 0;
    ip daddr ${canary.mgmtAddress} tcp dport 22 ct state new quota over 150 bytes drop
  }
}
`,
    });
    setBaseSysctl(rl, 'net.ipv4.conf.all.log_martians', 0);
    // A longer confirm window than the lab's 10 s, so that the restart fits in it.
    editYaml(rl, 'fleet.yaml', (doc) => {
      doc.setIn(['rollout', 'confirmWithin'], '40s');
    });
    const commit = commitAndPush(rl, 'log martians off again; 40 s confirm window');

    const pending = await until('the canary to hold a pending apply', async () => {
      const s = await agentStatus(canary);
      return s.pending?.generation.startsWith(`${commit}-`) ? s.pending : undefined;
    });
    // The controller is now retrying the confirm against the dropped SYNs: kill it there.
    await until('the confirm being blocked', async () => (await confirmBlocked(rl)) || undefined, 30_000);
    process.kill(first.pid, 'SIGKILL');
    await rl.lab.kill('quiet');
    // Still pending (its deadline is re-armed once the kernel changed; generation and start stay).
    expect((await agentStatus(canary)).pending).toMatchObject({
      generation: pending.generation,
      at: pending.at,
    });
    await rl.lab.run(rl.lab.controllerNs, ['nft', 'delete', 'table', 'ip', 'confirm-block']);

    const second = startDaemon(rl, 'quiet-restarted', quiet);
    const done = (
      await untilRollout(quietState, commit, ['done', 'halted'], 'the resumed rollout to finish', 180_000)
    ).rollout!;
    expect(done.phase).toBe('done');
    const after = await agentStatuses(rl);
    // The canary runs the apply it held pending (same generation, same start), confirmed, once.
    expect(after.get(CANARY)!.applied).toMatchObject({ generation: pending.generation, at: pending.at });
    expect(after.get(CANARY)!.lastRevert?.generation).not.toBe(pending.generation);
    expect(journaledApplies(canary, pending.generation)).toBe(1);
    const log = logLines(readFileSync(second.log, 'utf8'));
    expect(log.some((l) => l.msg === 'pending apply confirmed after restart' && l.site === CANARY)).toBe(
      true,
    );
    expect(log.some((l) => l.msg === 'applying' && l.wave === 'canary')).toBe(false);
    // The confirm is the canary's success: in its history and its timeline.
    expect(readControllerState(quietState)?.sites[CANARY]?.lastApplied?.generation).toBe(pending.generation);
    const timeline = readFileSync(join(quietState, 'timeline', `${CANARY}.jsonl`), 'utf8');
    expect(timeline).toContain(`"generation":"${pending.generation}"`);
    expect(timeline).toMatch(/"kind":"applied".*applied and confirmed/);
    // Every other site is on the commit, applied once.
    for (const site of SITES) {
      const generation = after.get(site)!.applied?.generation ?? '';
      expect(generation.startsWith(`${commit}-`), site).toBe(true);
      expect(journaledApplies(rl.lab.site(site), generation), site).toBe(1);
    }
  }, 420_000);
});
