// Usage: node scripts/build.mjs && npx esbuild bench/rollout-sim.ts --bundle --platform=node --format=esm --packages=external --outfile=dist/bench-rollout-sim.mjs && node dist/bench-rollout-sim.mjs [sites=1000] [concurrency=64] [runs=3]
/**
 * Rollout of one change to a simulated fleet (issue 4/8 "Benchmark"), three processes:
 * - the fleet simulator (dist/fleet-sim.mjs): N agents over the memory kernel behind ssh2
 *   SSH servers on loopback, every site started at generation "variant 0";
 * - the controller: the real `uplink apply` CLI (dist/uplink.mjs) on every site of the
 *   fleet repository at concurrency C, run under /usr/bin/time for its own peak RSS;
 * - this script: writes the change into the repository and times each run.
 * Each run is one change (isp1's balance weight in the dual-isp group: one route update on
 * every site, applied and then confirmed over a second connection) followed by the same
 * command again with nothing to change. Baseline, same run: the floor — one SSH connection
 * per site (connect, exec channel, hello) from this process at the same concurrency.
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

const SITES = Number(process.argv[2] ?? 1000);
const CONCURRENCY = Number(process.argv[3] ?? 64);
const RUNS = Math.max(1, Number(process.argv[4] ?? 3));

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

export interface Timed<T> {
  readonly ms: number;
  readonly value: T;
}

/** Runs the controller CLI under /usr/bin/time; returns wall ms, peak RSS (MB), exit code and stdout. */
export async function runController(
  args: readonly string[],
): Promise<{ ms: number; rssMb: number; code: number; stdout: string; stderr: string }> {
  const started = performance.now();
  const child = spawn('/usr/bin/time', ['-f', 'maxrss_kb=%M', process.execPath, 'dist/uplink.mjs', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
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

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

function countOutcomes(stdout: string): Record<string, number> {
  const outcomes = JSON.parse(stdout) as { outcome: string }[];
  const counts: Record<string, number> = {};
  for (const o of outcomes) counts[o.outcome] = (counts[o.outcome] ?? 0) + 1;
  return counts;
}

async function main(): Promise<void> {
  const sim = await startSimulator(['--sites', String(SITES), '--preapply']);
  const { manifest } = sim;
  try {
    const privateKey = await readFile(manifest.controllerKeyPath);
    const targets: SshTarget[] = manifest.targets.map((t) => ({ ...t, privateKey }));
    const ports = new Map(manifest.targets.map((t) => [t.site, t.port]));
    const hostKey = manifest.targets[0]!.hostKey;
    const siteNames = manifest.targets.map((t) => t.site);
    const applyArgs = [
      'apply',
      '--repo',
      manifest.repo,
      '--identity',
      manifest.controllerKeyPath,
      '--concurrency',
      String(CONCURRENCY),
      '--format',
      'json',
      ...siteNames,
    ];
    const floors: number[] = [];
    const changes: { ms: number; rssMb: number }[] = [];
    const noChanges: { ms: number; rssMb: number }[] = [];
    for (let run = 1; run <= RUNS; run++) {
      floors.push(await floor(targets, CONCURRENCY));
      await writeFleetFiles(
        manifest.repo,
        generateFleetFiles({
          count: SITES,
          variant: run,
          management: (site) => ({ address: '127.0.0.1', port: ports.get(site)! }),
          hostKey,
        }),
      );
      const change = await runController(applyArgs);
      const changeCounts = countOutcomes(change.stdout);
      if (changeCounts.applied !== SITES)
        throw new Error(`change run ${run}: ${JSON.stringify(changeCounts)}`);
      changes.push(change);
      const same = await runController(applyArgs);
      const sameCounts = countOutcomes(same.stdout);
      if (sameCounts.unchanged !== SITES)
        throw new Error(`no-change run ${run}: ${JSON.stringify(sameCounts)}`);
      noChanges.push(same);
      process.stdout.write(
        `run ${run}: floor ${(floors.at(-1)! / 1000).toFixed(2)} s, change ${(change.ms / 1000).toFixed(2)} s (${change.rssMb.toFixed(0)} MB), no-change ${(same.ms / 1000).toFixed(2)} s (${same.rssMb.toFixed(0)} MB)\n`,
      );
    }
    const f = median(floors);
    const c = median(changes.map((x) => x.ms));
    const n = median(noChanges.map((x) => x.ms));
    const rss = Math.max(...changes.map((x) => x.rssMb), ...noChanges.map((x) => x.rssMb));
    process.stdout.write(
      [
        `sites ${SITES}, concurrency ${CONCURRENCY}, runs ${RUNS} (medians)`,
        `floor (connect + exec + hello per site, this process): ${(f / 1000).toFixed(2)} s`,
        `change rollout (uplink apply, applied + confirmed): ${(c / 1000).toFixed(2)} s = ${(c / f).toFixed(2)}× floor`,
        `no-change rollout (uplink apply, unchanged):        ${(n / 1000).toFixed(2)} s = ${(n / f).toFixed(2)}× floor`,
        `controller peak RSS (max over runs): ${rss.toFixed(0)} MB`,
        '',
      ].join('\n'),
    );
  } finally {
    sim.child.stdin!.end();
    process.stdout.write(`${(await sim.stopped).trim()}\n`);
    await rm(sim.dir, { recursive: true, force: true });
  }
}

if (process.argv[1]?.endsWith('bench-rollout-sim.mjs')) {
  await main();
}
