/**
 * The fleet simulator split over processes (`dist/fleet-sim.mjs --shards K`) behaves like one:
 * the same fleet run as 3 shards and as 1 process, the real `uplink rollout` (dist/uplink.mjs)
 * of one change against each, then every agent asked over SSH — the same sites confirmed, the
 * same state applied (hash and owned objects) on every site. Each shard is its own process
 * running exactly its contiguous share of the sites.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildDist, ROOT } from './build-dist.js';
import { queryStatus } from './fleet-sim/drive-controller.js';
import { generateFleetFiles, siteName, writeFleetFiles } from './fleet-sim/generate-fleet.js';
import type { SimTarget } from './fleet-sim/sim-fleet.js';

const COUNT = 7;
const SHARDS = 3;

interface Manifest {
  readonly pid: number;
  readonly repo: string;
  readonly controllerKeyPath: string;
  readonly knownHostsPath: string;
  readonly targets: readonly SimTarget[];
}

interface Sim {
  readonly child: ChildProcess;
  readonly dir: string;
  readonly manifest: Manifest;
  readonly exited: Promise<string>;
}

const sims: Sim[] = [];

async function startSim(shards: number): Promise<Sim> {
  const dir = await mkdtemp(join(tmpdir(), 'uplink-sim-shards-'));
  const child = spawn(
    process.execPath,
    [
      join(ROOT, 'dist/fleet-sim.mjs'),
      '--sites',
      String(COUNT),
      '--out',
      dir,
      '--preapply',
      '--shards',
      String(shards),
    ],
    { stdio: ['pipe', 'pipe', 'pipe'] },
  );
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const exited = new Promise<string>((resolve) => child.once('exit', () => resolve(stderr)));
  const line = await new Promise<string | undefined>((resolve) => {
    createInterface({ input: child.stdout! }).once('line', resolve);
    void exited.then(() => resolve(undefined));
  });
  const path = line === undefined ? undefined : /^ready (.+)$/.exec(line)?.[1];
  if (path === undefined) throw new Error(`fleet-sim --shards ${shards} did not start:\n${stderr}`);
  const sim = { child, dir, manifest: JSON.parse(await readFile(path, 'utf8')) as Manifest, exited };
  sims.push(sim);
  return sim;
}

function run(cwd: string, file: string, args: readonly string[]) {
  return new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    execFile(
      file,
      args,
      { cwd, encoding: 'utf8', timeout: 120_000, maxBuffer: 16 * 1024 * 1024 },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === 'number' ? error.code : null;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

const git = (cwd: string, ...args: string[]) =>
  run(cwd, 'git', ['-c', 'user.name=test', '-c', 'user.email=test@example.net', ...args]);

/** Commits the simulator's repository (variant 0, what the sites run), then variant 1, and rolls it out. */
async function rolloutOneChange(sim: Sim) {
  const { repo, targets, controllerKeyPath } = sim.manifest;
  expect((await git(repo, 'init', '-q', '-b', 'main')).code).toBe(0);
  await git(repo, 'add', '-A');
  expect((await git(repo, 'commit', '-q', '-m', 'variant 0')).code).toBe(0);
  const ports = new Map(targets.map((t) => [t.site, t.port]));
  await writeFleetFiles(
    repo,
    generateFleetFiles({
      count: COUNT,
      variant: 1,
      management: (site) => ({ address: '127.0.0.1', port: ports.get(site)! }),
      hostKey: targets[0]!.hostKey,
    }),
  );
  expect((await git(repo, 'commit', '-q', '-am', 'variant 1')).code).toBe(0);
  const result = await run(ROOT, process.execPath, [
    join(ROOT, 'dist/uplink.mjs'),
    'rollout',
    '--repo',
    repo,
    '--identity',
    controllerKeyPath,
    '--format',
    'json',
  ]);
  expect(result.code, result.stderr).toBe(0);
  const final = JSON.parse(result.stdout) as {
    phase: string;
    perSite: { site: string; status: string }[];
  };
  const privateKey = await readFile(controllerKeyPath);
  const answers = await queryStatus(
    targets.map((t) => ({ ...t, privateKey })),
    4,
  );
  const agents = new Map(
    answers.map((a) => {
      if (!a.ok) throw new Error(`${a.site}: ${a.error}`);
      return [a.site, { hash: a.status.applied?.hash, pending: a.status.pending, owned: a.status.owned }];
    }),
  );
  return {
    phase: final.phase,
    perSite: new Map(final.perSite.map((p) => [p.site, p.status])),
    agents,
  };
}

beforeAll(() => buildDist(), 120_000);

afterAll(async () => {
  for (const sim of sims) {
    sim.child.stdin?.end();
    await sim.exited;
    await rm(sim.dir, { recursive: true, force: true });
  }
});

describe('fleet simulator in shards', () => {
  it('runs each share in its own process and rolls out like the one-process simulator', async () => {
    const sharded = await startSim(SHARDS);
    const single = await startSim(1);
    const names = Array.from({ length: COUNT }, (_, i) => siteName(i));
    expect(sharded.manifest.targets.map((t) => t.site)).toEqual(names);
    // Every site its own SSH server, in one of three other processes, each with its share.
    expect(new Set(sharded.manifest.targets.map((t) => t.port)).size).toBe(COUNT);
    const pids = new Set<number>();
    const shares: string[][] = [];
    for (let i = 0; i < SHARDS; i++) {
      const shard = JSON.parse(
        await readFile(join(sharded.dir, `shard-${i}`, 'manifest.json'), 'utf8'),
      ) as Manifest;
      pids.add(shard.pid);
      shares.push(shard.targets.map((t) => t.site));
    }
    expect(pids.size).toBe(SHARDS);
    expect(pids.has(sharded.manifest.pid)).toBe(false);
    expect(shares).toEqual([names.slice(0, 2), names.slice(2, 4), names.slice(4, 7)]);
    const known = await readFile(sharded.manifest.knownHostsPath, 'utf8');
    expect(known.trim().split('\n')).toHaveLength(COUNT);

    const a = await rolloutOneChange(sharded);
    const b = await rolloutOneChange(single);
    expect(a.phase).toBe('done');
    expect([...a.perSite.values()]).toEqual(Array(COUNT).fill('confirmed'));
    expect(a.perSite).toEqual(b.perSite);
    // The same state applied on every site, confirmed (nothing pending), whichever process runs it.
    expect(a.agents).toEqual(b.agents);
    for (const agent of a.agents.values()) {
      expect(agent.pending).toBeNull();
      expect(agent.hash).toMatch(/^[0-9a-f]{8,}$/);
    }
  }, 180_000);

  it('prints the shards’ peak RSS, summed, when stopped', async () => {
    const sim = sims[0]!;
    sim.child.stdin!.end();
    expect(await sim.exited).toMatch(/fleet-sim: peak RSS \d+ MB \(3 shards: \d+ \+ \d+ \+ \d+ MB\)/);
  });
});
