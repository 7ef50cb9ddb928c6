// Usage: npx esbuild bench/validate-compile.ts --bundle --platform=node --format=esm --packages=external --outfile=dist/bench-vc.mjs && node dist/bench-vc.mjs [sites=10000] [runs=5]  (outfile inside the repo: external packages resolve from node_modules)
/**
 * Validate + compile a generated fleet of N sites (default 10,000: 2–4 providers, 0–20
 * policies, a few groups), held in memory as the files a repository would have. Reports the
 * median wall time of several runs, sites/s, peak RSS, and the same files' YAML parsing
 * alone as a baseline (the floor any validator of these files pays).
 */
import { parseDocument } from 'yaml';
import { compileSite } from '../controller/src/compile/compile-site.js';
import { loadFleet } from '../controller/src/spec/load-fleet.js';
import { mulberry32 } from '../test/lab/mulberry32.js';
import { upperMedian } from './median.js';

const SITES = Number(process.argv[2] ?? 10_000);
const RUNS = Math.max(3, Number(process.argv[3] ?? 5));

const KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEaBhMD+z0lxDQfAW10VyG7qYY4PRXHcvAYGlNrX3ReB';
const DOC_NETS = ['192.0.2', '198.51.100', '203.0.113'] as const;

function generateFleet(count: number): Map<string, string> {
  const rand = mulberry32(42);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
  const int = (lo: number, hi: number) => lo + Math.floor(rand() * (hi - lo + 1));
  const files = new Map<string, string>();
  files.set(
    'fleet.yaml',
    `defaults:
  health: { interval: 1s, timeout: 500ms }
rollout:
  confirmWithin: 30s
  waves:
    - name: canary
      select: { labels: { canary: "true" } }
    - name: early
      percent: 10
    - name: rest
`,
  );
  files.set(
    'groups/base.yaml',
    'name: base\nlabels: { managed-by: uplink }\nsysctls:\n  net.ipv4.conf.all.rp_filter: 2\n',
  );
  files.set(
    'groups/dual-isp.yaml',
    `name: dual-isp
extends: [base]
lan:
  - interface: lan0
providers:
  - name: isp1
    interface: wan1
    gateway: detect
    balance: 1
  - name: isp2
    interface: wan2
    gateway: detect
    balance: 1
    health: { targets: [203.0.113.1] }
`,
  );
  files.set(
    'groups/smtp-via-isp1.yaml',
    'name: smtp-via-isp1\npolicies:\n  - name: smtp\n    proto: tcp\n    dport: [25, 587]\n    via: [isp1]\n',
  );

  for (let i = 0; i < count; i++) {
    const name = `site-${String(i).padStart(5, '0')}`;
    const dual = rand() < 0.5;
    const providerCount = int(2, 4);
    const lines: string[] = [
      `name: ${name}`,
      `extends: [${dual ? 'dual-isp' : 'base'}${rand() < 0.3 ? ', smtp-via-isp1' : ''}]`,
      `labels: { region: ${pick(['eu', 'us', 'ap'])}${i % 500 === 0 ? ', canary: "true"' : ''} }`,
      'management:',
      `  address: ${DOC_NETS[i % 3]}.${(Math.floor(i / 3) % 250) + 1}`,
      `  port: ${2200 + Math.floor(i / 750)}`,
      `  hostKey: ${KEY}`,
      'lan:',
      '  - interface: lan0',
      `    subnets: [172.${16 + (i % 16)}.${i % 256}.0/24]`,
      'providers:',
    ];
    const providers: string[] = [];
    for (let p = 0; p < providerCount; p++) {
      const pname = `isp${p + 1}`;
      providers.push(pname);
      const sub = (p * 4 + (i % 16) * 16) % 256;
      const inherited = dual && p < 2;
      lines.push(`  - name: ${pname}`);
      if (!inherited) lines.push(`    interface: wan${p + 1}`);
      if (rand() < 0.6) {
        lines.push(`    address: 198.51.100.${sub + 2}/30`, `    gateway: 198.51.100.${sub + 1}`);
      } else if (!inherited) {
        lines.push(`    gateway: ${pick(['detect', 'point-to-point'])}`);
      }
      if (p === 0 && !inherited) lines.push(`    balance: ${int(1, 10)}`);
      else if (p === providerCount - 1 && p >= 2) lines.push('    fallback: true');
      if (rand() < 0.3)
        lines.push(`    health: { targets: [203.0.113.${int(1, 254)}], failAfter: ${int(2, 5)} }`);
    }
    const policyCount = int(0, 20);
    if (policyCount > 0) lines.push('policies:');
    for (let k = 0; k < policyCount; k++) {
      const via = [...providers].sort(() => rand() - 0.5).slice(0, int(1, Math.min(3, providers.length)));
      lines.push(`  - name: p${k}`);
      switch (int(0, 4)) {
        case 0:
          lines.push(`    to: ${pick(DOC_NETS)}.${int(0, 15) * 16}/28`);
          break;
        case 1:
          lines.push(
            `    from: 172.${16 + (i % 16)}.${i % 256}.${int(0, 3) * 64}/26`,
            '    traffic: forwarded',
          );
          break;
        case 2:
          lines.push(
            `    proto: ${pick(['tcp', 'udp'])}`,
            `    dport: [${int(1, 1000)}, ${int(1001, 2000)}]`,
          );
          break;
        case 3:
          lines.push(`    uid: ${int(100, 2000)}`);
          break;
        default:
          lines.push(`    mark: 0x${int(1, 255).toString(16)}`);
      }
      lines.push(`    via: [${via.join(', ')}]`);
    }
    files.set(`sites/${name}.yaml`, `${lines.join('\n')}\n`);
  }
  return files;
}

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
let rssFull = 0;
for (let r = 0; r < RUNS; r++) {
  const t = time(() => validateAndCompile(files));
  full.push(t.ms);
  fullCpu.push(t.cpuMs);
  summary = t.value;
  rssFull = Math.max(rssFull, process.resourceUsage().maxRSS / 1024);
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
console.log(`peak RSS: ${Math.round(rssFull)} MB (target ≤ 500 MB)`);
console.log(
  `target ≤ 2 s wall for 10k sites: ${SITES === 10_000 ? (wall <= 2000 ? 'met' : 'MISSED') : 'n/a (not 10k sites)'}`,
);
