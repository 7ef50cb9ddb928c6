/**
 * D86 for `uplink rollout --state-dir` (the real CLI, dist/uplink.mjs, in a child process)
 * against simulated routers: the canary's change takes its isp1 down; the CLI is SIGKILLed
 * while the canary bakes and run again on the same state dir. The resumed bake check must
 * compare with the health persisted before the apply (isp1 up) and halt — not take the
 * "down" reported after the restart as the health before and pass the wave.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { compileSite } from '../../controller/src/compile/compile-site.js';
import { loadFleet } from '../../controller/src/spec/load-fleet.js';
import { CONTROLLER_STATE_FILE, readControllerState } from '../../controller/src/state/index.js';
import { buildDist, ROOT } from '../build-dist.js';
import { createFleetRemote, type FleetRemote } from '../git/fleet-remote.js';
import { BrokenByChange } from './broken-by-change.js';
import { generateFleetFiles, simSitesFromFleet, siteName } from './generate-fleet.js';
import { type SimFleet, startSimFleet } from './sim-fleet.js';

const COUNT = 3;
const CANARY = siteName(0);
/** Long enough to kill the CLI mid-bake, short enough for the resumed run to wait it out. */
const WAVES = `    - name: canary
      select: { labels: { canary: "true" } }
      concurrency: 1
      maxFailures: 0
      bake: 20s
    - name: rest
      concurrency: 4
      maxFailures: 0
`;

let fleet: SimFleet | undefined;
let remote: FleetRemote;
let stateDir: string;
let child: ChildProcess | undefined;
const health = new BrokenByChange();

beforeAll(() => buildDist(), 120_000);

beforeEach(async () => {
  const specs = simSitesFromFleet(generateFleetFiles({ count: COUNT, canaries: 1 }), {
    generation: (hash) => `sim-${hash.slice(0, 12)}`,
  });
  fleet = await startSimFleet({ sites: specs.map((s) => (s.name === CANARY ? { ...s, health } : s)) });
  remote = await createFleetRemote();
  stateDir = await mkdtemp(join(tmpdir(), 'uplink-resume-cli-'));
});

afterEach(async () => {
  if (child?.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  child = undefined;
  await fleet?.close();
  await remote.cleanup();
  await rm(stateDir, { recursive: true, force: true });
});

function filesOf(variant: number): Map<string, string> {
  const ports = new Map(fleet!.targets.map((t) => [t.site, t.port]));
  return generateFleetFiles({
    count: COUNT,
    variant,
    canaries: 1,
    waves: WAVES,
    confirmWithin: '10s',
    management: (site) => ({ address: '127.0.0.1', port: ports.get(site)! }),
    hostKey: fleet!.hostKey,
  });
}

const rolloutArgs = () => [
  join(ROOT, 'dist/uplink.mjs'),
  'rollout',
  '--repo',
  remote.work,
  '--state-dir',
  stateDir,
  '--identity',
  fleet!.controllerKeyPath,
];

async function until(what: string, check: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const persisted = () => readControllerState(join(stateDir, CONTROLLER_STATE_FILE)).catch(() => undefined);
const appliedGeneration = (site: string) => fleet!.site(site).daemon.commit.record.applied?.generation;

describe('uplink rollout --state-dir: resume mid-bake (fleet simulator)', () => {
  it('a provider the change took down fails the resumed wave and halts the rollout', async () => {
    const files = filesOf(1);
    const canarySpec = loadFleet(files).fleet!.sites.find((s) => s.name === CANARY)!;
    health.breaks = compileSite(canarySpec).hash;
    const before = new Map(fleet!.targets.map((t) => [t.site, appliedGeneration(t.site)]));
    const commit = await remote.commit(Object.fromEntries(files), 'isp1 weight 2');

    const first = spawn(process.execPath, rolloutArgs(), { stdio: 'ignore' });
    child = first;
    await until('the canary baking', async () => {
      const state = await persisted();
      return state?.rollout?.plan.commit === commit && state.rollout.phase === 'baking';
    });
    first.kill('SIGKILL');
    await new Promise((resolve) => first.once('close', resolve));
    const killed = await persisted();
    expect(killed?.healthBaseline).toEqual({ commit, upBefore: { [CANARY]: ['isp1', 'isp2'] } });
    expect(fleet!.site(CANARY).daemon.commit.record.applied?.hash).toBe(health.breaks);

    const second = await new Promise<{ code: number | null; stdout: string }>((resolve) => {
      execFile(process.execPath, rolloutArgs(), { encoding: 'utf8', timeout: 60_000 }, (error, stdout) =>
        resolve({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : null, stdout }),
      );
    });
    expect(second.stdout).toContain(`resuming the rollout of ${commit.slice(0, 12)}`);
    expect(second.stdout).toMatch(/rollout halted: 0\/3 confirmed/);
    expect(second.code).toBe(1);
    const final = await persisted();
    expect(final?.rollout?.halt).toMatchObject({ wave: 'canary', failed: [CANARY] });
    expect(final?.sites[CANARY]?.lastAttempted?.error).toMatch(
      /provider isp1 was up before the apply and is down after it/,
    );
    expect(final?.healthBaseline).toBeUndefined();
    for (const site of [siteName(1), siteName(2)])
      expect(appliedGeneration(site), site).toBe(before.get(site));
  }, 120_000);
});
