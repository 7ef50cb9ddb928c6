/**
 * D86 against simulated routers (real agent daemons over the memory kernel behind ssh2
 * servers): the controller (`uplink run`'s daemon, in process, over the real SSH transport)
 * is stopped while the canary wave bakes and started again on the same state dir. The
 * canary's change takes its isp1 down. Before the restart isp1 was up, after it the agent
 * reports it down — the resumed bake check must compare with the health persisted before the
 * apply and fail the wave (halting the rollout), not take "down" as the health before. The
 * same for `uplink rollout --state-dir` (the real CLI, dist/uplink.mjs, in a child process),
 * SIGKILLed mid-bake and run again.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { compileSite } from '../../controller/src/compile/compile-site.js';
import { ControllerDaemon } from '../../controller/src/run/controller-daemon.js';
import { createSshSiteTransport } from '../../controller/src/run/site-transport.js';
import { loadFleet } from '../../controller/src/spec/load-fleet.js';
import { CONTROLLER_STATE_FILE, readControllerState } from '../../controller/src/state/index.js';
import { buildDist, ROOT } from '../build-dist.js';
import { createFleetRemote, type FleetRemote } from '../git/fleet-remote.js';
import { until } from '../until.js';
import { BrokenByChange } from './broken-by-change.js';
import { generateFleetFiles, simSitesFromFleet, siteName } from './generate-fleet.js';
import { type SimFleet, startSimFleet } from './sim-fleet.js';

const COUNT = 3;
const CANARY = siteName(0);
const HOUR = 3_600_000;
/**
 * The canary bakes (an hour for the in-process daemon, whose clock the test moves; 20 s for
 * the CLI, long enough to kill it mid-bake and short enough to wait out); the rest does not.
 */
const waves = (bake: string) => `    - name: canary
      select: { labels: { canary: "true" } }
      concurrency: 1
      maxFailures: 0
      bake: ${bake}
    - name: rest
      concurrency: 4
      maxFailures: 0
`;

let fleet: SimFleet | undefined;
let remote: FleetRemote;
let stateDir: string;
const daemons: ControllerDaemon[] = [];
let child: ChildProcess | undefined;
const health = new BrokenByChange();

beforeEach(async () => {
  const specs = simSitesFromFleet(generateFleetFiles({ count: COUNT, canaries: 1 }), {
    generation: (hash) => `sim-${hash.slice(0, 12)}`,
  });
  fleet = await startSimFleet({
    sites: specs.map((s) => (s.name === CANARY ? { ...s, health } : s)),
  });
  remote = await createFleetRemote();
  stateDir = await mkdtemp(join(tmpdir(), 'uplink-resume-baseline-'));
});

beforeAll(() => buildDist(), 120_000);

afterEach(async () => {
  for (const d of daemons.splice(0)) await d.stop();
  if (child?.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  child = undefined;
  await fleet?.close();
  await remote.cleanup();
  await rm(stateDir, { recursive: true, force: true });
});

function filesOf(variant: number, bake = '1h'): Map<string, string> {
  const ports = new Map(fleet!.targets.map((t) => [t.site, t.port]));
  return generateFleetFiles({
    count: COUNT,
    variant,
    canaries: 1,
    waves: waves(bake),
    confirmWithin: '10s',
    management: (site) => ({ address: '127.0.0.1', port: ports.get(site)! }),
    hostKey: fleet!.hostKey,
  });
}

async function startController(now: () => number): Promise<ControllerDaemon> {
  const privateKey = await readFile(fleet!.controllerKeyPath);
  const daemon = new ControllerDaemon({
    repo: { url: remote.bare, branch: remote.branch },
    stateDir,
    transport: createSshSiteTransport({ privateKey }),
    log: pino({ level: 'silent' }),
    pollIntervalMs: HOUR,
    statusPollIntervalMs: HOUR,
    freshForMs: 1_000,
    concurrency: 4,
    signatures: null,
    version: 'test',
    now,
  });
  daemons.push(daemon);
  await daemon.start();
  return daemon;
}

/** What each simulated agent runs now (its journal). */
const appliedGeneration = (site: string) => fleet!.site(site).daemon.commit.record.applied?.generation;

describe('resume mid-bake (fleet simulator)', () => {
  it('a provider the change took down fails the resumed wave and halts the rollout', async () => {
    const files = filesOf(1);
    const canarySpec = loadFleet(files).fleet!.sites.find((s) => s.name === CANARY)!;
    health.breaks = compileSite(canarySpec).hash;
    const before = new Map(fleet!.targets.map((t) => [t.site, appliedGeneration(t.site)]));
    const commit = await remote.commit(Object.fromEntries(files), 'isp1 weight 2');

    const first = await startController(Date.now);
    await until(
      'the canary baking',
      () =>
        first.state.rollout?.plan.commit === commit &&
        first.state.rollout.phase === 'baking' &&
        first.state.rollout.waveIndex === 0,
    );
    // The change is in force on the canary and isp1 is down there now.
    const after = await first.options.transport.status(canarySpec);
    expect(after.health.find((h) => h.name === 'isp1')?.state).toBe('down');
    await first.stop();
    const persisted = await readControllerState(join(stateDir, CONTROLLER_STATE_FILE));
    expect(persisted.rollout?.phase).toBe('baking');
    expect(persisted.healthBaseline).toEqual({ commit, upBefore: { [CANARY]: ['isp1', 'isp2'] } });

    // Two hours on: the bake is over when the second controller resumes, its check runs at once.
    const second = await startController(() => Date.now() + 2 * HOUR);
    await until(
      'the rollout settled',
      () =>
        (second.state.rollout?.phase === 'halted' || second.state.rollout?.phase === 'done') &&
        second.currentRun === undefined,
    );
    expect(second.state.rollout?.phase).toBe('halted');
    expect(second.state.rollout?.halt).toMatchObject({ wave: 'canary', failed: [CANARY] });
    expect(second.state.sites[CANARY]?.lastAttempted?.outcome).toBe('unhealthy');
    expect(second.state.sites[CANARY]?.lastAttempted?.error).toMatch(
      /provider isp1 was up before the apply and is down after it/,
    );
    // The rest wave never started: its routers still run what they ran before.
    for (const site of [siteName(1), siteName(2)]) {
      expect(appliedGeneration(site), site).toBe(before.get(site));
    }
    await second.stop();
    expect((await readControllerState(join(stateDir, CONTROLLER_STATE_FILE))).healthBaseline).toBeUndefined();
  });
});

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

const persisted = () => readControllerState(join(stateDir, CONTROLLER_STATE_FILE)).catch(() => undefined);

describe('uplink rollout --state-dir: resume mid-bake (fleet simulator)', () => {
  it('a provider the change took down fails the resumed wave and halts the rollout', async () => {
    const files = filesOf(1, '20s');
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
