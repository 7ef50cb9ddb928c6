/**
 * The controller survives its own death: the daemon (`uplink run --config`, in the lab's
 * controller namespace, against five namespace routers with real sshd and agents) is
 * SIGKILLed while a wave bakes, started again on the same state dir, and finishes the
 * rollout — without applying again any site that had confirmed, and without skipping any.
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildDist } from './build-dist.js';
import {
  type AgentStatus,
  agentStatuses,
  commitAndPush,
  journaledApplies,
  logLines,
  type RolloutLab,
  readControllerState,
  SITES,
  setBaseSysctl,
  startDaemon,
  startRolloutLab,
  stateDirOf,
  until,
  writeControllerConfig,
} from './controller-rollout-ns-lab.js';
import { requireRoot } from './lab/index.js';

describe.skipIf(!requireRoot())('controller SIGKILLed mid-rollout', () => {
  let rl: RolloutLab;
  let config: string;
  let stateDir: string;

  beforeAll(async () => {
    buildDist();
    rl = await startRolloutLab();
    config = writeControllerConfig(rl, 'daemon');
    stateDir = stateDirOf(rl, 'daemon');
  }, 240_000);

  afterAll(async () => {
    await rl?.stop();
  }, 60_000);

  it('resumes after a restart: confirmed sites are not applied again, none is skipped', async () => {
    const first = startDaemon(rl, 'controller', config);
    await until(
      'the first commit rolled out',
      () => {
        const s = readControllerState(stateDir);
        return s?.rollout?.plan.commit === rl.lab.repo.commit && s.rollout.phase === 'done';
      },
      180_000,
    );

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
    const done = await until(
      'the resumed rollout to finish',
      () => {
        const s = readControllerState(stateDir);
        return s?.rollout?.plan.commit === commit && ['done', 'halted'].includes(s.rollout.phase)
          ? s.rollout
          : undefined;
      },
      180_000,
    );
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
  }, 420_000);
});
