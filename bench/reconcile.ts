// Usage (as root, from the repository root): npx esbuild bench/reconcile.ts --bundle --platform=node --format=esm --packages=external --outfile=dist/bench-rec.mjs && node dist/bench-rec.mjs [runs=25]  (outfile inside the repo: external packages resolve from node_modules)
/**
 * Reconcile against the real kernel, in a throwaway namespace lab: the median wall time of
 * (a) a no-op reconcile (kernel already in sync) and (b) a cold apply (revert between runs,
 * not timed), for the largest reference site and for a synthetic site with 4 providers and
 * 200 policies; and the number of ip/nft/sysctl processes each one spawns, which must not
 * depend on the number of rules. Baseline, measured the same way: one bare `ip -j rule show`
 * spawn in the namespace, so results read as "N spawns' worth" on any machine.
 *
 * Targets (issue 2/8): no-op ≤ 20 ms, cold apply ≤ 60 ms, constant process count.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { assemblePlan } from '../agent/src/core/assemble-plan.js';
import { LinuxDataplane } from '../agent/src/dataplane/linux.js';
import { CommandRunner } from '../agent/src/dataplane/run-command.js';
import { readCurrent, scopeFor } from '../agent/src/engine/read-current.js';
import { reconcile } from '../agent/src/engine/reconcile.js';
import { revert } from '../agent/src/engine/revert.js';
import { StateStore } from '../agent/src/engine/state-store.js';
import type { DesiredState } from '../agent/src/model/desired-state.js';
import { Lab } from '../test/lab/lab.js';
import { buildSiteTopology, type SiteTopologyOptions } from '../test/lab/site-topology.js';
import { compileExampleSite, type ExampleSite, SITE_TOPOLOGIES } from '../test/scenarios/site-lab.js';
import { median } from './median.js';
import { compileSynthetic, SYNTHETIC_TOPOLOGY } from './synthetic-site.js';

const INNER = process.argv[2] === '--inner';
const RUNS = Math.max(20, Number((INNER ? process.argv[4] : process.argv[2]) ?? 25));
const SITES: readonly ExampleSite[] = [
  'home-pppoe',
  'branch-adsl-vpn',
  'dmz-redundant',
  'shorewall-style',
  'lartc-split',
];

interface Sample {
  readonly ms: number;
  readonly spawns: number;
}

function percentile(xs: readonly number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!;
}

async function time(fn: () => Promise<unknown>): Promise<number> {
  const start = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - start) / 1e6;
}

interface Measured {
  /** One bare `ip -j rule show` spawn in the same mode, interleaved with the no-ops (same load). */
  readonly spawn: number[];
  readonly noop: Sample[];
  readonly cold: Sample[];
  readonly phases: Record<string, number[]>;
}

/** No-op reconciles, the reads they consist of, then cold applies (revert before each, untimed). */
async function measure(
  dataplane: LinuxDataplane,
  desired: DesiredState,
  name: string,
  spawnArgv: readonly string[],
): Promise<Measured> {
  const stateDir = await mkdtemp(join(tmpdir(), 'uplink-bench-'));
  const options = { stateDir };
  const sample = async (fn: () => Promise<unknown>): Promise<Sample> => {
    const before = dataplane.commandCount;
    const ms = await time(fn);
    return { ms, spawns: dataplane.commandCount - before };
  };
  try {
    // Warm up (first spawns, JIT, nft module loading), and check the site applies at all.
    const first = await reconcile(dataplane, desired, {}, options);
    if (first.unavailable.length > 0)
      throw new Error(`${name}: unavailable ${JSON.stringify(first.unavailable)}`);
    for (let i = 0; i < 3; i++) await reconcile(dataplane, desired, {}, options);

    const noop: Sample[] = [];
    const spawn: number[] = [];
    const runner = new CommandRunner();
    for (let i = 0; i < RUNS; i++) {
      spawn.push(await time(() => runner.run(spawnArgv)));
      noop.push(await sample(() => reconcile(dataplane, desired, {}, options)));
    }

    // Where a no-op's time goes: the read a reconcile makes (readCurrent: one ip -batch, nft,
    // and sysctl — a process in netns mode, files in router mode), the state directory (lock,
    // read applied.json; a no-op does not rewrite it) and the pure plan.
    const sysctls = Object.keys(desired.sysctls);
    const store = new StateStore(stateDir);
    const applied = (await store.readApplied())!;
    const scope = scopeFor(desired, applied.desired);
    const current = await readCurrent(dataplane, scope);
    const phases: Record<string, number[]> = { readCurrent: [], 'state dir': [], 'pure plan': [] };
    for (let i = 0; i < RUNS; i++) {
      phases.readCurrent!.push(await time(() => dataplane.readCurrent({ sysctls })));
      phases['state dir']!.push(await time(() => store.withLock(() => store.readApplied())));
      phases['pure plan']!.push(
        await time(async () =>
          assemblePlan({ desired, facts: current.facts, health: {}, current: current.kernel, scope }),
        ),
      );
    }

    const cold: Sample[] = [];
    for (let i = 0; i < RUNS; i++) {
      await revert(dataplane, options);
      cold.push(await sample(() => reconcile(dataplane, desired, {}, options)));
    }
    await revert(dataplane, options);
    return { spawn, noop, cold, phases };
  } finally {
    await rm(stateDir, { recursive: true, force: true });
  }
}

interface CaseResult {
  readonly name: string;
  readonly objects: string;
  /** The test harness's way: `ip -n NS`, `ip netns exec NS nft|sysctl`. */
  readonly netnsMode: Measured;
  /** A router's way: this benchmark re-run inside the namespace, plain `ip`/`nft`, sysctls from /proc. */
  readonly routerMode: Measured;
}

async function benchCase(
  name: string,
  which: string,
  desired: DesiredState,
  topology: SiteTopologyOptions,
): Promise<CaseResult> {
  // One lab per case: each builds its own router, ISPs and internet.
  const lab = new Lab('bench');
  try {
    const topo = await buildSiteTopology(lab, topology);
    const netnsMode = await measure(
      new LinuxDataplane({ netns: topo.router, markMask: desired.settings.markMask }),
      desired,
      name,
      ['ip', '-n', topo.router, '-j', 'rule', 'show'],
    );
    const script = process.argv[1]!;
    const inner = await lab.exec(topo.router, [process.execPath, script, '--inner', which, String(RUNS)], {
      timeoutMs: 600_000,
    });
    const routerMode = JSON.parse(inner.stdout) as Measured;
    const objects = `${desired.rules.length} rules, ${desired.routes.length} routes, ${desired.nft.length} nft rules`;
    return { name, objects, netnsMode, routerMode };
  } finally {
    await lab.cleanup();
  }
}

/** `--inner CASE`: runs inside the router namespace (ip netns exec), prints Measured as JSON. */
async function inner(which: string): Promise<void> {
  const desired =
    which === 'synthetic' ? await compileSynthetic() : await compileExampleSite(which as ExampleSite);
  const result = await measure(new LinuxDataplane({ markMask: desired.settings.markMask }), desired, which, [
    'ip',
    '-j',
    'rule',
    'show',
  ]);
  process.stdout.write(JSON.stringify(result));
}

async function baseline(lab: Lab): Promise<number[]> {
  const ns = await lab.netns('baseline');
  const runner = new CommandRunner();
  for (let i = 0; i < 3; i++) await runner.run(['ip', '-n', ns, '-j', 'rule', 'show']);
  const samples: number[] = [];
  for (let i = 0; i < RUNS; i++)
    samples.push(await time(() => runner.run(['ip', '-n', ns, '-j', 'rule', 'show'])));
  return samples;
}

function row(label: string, samples: readonly Sample[], unit: number, target: number): string {
  const ms = samples.map((s) => s.ms);
  const spawns = [...new Set(samples.map((s) => s.spawns))].join('/');
  const m = median(ms);
  return `  ${label.padEnd(10)} median ${m.toFixed(1).padStart(6)} ms  p90 ${percentile(ms, 90).toFixed(1).padStart(6)} ms  = ${(m / unit).toFixed(1).padStart(5)}× baseline  spawns ${spawns.padEnd(5)} target ≤ ${target} ms ${m <= target ? 'ok' : 'MISSED'}`;
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('bench/reconcile.ts needs root (network namespaces)');
  const lab = new Lab('bench');
  try {
    const base = await baseline(lab);
    const unit = median(base);
    console.log(`reconcile benchmark, ${RUNS} runs each; node ${process.version}`);
    console.log(
      `baseline: one \`ip -j rule show\` spawn in a netns: median ${unit.toFixed(2)} ms (p90 ${percentile(base, 90).toFixed(2)} ms)`,
    );

    const compiled = await Promise.all(
      SITES.map(async (site) => ({ site, desired: await compileExampleSite(site) })),
    );
    const size = (d: DesiredState) => d.rules.length + d.routes.length + d.nft.length;
    const largest = compiled.reduce((a, b) => (size(b.desired) > size(a.desired) ? b : a));

    const cases: CaseResult[] = [];
    cases.push(
      await benchCase(
        `${largest.site} (largest reference site)`,
        largest.site,
        largest.desired,
        SITE_TOPOLOGIES[largest.site],
      ),
    );
    cases.push(
      await benchCase(
        'synthetic: 4 providers, 200 policies',
        'synthetic',
        await compileSynthetic(),
        SYNTHETIC_TOPOLOGY,
      ),
    );

    for (const c of cases) {
      console.log(`\n${c.name} — ${c.objects}`);
      for (const [mode, m] of [
        ['router mode (inside the namespace, as on a router)', c.routerMode],
        ['netns mode (ip -n / ip netns exec, as the tests run)', c.netnsMode],
      ] as const) {
        const spawn = median(m.spawn);
        const noop = median(m.noop.map((x) => x.ms));
        console.log(
          ` ${mode}; a bare ip spawn between the no-ops: ${spawn.toFixed(1)} ms, the no-op = ${(noop / spawn).toFixed(1)}× it`,
        );
        console.log(row('no-op', m.noop, unit, 20));
        console.log(row('cold apply', m.cold, unit, 60));
        for (const [phase, samples] of Object.entries(m.phases)) {
          console.log(`    ${phase.padEnd(18)} median ${median(samples).toFixed(1).padStart(6)} ms`);
        }
      }
    }
  } finally {
    await lab.cleanup();
  }
}

if (INNER) await inner(process.argv[3]!);
else await main();
