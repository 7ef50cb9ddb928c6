// Usage: npx esbuild scripts/fuzz-spec.ts --bundle --platform=node --format=esm --packages=external --outfile=dist/fuzz-spec.mjs && node dist/fuzz-spec.mjs [mutants=20000] [seed=1]
/**
 * The long run of the spec fuzzer (test/contract/spec-fuzz.test.ts runs 400 in `make test`):
 * mutated copies of fleet-repo-example through loadFleet and the compiler. Reports every
 * mutant that threw or produced a diagnostic without a position inside the file, and the
 * slowest mutants with the time each took (reported, never asserted: D90).
 */
import { join } from 'node:path';
import { compileSite } from '../controller/src/compile/compile-site.js';
import { readFleetFiles } from '../controller/src/repo/read-fleet-files.js';
import { loadFleet } from '../controller/src/spec/load-fleet.js';
import { mutateFleet } from '../test/contract/mutate-fleet.js';

const COUNT = Number(process.argv[2] ?? 20_000);
const SEED = Number(process.argv[3] ?? 1);
const example = await readFleetFiles(join(process.cwd(), 'fleet-repo-example'));
const failures: string[] = [];
const timings: { ms: number; chars: number; applied: string }[] = [];
let invalid = 0;
for (const { files, applied } of mutateFleet(example, SEED, COUNT)) {
  const chars = [...files.values()].reduce((n, t) => n + t.length, 0);
  const start = performance.now();
  try {
    const load = loadFleet(files);
    for (const site of load.validSites) compileSite(site);
    if (load.fleet === undefined) invalid++;
    for (const d of load.diagnostics) {
      const text = files.get(d.file);
      if (d.line < 1 || d.col < 1 || (text !== undefined && d.line > text.split('\n').length)) {
        failures.push(`bad position ${d.file}:${d.line}:${d.col} [${applied.join('; ')}]`);
      }
    }
  } catch (error) {
    failures.push(`threw ${(error as Error).message} [${applied.join('; ')}]`);
  }
  timings.push({ ms: performance.now() - start, chars, applied: applied.join('; ') });
}
timings.sort((a, b) => b.ms - a.ms);
const median = timings[Math.floor(timings.length / 2)]!.ms;
console.log(`${COUNT} mutants (seed ${SEED}): ${invalid} invalid, ${failures.length} failures`);
console.log(`median ${median.toFixed(1)} ms; slowest (ms per MB of input shows whether time stays linear):`);
for (const t of timings.slice(0, 8)) {
  console.log(
    `  ${t.ms.toFixed(0)} ms, ${(t.chars / 1e6).toFixed(2)} MB, ${((t.ms / t.chars) * 1e6).toFixed(0)} ms/MB: ${t.applied}`,
  );
}
for (const f of failures.slice(0, 20)) console.log(`FAIL ${f}`);
process.exitCode = failures.length > 0 ? 1 : 0;
