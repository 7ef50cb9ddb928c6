// Usage: node scripts/build.mjs && npx esbuild bench/drift-sim.ts --bundle --platform=node --format=esm --packages=external --outfile=dist/bench-drift-sim.mjs && node dist/bench-drift-sim.mjs [sites=1000] [concurrency=64] [runs=3] [drifted=10] [simulator shards=1]
/**
 * Drift check of a simulated fleet (issue 5/8 "Benchmark"): the fleet simulator in its own
 * process (every site at the repository's state, its agent's drift watch on, K sites hand
 * edited: a rule deleted, a sysctl changed, table inet uplink flushed, a foreign rule), and
 * the real `uplink drift --format json` (dist/uplink.mjs) under /usr/bin/time: status of
 * every site at concurrency C, compared with the repository compiled, one report. The
 * report must name exactly the edited sites. Baseline, same run: the floor — one SSH
 * connection per site (connect, exec channel, hello) from this process.
 */
import { readFile } from 'node:fs/promises';
import type { SshTarget } from '../controller/src/transport/index.js';
import { median } from './median.js';
import { floor, runController, startSimulator, stopSimulator } from './rollout-sim.js';

const SITES = Number(process.argv[2] ?? 1000);
const CONCURRENCY = Number(process.argv[3] ?? 64);
const RUNS = Math.max(1, Number(process.argv[4] ?? 3));
const DRIFTED = Number(process.argv[5] ?? 10);
const SHARDS = Number(process.argv[6] ?? 1);

interface DriftJson {
  readonly summary: Record<string, number>;
  readonly sites: readonly { readonly site: string; readonly outcome: string }[];
}

async function main(): Promise<void> {
  const sim = await startSimulator([
    '--sites',
    String(SITES),
    '--preapply',
    '--watch',
    '--drift',
    String(DRIFTED),
    '--shards',
    String(SHARDS),
  ]);
  const manifest = sim.manifest as typeof sim.manifest & {
    drifted: { readonly site: string; readonly change: string }[];
  };
  // A foreign rule shadowing Uplink's is a warning, not drift: it is not Uplink's to fix.
  const expectedDrift = manifest.drifted
    .filter((d) => d.change !== 'foreign-rule')
    .map((d) => d.site)
    .sort();
  const expectedWarnings = manifest.drifted.filter((d) => d.change === 'foreign-rule').length;
  try {
    // Let the agents' checks triggered by the hand edits finish.
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    const privateKey = await readFile(manifest.controllerKeyPath);
    const targets: SshTarget[] = manifest.targets.map((t) => ({ ...t, privateKey }));
    const args = [
      'drift',
      '--repo',
      manifest.repo,
      '--identity',
      manifest.controllerKeyPath,
      '--concurrency',
      String(CONCURRENCY),
      '--format',
      'json',
    ];
    const floors: number[] = [];
    const checks: { ms: number; rssMb: number }[] = [];
    for (let run = 1; run <= RUNS; run++) {
      floors.push(await floor(targets, CONCURRENCY));
      const check = await runController(args);
      const report = JSON.parse(check.stdout) as DriftJson;
      const found = report.sites
        .filter((s) => s.outcome !== 'in-sync')
        .map((s) => s.site)
        .sort();
      const ok =
        check.code === 1 &&
        JSON.stringify(found) === JSON.stringify(expectedDrift) &&
        report.summary.warnings === expectedWarnings;
      if (!ok) {
        throw new Error(
          `run ${run}: exit ${check.code}; drift at ${found.join(', ')}, ${report.summary.warnings} warnings; expected drift at ${expectedDrift.join(', ')}, ${expectedWarnings} warnings\n${check.stderr}`,
        );
      }
      checks.push(check);
      process.stdout.write(
        `run ${run}: floor ${(floors.at(-1)! / 1000).toFixed(2)} s, uplink drift ${(check.ms / 1000).toFixed(2)} s (${check.rssMb.toFixed(0)} MB), ${found.length} drifted sites and ${report.summary.warnings} shadowing warnings found\n`,
      );
    }
    const f = median(floors);
    const c = median(checks.map((x) => x.ms));
    // The ratio is taken within each run (same load on the shared cores), then the median.
    const ratio = median(checks.map((x, i) => x.ms / floors[i]!));
    process.stdout.write(
      [
        `sites ${SITES}, concurrency ${CONCURRENCY}, ${DRIFTED} hand-edited, runs ${RUNS} (medians), simulator shards ${SHARDS}`,
        `floor (connect + exec + hello per site, from this process): ${(f / 1000).toFixed(2)} s`,
        `uplink drift (status of every site + report): ${(c / 1000).toFixed(2)} s, ${ratio.toFixed(2)}× floor, peak RSS ${Math.max(...checks.map((x) => x.rssMb)).toFixed(0)} MB`,
        '',
      ].join('\n'),
    );
  } finally {
    await stopSimulator(sim);
  }
}

await main();
