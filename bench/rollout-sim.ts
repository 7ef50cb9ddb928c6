// Usage: node scripts/build.mjs && npx esbuild bench/rollout-sim.ts --bundle --platform=node --format=esm --packages=external --outfile=dist/bench-rollout-sim.mjs && node dist/bench-rollout-sim.mjs [sites=1000] [concurrency=64] [runs=3] [simulator shards=1]
/**
 * Rollout of one change to a simulated fleet (issue 4/8 "Benchmark"), three processes:
 * - the fleet simulator (dist/fleet-sim.mjs): N agents over the memory kernel behind ssh2
 *   SSH servers on loopback, every site started at the state of commit "variant 0";
 * - the controller: the real CLI (dist/uplink.mjs) under /usr/bin/time for its own peak RSS —
 *   `uplink rollout --repo` (status of every site, then waves: 2 canaries, then the rest at
 *   concurrency C, no bake) and, for comparison, `uplink apply` of every site at C;
 * - this script: commits the change to the fleet repository (git) and times each run.
 * A change is isp1's balance weight in the dual-isp group: one route update on every site,
 * applied, then confirmed over a second connection. Each change is followed by the same
 * command with nothing to change. Baseline, same run: the floor — one SSH connection per
 * site (connect, exec channel, hello) from this process at the same concurrency.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import {
  AgentSession,
  connectSsh,
  mapWithConcurrency,
  type SshTarget,
} from '../controller/src/transport/index.js';
import { generateFleetFiles, writeFleetFiles } from '../test/fleet-sim/generate-fleet.js';
import type { SimTarget } from '../test/fleet-sim/sim-fleet.js';
import { median } from './median.js';

const SITES = Number(process.argv[2] ?? 1000);
const CONCURRENCY = Number(process.argv[3] ?? 64);
const RUNS = Math.max(1, Number(process.argv[4] ?? 3));
/** Simulator processes (fleet-sim --shards): 10,000 sites need 2 under a 20,000 open-file limit. */
const SHARDS = Number(process.argv[5] ?? 1);

interface Manifest {
  readonly repo: string;
  readonly controllerKeyPath: string;
  readonly knownHostsPath: string;
  readonly targets: readonly SimTarget[];
}

/** Starts the simulator and waits for its `ready` line. */
export async function startSimulator(
  args: readonly string[],
): Promise<{ child: ChildProcess; manifest: Manifest; dir: string; stopped: Promise<string> }> {
  const dir = await mkdtemp(join(tmpdir(), 'uplink-bench-sim-'));
  const child = spawn(process.execPath, ['dist/fleet-sim.mjs', '--out', dir, ...args], {
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { ...process.env, UV_THREADPOOL_SIZE: '8' },
  });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const stopped = new Promise<string>((resolve) => child.once('exit', () => resolve(stderr)));
  const lines = createInterface({ input: child.stdout! });
  const ready = await new Promise<string>((resolve, reject) => {
    lines.once('line', resolve);
    child.once('exit', (code) => reject(new Error(`fleet-sim exited (${code}): ${stderr}`)));
  });
  const path = /^ready (.+)$/.exec(ready)?.[1];
  if (path === undefined) throw new Error(`fleet-sim: unexpected first line ${ready}`);
  const manifest = JSON.parse(await readFile(path, 'utf8')) as Manifest;
  return { child, manifest, dir, stopped };
}

/** Ends the simulator (EOF on its stdin), prints its summary and removes its directory. */
export async function stopSimulator(sim: {
  child: ChildProcess;
  dir: string;
  stopped: Promise<string>;
}): Promise<void> {
  sim.child.stdin!.end();
  process.stdout.write(`${(await sim.stopped).trim()}\n`);
  await rm(sim.dir, { recursive: true, force: true });
}

export interface Timed<T> {
  readonly ms: number;
  readonly value: T;
}

/** Runs the controller CLI under /usr/bin/time; returns wall ms, peak RSS (MB), exit code and stdout. */
export async function runController(
  args: readonly string[],
): Promise<{ ms: number; rssMb: number; code: number; stdout: string; stderr: string }> {
  const started = performance.now();
  // UPLINK_BENCH_CPU_PROF=DIR: a V8 CPU profile of each controller run, for where the time goes.
  const profile = process.env.UPLINK_BENCH_CPU_PROF;
  const flags = profile ? ['--cpu-prof', `--cpu-prof-dir=${profile}`] : [];
  // UPLINK_BENCH_HEAP_PROF=DIR: a V8 sampling heap profile of each run (what is live at exit).
  const heap = process.env.UPLINK_BENCH_HEAP_PROF;
  if (heap) flags.push('--heap-prof', `--heap-prof-dir=${heap}`);
  const child = spawn(
    '/usr/bin/time',
    ['-f', 'maxrss_kb=%M', process.execPath, ...flags, 'dist/uplink.mjs', ...args],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => {
    stdout += c.toString();
  });
  child.stderr.on('data', (c: Buffer) => {
    stderr += c.toString();
  });
  const code = await new Promise<number>((resolve) => child.once('exit', (c) => resolve(c ?? -1)));
  const ms = performance.now() - started;
  const rss = Number(/maxrss_kb=(\d+)/.exec(stderr)?.[1] ?? Number.NaN) / 1024;
  return { ms, rssMb: rss, code, stdout, stderr };
}

/** The floor: one SSH connection per site — connect, exec channel, hello — at the same concurrency. */
export async function floor(targets: readonly SshTarget[], concurrency: number): Promise<number> {
  const started = performance.now();
  const results = await mapWithConcurrency(targets, concurrency, async (target) => {
    const connection = await connectSsh(target);
    try {
      const session = await AgentSession.open(connection);
      await session.hello();
      await session.close();
      return true;
    } finally {
      connection.close();
    }
  });
  if (results.length !== targets.length) throw new Error('floor: not every site answered');
  return performance.now() - started;
}

function countOutcomes(stdout: string): Record<string, number> {
  const outcomes = JSON.parse(stdout) as { outcome: string }[];
  const counts: Record<string, number> = {};
  for (const o of outcomes) counts[o.outcome] = (counts[o.outcome] ?? 0) + 1;
  return counts;
}

/** The benchmark's waves: two canaries, then everything else at the benchmark's concurrency; no bake. */
function benchWaves(concurrency: number): string {
  return `    - name: canary
      select: { labels: { canary: "true" } }
      concurrency: 2
      maxFailures: 0
    - name: rest
      concurrency: ${concurrency}
      maxFailures: 10
`;
}

function git(cwd: string, args: readonly string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('git', ['-c', 'user.name=bench', '-c', 'user.email=bench@example.net', ...args], {
      cwd,
      stdio: 'ignore',
    });
    child.once('exit', (code) =>
      code === 0 ? resolve() : reject(new Error(`git ${args.join(' ')}: ${code}`)),
    );
  });
}

interface Figures {
  ms: number;
  rssMb: number;
}

async function main(): Promise<void> {
  const sim = await startSimulator(['--sites', String(SITES), '--preapply', '--shards', String(SHARDS)]);
  const { manifest } = sim;
  try {
    const privateKey = await readFile(manifest.controllerKeyPath);
    const targets: SshTarget[] = manifest.targets.map((t) => ({ ...t, privateKey }));
    const ports = new Map(manifest.targets.map((t) => [t.site, t.port]));
    const hostKey = manifest.targets[0]!.hostKey;
    const siteNames = manifest.targets.map((t) => t.site);
    const repo = manifest.repo;
    const writeVariant = (variant: number) =>
      writeFleetFiles(
        repo,
        generateFleetFiles({
          count: SITES,
          variant,
          management: (site) => ({ address: '127.0.0.1', port: ports.get(site)! }),
          hostKey,
          waves: benchWaves(CONCURRENCY),
        }),
      );
    await writeVariant(0);
    await git(repo, ['init', '-q', '-b', 'main']);
    await git(repo, ['add', '-A']);
    await git(repo, ['commit', '-q', '-m', 'variant 0 (what the simulated sites run)']);
    const key = ['--identity', manifest.controllerKeyPath];
    const rolloutArgs = [
      'rollout',
      '--repo',
      repo,
      ...key,
      '--concurrency',
      String(CONCURRENCY),
      '--format',
      'json',
    ];
    const applyArgs = [
      'apply',
      '--repo',
      repo,
      ...key,
      '--concurrency',
      String(CONCURRENCY),
      '--format',
      'json',
      ...siteNames,
    ];

    const floors: number[] = [];
    const figures = {
      rolloutChange: [] as Figures[],
      rolloutSame: [] as Figures[],
      applyChange: [] as Figures[],
      applySame: [] as Figures[],
    };
    let variant = 0;
    const commitVariant = async () => {
      variant++;
      await writeVariant(variant);
      await git(repo, ['commit', '-q', '-am', `isp1 weight ${1 + variant}`]);
    };
    for (let run = 1; run <= RUNS; run++) {
      floors.push(await floor(targets, CONCURRENCY));

      await commitVariant();
      const change = await runController(rolloutArgs);
      const changed = JSON.parse(change.stdout) as { phase: string; perSite: { status: string }[] };
      const confirmed = changed.perSite.filter((p) => p.status === 'confirmed').length;
      if (change.code !== 0 || changed.phase !== 'done' || confirmed !== SITES)
        throw new Error(
          `rollout run ${run}: exit ${change.code}, ${changed.phase}, ${confirmed} confirmed\n${change.stderr}`,
        );
      figures.rolloutChange.push(change);
      const same = await runController(rolloutArgs);
      const unchanged = JSON.parse(same.stdout) as {
        phase: string;
        perSite: unknown[];
        plan: { unchanged: unknown[] };
      };
      if (same.code !== 0 || unchanged.perSite.length !== 0 || unchanged.plan.unchanged.length !== SITES)
        throw new Error(
          `no-change rollout run ${run}: exit ${same.code}, ${unchanged.perSite.length} planned`,
        );
      figures.rolloutSame.push(same);

      await commitVariant();
      const applied = await runController(applyArgs);
      const appliedCounts = countOutcomes(applied.stdout);
      if (appliedCounts.applied !== SITES)
        throw new Error(`apply run ${run}: ${JSON.stringify(appliedCounts)}`);
      figures.applyChange.push(applied);
      const again = await runController(applyArgs);
      const againCounts = countOutcomes(again.stdout);
      if (againCounts.unchanged !== SITES)
        throw new Error(`apply again run ${run}: ${JSON.stringify(againCounts)}`);
      figures.applySame.push(again);

      const s = (x: Figures) => `${(x.ms / 1000).toFixed(2)} s/${x.rssMb.toFixed(0)} MB`;
      process.stdout.write(
        `run ${run}: floor ${(floors.at(-1)! / 1000).toFixed(2)} s; rollout change ${s(change)}, no-change ${s(same)}; apply change ${s(applied)}, no-change ${s(again)}\n`,
      );
    }
    const f = median(floors);
    // The ratio is taken within each run (same load on the shared cores), then the median.
    const row = (label: string, xs: Figures[]) => {
      const ms = median(xs.map((x) => x.ms));
      const ratio = median(xs.map((x, i) => x.ms / floors[i]!));
      const rss = Math.max(...xs.map((x) => x.rssMb));
      return `${label}: ${(ms / 1000).toFixed(2)} s, ${ratio.toFixed(2)}× floor, controller peak RSS ${rss.toFixed(0)} MB`;
    };
    process.stdout.write(
      [
        `sites ${SITES}, concurrency ${CONCURRENCY}, runs ${RUNS} (medians; RSS: max over runs), simulator shards ${SHARDS}`,
        `floor (connect + exec + hello per site, from this process): ${(f / 1000).toFixed(2)} s`,
        row('uplink rollout, one change (waves, applied + confirmed)', figures.rolloutChange),
        row('uplink rollout, nothing changed (status only)         ', figures.rolloutSame),
        row('uplink apply, one change (applied + confirmed)         ', figures.applyChange),
        row('uplink apply, nothing changed                          ', figures.applySame),
        '',
      ].join('\n'),
    );
  } finally {
    await stopSimulator(sim);
  }
}

if (process.argv[1]?.endsWith('bench-rollout-sim.mjs')) {
  await main();
}
