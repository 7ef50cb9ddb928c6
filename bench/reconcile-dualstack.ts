// Usage (as root, from the repository root): npx esbuild bench/reconcile-dualstack.ts --bundle --platform=node --format=esm --packages=external --outfile=dist/bench-rec6.mjs && node dist/bench-rec6.mjs [runs=25]
/**
 * Reconcile cost of IPv6, against the real kernel in the test/dual-stack-lab.ts namespaces
 * (netns mode, as bench/reconcile.ts's first column): the median wall time and process count
 * of a no-op reconcile and of a cold apply (revert between runs, not timed) for the
 * dual-stack site, beside the same site with its `ipv6:` blocks and IPv6 policy removed —
 * the IPv4 baseline, measured in the same run on the same router — and one bare
 * `ip -j rule show` spawn, so results read as "N spawns' worth" on any machine.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LinuxDataplane } from '../agent/src/dataplane/linux.js';
import { CommandRunner } from '../agent/src/dataplane/run-command.js';
import { reconcile } from '../agent/src/engine/reconcile.js';
import { revert } from '../agent/src/engine/revert.js';
import type { DesiredState } from '../agent/src/model/desired-state.js';
import { compileSite } from '../controller/src/compile/compile-site.js';
import { loadFleet } from '../controller/src/spec/load-fleet.js';
import { buildDualStackLab, compileDualStackSite, dualStackYaml } from '../test/dual-stack-lab.js';
import { Lab } from '../test/lab/lab.js';
import { median } from './median.js';

const RUNS = Math.max(20, Number(process.argv[2] ?? 25));

async function time(fn: () => Promise<unknown>): Promise<number> {
  const start = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - start) / 1e6;
}

function ipv4Only(): DesiredState {
  const yaml = dualStackYaml()
    .replace(/ {4}ipv6:\n( {6}.*\n| {8}.*\n)*/g, '')
    .replace(', 2001:db8:1:1::/64', '')
    .replace(/policies:\n[\s\S]*$/, '');
  const load = loadFleet(
    new Map([
      ['fleet.yaml', 'rollout:\n  waves:\n    - name: all\n'],
      ['sites/dualstack.yaml', yaml],
    ]),
  );
  if (load.validSites.length !== 1) throw new Error(JSON.stringify(load.diagnostics));
  return compileSite(load.validSites[0]!);
}

async function measure(dataplane: LinuxDataplane, desired: DesiredState) {
  const stateDir = await mkdtemp(join(tmpdir(), 'uplink-bench6-'));
  const options = { stateDir };
  try {
    const first = await reconcile(dataplane, desired, {}, options);
    if (first.unavailable.length > 0) throw new Error(`unavailable ${JSON.stringify(first.unavailable)}`);
    for (let i = 0; i < 3; i++) await reconcile(dataplane, desired, {}, options);
    const noop: number[] = [];
    let noopSpawns = 0;
    for (let i = 0; i < RUNS; i++) {
      const before = dataplane.commandCount;
      noop.push(await time(() => reconcile(dataplane, desired, {}, options)));
      noopSpawns = dataplane.commandCount - before;
    }
    const cold: number[] = [];
    let coldSpawns = 0;
    for (let i = 0; i < RUNS; i++) {
      await revert(dataplane, options);
      const before = dataplane.commandCount;
      cold.push(await time(() => reconcile(dataplane, desired, {}, options)));
      coldSpawns = dataplane.commandCount - before;
    }
    await revert(dataplane, options);
    return { noop, cold, noopSpawns, coldSpawns };
  } finally {
    await rm(stateDir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0)
    throw new Error('bench/reconcile-dualstack.ts needs root (network namespaces)');
  const lab = new Lab('bench6');
  try {
    const topo = await buildDualStackLab(lab);
    const runner = new CommandRunner();
    const spawn: number[] = [];
    for (let i = 0; i < RUNS; i++)
      spawn.push(await time(() => runner.run(['ip', '-n', topo.router, '-j', 'rule', 'show'])));
    const unit = median(spawn);
    const dataplane = new LinuxDataplane({ netns: topo.router, markMask: 0xff00 });
    const cases: [string, DesiredState][] = [
      ['IPv4 only (baseline)', ipv4Only()],
      ['dual-stack', compileDualStackSite()],
    ];
    console.log(`dual-stack reconcile, ${RUNS} runs each, netns mode; node ${process.version}`);
    console.log(`baseline: one \`ip -j rule show\` spawn in the netns: median ${unit.toFixed(2)} ms`);
    for (const [name, desired] of cases) {
      const m = await measure(dataplane, desired);
      const objects = `${desired.rules.length} rules, ${desired.routes.length} routes, ${desired.nft.length} nft rules`;
      console.log(`${name}: ${objects}`);
      console.log(
        `  no-op   median ${median(m.noop).toFixed(1)} ms = ${(median(m.noop) / unit).toFixed(1)}× spawn, spawns ${m.noopSpawns}`,
      );
      console.log(
        `  cold    median ${median(m.cold).toFixed(1)} ms = ${(median(m.cold) / unit).toFixed(1)}× spawn, spawns ${m.coldSpawns}`,
      );
    }
  } finally {
    await lab.cleanup();
  }
}

await main();
