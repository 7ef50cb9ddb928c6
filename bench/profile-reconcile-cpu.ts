// Usage (as root): npx esbuild bench/profile-reconcile-cpu.ts --bundle --platform=node --format=esm --packages=external --outfile=dist/bench-prof.mjs && node [--cpu-prof] dist/bench-prof.mjs
/**
 * The CPU side of a no-op reconcile of the synthetic 200-policy site, without the processes:
 * parsing the recorded `ip`/`nft` output of a real namespace, reading applied.json, the pure
 * plan and the no-op check, each a median of 200 runs. For finding what to make cheaper
 * (run with --cpu-prof); bench/reconcile.ts has the wall-clock figures.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { assemblePlan } from '../agent/src/core/assemble-plan.js';
import { stableJson } from '../agent/src/core/canonicalize-state.js';
import { parseIpFacts, parseIpRoutes, parseIpRules } from '../agent/src/core/parse-ip-json.js';
import { LinuxDataplane } from '../agent/src/dataplane/linux.js';
import { CommandRunner } from '../agent/src/dataplane/run-command.js';
import { readCurrent, scopeFor } from '../agent/src/engine/read-current.js';
import { reconcile } from '../agent/src/engine/reconcile.js';
import { StateStore } from '../agent/src/engine/state-store.js';
import { Lab } from '../test/lab/lab.js';
import { buildSiteTopology } from '../test/lab/site-topology.js';
import { upperMedian } from './median.js';
import { compileSynthetic, SYNTHETIC_TOPOLOGY } from './synthetic-site.js';

const RUNS = 200;

async function timed(label: string, fn: () => unknown): Promise<void> {
  const xs: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const start = process.hrtime.bigint();
    await fn();
    xs.push(Number(process.hrtime.bigint() - start) / 1e6);
  }
  console.log(`${label.padEnd(28)} median ${upperMedian(xs).toFixed(3)} ms`);
}

const lab = new Lab('prof');
const stateDir = await mkdtemp(join(tmpdir(), 'uplink-prof-'));
try {
  const topo = await buildSiteTopology(lab, SYNTHETIC_TOPOLOGY);
  const desired = await compileSynthetic();
  const dataplane = new LinuxDataplane({ netns: topo.router, markMask: desired.settings.markMask });
  await reconcile(dataplane, desired, {}, { stateDir });
  const runner = new CommandRunner();
  const ip = (...args: string[]) => runner.run(['ip', '-n', topo.router, ...args]).then((r) => r.stdout);
  const rules = await ip('-4', '-N', '-j', '-d', 'rule', 'show');
  const routes = await ip('-4', '-N', '-j', '-d', 'route', 'show', 'table', 'all');
  const addresses = await ip('-j', 'addr', 'show');
  const store = new StateStore(stateDir);
  const applied = (await store.readApplied())!;
  const scope = scopeFor(desired, applied.desired);
  const current = await readCurrent(dataplane, scope);

  await timed('parse rules', () => parseIpRules(rules));
  await timed('parse routes', () => parseIpRoutes(routes));
  await timed('parse facts', () => parseIpFacts(addresses, routes));
  await timed('read applied.json', () => store.readApplied());
  await timed('scopeFor', () => scopeFor(desired, applied.desired));
  await timed('assemblePlan', () =>
    assemblePlan({ desired, facts: current.facts, health: {}, current: current.kernel, scope }),
  );
  await timed('no-op check (stableJson ×2)', () => stableJson(applied.desired) === stableJson(desired));
} finally {
  await rm(stateDir, { recursive: true, force: true });
  await lab.cleanup();
}
