/**
 * `uplink rollout`, the real CLI (dist/uplink.mjs), against simulated agents (real daemons
 * over the memory kernel behind ssh2 servers on loopback): the SSH connections a rollout costs
 * per site, and `rollbackOnFailure` — when a site fails, the sites this rollout already
 * updated are put back on the state they had, compiled from the commit their agent reports.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildDist, ROOT } from './build-dist.js';
import { generateFleetFiles, simSitesFromFleet, siteName } from './fleet-sim/generate-fleet.js';
import { type SimFleet, startSimFleet } from './fleet-sim/sim-fleet.js';
import { createFleetRemote, type FleetRemote } from './git/fleet-remote.js';

const COUNT = 4;
const FAILING = siteName(3);
const ONE_WAVE = `    - name: all
      concurrency: ${COUNT}
      maxFailures: 0
`;

let fleet: SimFleet;
let remote: FleetRemote;

function filesOf(variant: number): Record<string, string> {
  const ports = new Map(fleet.targets.map((t) => [t.site, t.port]));
  const files = generateFleetFiles({
    count: COUNT,
    variant,
    canaries: 0,
    waves: ONE_WAVE,
    confirmWithin: '10s',
    management: (site) => ({ address: '127.0.0.1', port: ports.get(site)! }),
    hostKey: fleet.hostKey,
  });
  const fleetYaml = files.get('fleet.yaml')!.replace('rollout:\n', 'rollout:\n  rollbackOnFailure: true\n');
  return Object.fromEntries(
    [...files].map(([path, text]) => [path, path === 'fleet.yaml' ? fleetYaml : text]),
  );
}

/** The CLI in a child process, asynchronously: the simulated agents live in this process. */
function rollout(): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [
        join(ROOT, 'dist/uplink.mjs'),
        'rollout',
        '--repo',
        remote.work,
        '--identity',
        fleet.controllerKeyPath,
      ],
      { encoding: 'utf8', timeout: 120_000 },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === 'number' ? error.code : null;
        resolve({ status: code, stdout, stderr });
      },
    );
  });
}

/** What each agent has applied (its journal), read in process. */
function appliedHashes(): Map<string, string | undefined> {
  return new Map(fleet.targets.map((t) => [t.site, fleet.site(t.site).daemon.commit.record.applied?.hash]));
}

beforeAll(async () => {
  buildDist();
  fleet = await startSimFleet({ sites: simSitesFromFleet(generateFleetFiles({ count: COUNT })) });
  remote = await createFleetRemote();
}, 120_000);

afterAll(async () => {
  await fleet?.close();
  await remote?.cleanup();
});

function connections(): Map<string, number> {
  return new Map(fleet.targets.map((t) => [t.site, fleet.site(t.site).connections]));
}

function since(before: Map<string, number>): number[] {
  return fleet.targets.map((t) => fleet.site(t.site).connections - before.get(t.site)!);
}

describe('uplink rollout: connections per site', () => {
  it('a change costs two connections per site (status + apply, confirm); no change costs one', async () => {
    await remote.commit(filesOf(5), 'isp1 weight 6');
    let before = connections();
    const change = await rollout();
    expect(change.status, `${change.stdout}\n${change.stderr}`).toBe(0);
    expect(since(before)).toEqual(Array(COUNT).fill(2));

    before = connections();
    const same = await rollout();
    expect(same.status, `${same.stdout}\n${same.stderr}`).toBe(0);
    expect(since(before)).toEqual(Array(COUNT).fill(1));
  });
});

describe('uplink rollout: rollbackOnFailure', () => {
  it('a failed site halts the rollout and the updated sites go back to their previous state', async () => {
    await remote.commit(filesOf(0), 'fleet, weight 1');
    const first = await rollout();
    expect(first.status, `${first.stdout}\n${first.stderr}`).toBe(0);
    const before = appliedHashes();
    expect([...before.values()].every((h) => h !== undefined)).toBe(true);

    await remote.commit(filesOf(1), 'isp1 weight 2');
    fleet.inject(FAILING, { kind: 'kernel-fail' });
    const second = await rollout();
    expect(second.status).toBe(1);
    expect(second.stdout).toMatch(/rollout halted/);

    // Every site is back on (or still on) the first commit's state; none stays on the halted one.
    expect(appliedHashes()).toEqual(before);
  });
});
