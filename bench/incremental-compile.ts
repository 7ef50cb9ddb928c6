// Usage: npx esbuild bench/incremental-compile.ts --bundle --platform=node --format=esm --packages=external --outfile=dist/bench-inc.mjs && node dist/bench-inc.mjs [sites=10000] [runs=5]
/**
 * The content-keyed cache (D151) on the bench/validate-compile.ts fleet: what the controller
 * pays to compile a new commit (compileFiles: validate + compile every site) when the commit
 * changes one site, or one group, against a cold compile of the same commit in the same run.
 * Each run: a cold compile of revision A with a fresh cache (the baseline), then revision B
 * with that cache, then the group edit C. Medians over the runs.
 */
import { loadavg } from 'node:os';
import { compileFiles } from '../controller/src/run/compile-commit.js';
import { FleetCache } from '../controller/src/spec/fleet-cache.js';
import { generateFleet } from './fleet-corpus.js';
import { upperMedian } from './median.js';

const SITES = Number(process.argv[2] ?? 10_000);
const RUNS = Math.max(3, Number(process.argv[3] ?? 5));

function time<T>(fn: () => T): { ms: number; value: T } {
  const start = process.hrtime.bigint();
  const value = fn();
  return { ms: Number(process.hrtime.bigint() - start) / 1e6, value };
}

const a = generateFleet(SITES);
const oneSite = new Map(a);
const edited = 'sites/site-00042.yaml';
oneSite.set(edited, oneSite.get(edited)!.replace('labels: { region: ', 'labels: { tier: gold, region: '));
const groupEdit = new Map(oneSite);
groupEdit.set(
  'groups/smtp-via-isp1.yaml',
  groupEdit.get('groups/smtp-via-isp1.yaml')!.replace('dport: [25, 587]', 'dport: [25, 465, 587]'),
);
const extendsSmtp = [...a.keys()].filter((f) => a.get(f)!.includes('smtp-via-isp1]')).length;

const cold: number[] = [];
const warm: number[] = [];
const group: number[] = [];
let checked = { one: 0, group: 0, compiledOne: 0, compiledGroup: 0 };
for (let r = 0; r < RUNS; r++) {
  const cache = new FleetCache();
  const c = time(() => compileFiles('a', a, cache));
  if (!c.value.ok) throw new Error('generated fleet is invalid');
  cold.push(c.ms);
  const w = time(() => compileFiles('b', oneSite, cache));
  if (!w.value.ok) throw new Error('one-site edit is invalid');
  warm.push(w.ms);
  checked = { ...checked, one: cache.stats.checkedSites.length, compiledOne: cache.stats.compiledSites };
  const g = time(() => compileFiles('c', groupEdit, cache));
  if (!g.value.ok) throw new Error('group edit is invalid');
  group.push(g.ms);
  checked = { ...checked, group: cache.stats.checkedSites.length, compiledGroup: cache.stats.compiledSites };
}
const ms = (x: number) => `${Math.round(x)} ms`;
const coldMs = upperMedian(cold);
console.log(`fleet: ${SITES} sites; ${RUNS} runs; load average ${loadavg()[0]!.toFixed(1)}`);
console.log(`cold compile (fresh cache): median ${ms(coldMs)} (runs ${cold.map(Math.round).join(', ')})`);
console.log(
  `one-site commit: median ${ms(upperMedian(warm))} = ${((100 * upperMedian(warm)) / coldMs).toFixed(1)} % of cold (target ≤ 5 %); ` +
    `sites re-checked ${checked.one}, compiled ${checked.compiledOne}`,
);
console.log(
  `group commit (smtp-via-isp1, extended by ${extendsSmtp} sites): median ${ms(upperMedian(group))} = ${((100 * upperMedian(group)) / coldMs).toFixed(1)} % of cold; ` +
    `sites re-checked ${checked.group}, compiled ${checked.compiledGroup}`,
);
