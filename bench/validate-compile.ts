// Usage: npx esbuild bench/validate-compile.ts --bundle --platform=node --format=esm --packages=external --outfile=dist/bench-vc.mjs && node dist/bench-vc.mjs [sites=10000] [runs=5]  (outfile inside the repo: external packages resolve from node_modules)
/**
 * Validate + compile a generated fleet of N sites (default 10,000: 2–4 providers, 0–20
 * policies, a few groups), held in memory as the files a repository would have. Reports the
 * median wall time of several runs, sites/s, peak RSS, and the same files' YAML parsing
 * alone as a baseline (the floor any validator of these files pays).
 */
import { spawnSync } from 'node:child_process';
import { loadavg } from 'node:os';
import { parseDocument } from 'yaml';
import { compileSite } from '../controller/src/compile/compile-site.js';
import { loadFleet } from '../controller/src/spec/load-fleet.js';
import { generateFleet } from './fleet-corpus.js';
import { upperMedian } from './median.js';

const SITES = Number(process.argv[2] ?? 10_000);
const RUNS = Math.max(3, Number(process.argv[3] ?? 5));

function validateAndCompile(files: ReadonlyMap<string, string>): { sites: number; rules: number } {
  const result = loadFleet(files);
  if (!result.fleet) {
    const first = result.diagnostics.find((d) => d.severity === 'error');
    throw new Error(
      `generated fleet is invalid: ${first ? `${first.file}:${first.line}: ${first.message}` : ''}`,
    );
  }
  let rules = 0;
  for (const site of result.fleet.sites) rules += compileSite(site).rules.length;
  return { sites: result.fleet.sites.length, rules };
}

function parseOnly(files: ReadonlyMap<string, string>): number {
  let n = 0;
  for (const text of files.values()) if (parseDocument(text).toJS() !== undefined) n++;
  return n;
}

/** Wall and CPU (user+system) time: on a shared machine CPU time is the steadier of the two. */
function time<T>(fn: () => T): { ms: number; cpuMs: number; value: T } {
  const cpu = process.cpuUsage();
  const start = process.hrtime.bigint();
  const value = fn();
  const used = process.cpuUsage(cpu);
  return {
    ms: Number(process.hrtime.bigint() - start) / 1e6,
    cpuMs: (used.user + used.system) / 1000,
    value,
  };
}

const files = generateFleet(SITES);
if (process.argv[4] === 'rss-only') {
  // A process that only validates and compiles: its peak RSS is the figure (the main process
  // also holds the baseline's position-carrying documents).
  validateAndCompile(files);
  validateAndCompile(files);
  console.log(Math.round(process.resourceUsage().maxRSS / 1024));
  process.exit(0);
}
const bytes = [...files.values()].reduce((n, t) => n + t.length, 0);
console.log(
  `fleet: ${SITES} sites, ${files.size} files, ${(bytes / 1e6).toFixed(1)} MB of YAML; ${RUNS} runs each`,
);

// Interleaved, so both see the same machine load; the first full run also warms the JIT.
const full: number[] = [];
const fullCpu: number[] = [];
const base: number[] = [];
const baseCpu: number[] = [];
let summary = { sites: 0, rules: 0 };
let rssAll = 0;
for (let r = 0; r < RUNS; r++) {
  const t = time(() => validateAndCompile(files));
  full.push(t.ms);
  fullCpu.push(t.cpuMs);
  summary = t.value;
  rssAll = Math.max(rssAll, process.resourceUsage().maxRSS / 1024);
  const b = time(() => parseOnly(files));
  base.push(b.ms);
  baseCpu.push(b.cpuMs);
}

const wall = upperMedian(full);
const cpu = upperMedian(fullCpu);
const baseWall = upperMedian(base);
const baseCpuMs = upperMedian(baseCpu);
const s = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
console.log(
  `validate+compile: median ${s(wall)} wall, ${s(cpu)} CPU (wall per run ${full.map((m) => Math.round(m)).join(', ')} ms); ` +
    `${Math.round(summary.sites / (wall / 1000))} sites/s; ${summary.rules} ip rules`,
);
console.log(
  `baseline, YAML parse only (parseDocument + toJS): median ${s(baseWall)} wall, ${s(baseCpuMs)} CPU; ` +
    `validate+compile = ${(wall / baseWall).toFixed(2)}× baseline wall, ${(cpu / baseCpuMs).toFixed(2)}× CPU`,
);
const child = spawnSync(process.execPath, [process.argv[1]!, String(SITES), '1', 'rss-only'], {
  encoding: 'utf8',
});
const rssFull = Number(child.stdout.trim());
console.log(
  `peak RSS, validate+compile alone (two loads, in a child process): ${rssFull} MB (target ≤ 500 MB); ` +
    `this process with the baseline's documents too: ${Math.round(rssAll)} MB`,
);
console.log(
  `target ≤ 0.3× baseline wall: ${wall / baseWall <= 0.3 ? 'met' : 'MISSED'}; load average at the end ${loadavg()[0]!.toFixed(1)}`,
);
console.log(
  `target ≤ 2 s wall for 10k sites: ${SITES === 10_000 ? (wall <= 2000 ? 'met' : 'MISSED') : 'n/a (not 10k sites)'}`,
);
