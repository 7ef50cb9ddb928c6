/**
 * The controller's real transport against a simulated fleet of 210 routers (real agent
 * daemons over the memory kernel, behind ssh2 SSH servers on loopback): a generated fleet
 * repository is validated, compiled and applied to every site; each site's agent then
 * reports the new generation applied. Faults: a site whose management path is cut after the
 * apply never gets the confirm and reverts by itself; an unreachable site is reported
 * unreachable; a kernel that refuses a step is reported failed and left as it was.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ApplyOutcome } from '../controller/src/transport/index.js';
import { applyFleet, queryStatus, type StatusAnswer } from './fleet-sim/drive-controller.js';
import {
  generateFleetFiles,
  simSitesFromFleet,
  siteName,
  writeFleetFiles,
} from './fleet-sim/generate-fleet.js';
import { type SimFleet, startSimFleet } from './fleet-sim/sim-fleet.js';

const SITES = 210;
const CUT = siteName(7);
const UNREACHABLE = siteName(11);
const KERNEL_FAILS = siteName(23);
/** Short enough that the cut site's revert happens within the test. */
const CONFIRM_WITHIN = '3s';
/** Transient failures are retried quickly: the simulator is on loopback. */
const TRANSPORT = {
  retry: { attempts: 2, baseDelayMs: 20, maxDelayMs: 50 },
  connect: { connectTimeoutMs: 5_000 },
};

let fleet: SimFleet;
let repo: string;
let privateKey: Buffer;

async function writeVariant(variant: number): Promise<void> {
  const ports = new Map(fleet.targets.map((t) => [t.site, t.port]));
  const files = generateFleetFiles({
    count: SITES,
    variant,
    management: (site) => ({ address: '127.0.0.1', port: ports.get(site)! }),
    hostKey: fleet.hostKey,
    confirmWithin: CONFIRM_WITHIN,
  });
  await writeFleetFiles(repo, files);
}

function bySite<T extends { site: string }>(items: readonly T[]): Map<string, T> {
  return new Map(items.map((item) => [item.site, item]));
}

function statusOf(answers: readonly StatusAnswer[], site: string) {
  const answer = bySite(answers).get(site);
  if (answer === undefined || !answer.ok) throw new Error(`${site}: no status (${JSON.stringify(answer)})`);
  return answer.status;
}

beforeAll(async () => {
  // Facts come from the same template the repository is written from; ports are the simulator's.
  const sites = simSitesFromFleet(generateFleetFiles({ count: SITES }));
  fleet = await startSimFleet({ sites, failures: { [UNREACHABLE]: [{ kind: 'refuse' }] } });
  privateKey = await readFile(fleet.controllerKeyPath);
  repo = await mkdtemp(join(tmpdir(), 'uplink-fleet-sim-repo-'));
}, 120_000);

afterAll(async () => {
  await fleet?.close();
  if (repo !== undefined) await rm(repo, { recursive: true, force: true });
});

describe(`fleet simulator: ${SITES} sites`, () => {
  it('applies a generated fleet to every site; a cut confirm reverts, an unreachable site is reported', async () => {
    fleet.inject(CUT, { kind: 'drop-confirm' });
    await writeVariant(0);
    const run = await applyFleet(repo, {
      privateKey,
      concurrency: 32,
      generationPrefix: 'gen1',
      transport: TRANSPORT,
    });
    const outcomes = bySite(run.outcomes);
    expect(outcomes.size).toBe(SITES);
    expect(outcomes.get(CUT)?.outcome).toBe('unconfirmed');
    expect(outcomes.get(UNREACHABLE)?.outcome).toBe('unreachable');
    const others = run.outcomes.filter((o) => o.site !== CUT && o.site !== UNREACHABLE);
    expect(others.filter((o) => o.outcome !== 'applied')).toEqual([]);
    expect(others.every((o) => (o.changes ?? 0) > 0)).toBe(true);

    // The agents are the truth: ask every one of them over SSH. The cut site answers again
    // once it has reverted (the revert restores its management path).
    const cutSite = fleet.site(CUT);
    await expect.poll(() => cutSite.daemon.commit.record.pending, { timeout: 10_000 }).toBeNull();
    const answers = await queryStatus(run.targets, 32);
    for (const o of others) {
      const status = statusOf(answers, o.site);
      expect(status.applied?.generation, o.site).toBe(run.generations.get(o.site));
      expect(status.pending, o.site).toBeNull();
      expect(status.owned.rules, o.site).toBeGreaterThan(0);
    }
    const cut = statusOf(answers, CUT);
    expect(cut.applied).toBeNull();
    expect(cut.lastRevert).toMatchObject({
      generation: run.generations.get(CUT),
      reason: 'confirm-timeout',
      result: 'ok',
    });
    expect(cut.owned.rules).toBe(0);
    expect(cutSite.dataplane.dump().rules.filter((r) => r.protocol === 252)).toEqual([]);
    const unreachable = bySite(answers).get(UNREACHABLE);
    expect(unreachable?.ok).toBe(false);
    expect(fleet.site(UNREACHABLE).sessions).toBe(0);
  }, 180_000);

  it('rolls a group change out to every site, then a no-change run opens one connection per site', async () => {
    fleet.heal(CUT);
    fleet.heal(UNREACHABLE);
    fleet.inject(KERNEL_FAILS, { kind: 'kernel-fail' });
    const kernelBefore = fleet.site(KERNEL_FAILS).dataplane.dump();
    await writeVariant(1);
    const change = await applyFleet(repo, {
      privateKey,
      concurrency: 32,
      generationPrefix: 'gen2',
      transport: TRANSPORT,
    });
    const failed = change.outcomes.filter((o) => o.outcome !== 'applied');
    expect(failed.map((o: ApplyOutcome) => [o.site, o.outcome])).toEqual([[KERNEL_FAILS, 'failed']]);
    // The refused step left the kernel exactly as it was (the engine restored the snapshot).
    expect(fleet.site(KERNEL_FAILS).dataplane.dump()).toEqual(kernelBefore);

    const connectionsBefore = new Map(fleet.targets.map((t) => [t.site, fleet.site(t.site).connections]));
    const again = await applyFleet(repo, {
      privateKey,
      concurrency: 32,
      generationPrefix: 'gen2',
      transport: TRANSPORT,
    });
    for (const o of again.outcomes) {
      const expected = o.site === KERNEL_FAILS ? 'applied' : 'unchanged';
      expect(o.outcome, o.site).toBe(expected);
      const connections = fleet.site(o.site).connections - connectionsBefore.get(o.site)!;
      expect(connections, o.site).toBe(expected === 'unchanged' ? 1 : 2);
    }
    const answers = await queryStatus(again.targets, 32);
    for (const t of again.targets) {
      expect(statusOf(answers, t.site).applied?.generation, t.site).toBe(again.generations.get(t.site));
    }
  }, 180_000);

  it('hand edits on three routers: re-applying the same generation repairs exactly those', async () => {
    const drifted = [siteName(3), siteName(50), siteName(199)];
    await fleet.drift(drifted[0]!, 'delete-rule');
    await fleet.drift(drifted[1]!, 'sysctl');
    await fleet.drift(drifted[2]!, 'flush-nft');
    // Re-applying the same generation repairs exactly the drifted sites.
    const repair = await applyFleet(repo, {
      privateKey,
      concurrency: 32,
      generationPrefix: 'gen2',
      transport: TRANSPORT,
    });
    const changed = repair.outcomes.filter((o) => o.outcome !== 'unchanged');
    expect(changed.map((o) => [o.site, o.outcome, o.changes]).sort()).toEqual(
      drifted.map((site) => [site, 'applied', 1]),
    );
  }, 180_000);
});
