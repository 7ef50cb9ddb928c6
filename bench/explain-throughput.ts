/**
 * `uplink explain` throughput over a large site, from the spec as an operator writes it.
 *
 *   npx esbuild bench/explain-throughput.ts --bundle --platform=node --format=esm \
 *     --outfile=/tmp/explain-bench.mjs && node /tmp/explain-bench.mjs [seed] [packets] [runs]
 *
 * Site: 8 LAN subnets, 4 providers (balanced 1:2:3:4, track, masquerade), 400 policies
 * (from/to/proto+dport/uid/mark/tos, each via two providers), validated and compiled by the
 * controller, resolved by the agent's core. Measures, median over the runs:
 *  - the site view (compile + resolve + simulator view + precompilation), once per question set;
 *  - explain verdicts: the simulator plus the uplink naming (`mapVerdictToProvider`), what
 *    `uplink plan` and the differential test do per packet;
 *  - full explanations (trace on, operator sentence, each balanced path simulated);
 *  - baseline in the same run: the bare simulator, trace off, on the same view.
 */
import { mapVerdictToProvider, type Packet, simulatePacket } from '../agent/src/sim/index.js';
import { buildSiteView } from '../controller/src/explain/build-site-view.js';
import { explainInView } from '../controller/src/explain/explain-packet.js';
import { loadFleet } from '../controller/src/spec/load-fleet.js';
import { mulberry32 } from '../test/lab/mulberry32.js';
import { upperMedian } from './median.js';

const PROVIDERS = [
  { name: 'isp1', dev: 'wan1', address: '192.0.2.10/24', gateway: '192.0.2.1' },
  { name: 'isp2', dev: 'wan2', address: '198.51.100.10/24', gateway: '198.51.100.1' },
  { name: 'isp3', dev: 'wan3', address: '203.0.113.10/24', gateway: '203.0.113.1' },
  { name: 'isp4', dev: 'wan4', address: '100.64.0.10/24', gateway: '100.64.0.1' },
];
const POLICIES = 400;

function siteYaml(rand: () => number): string {
  const int = (n: number) => Math.floor(rand() * n);
  const lines = [
    'name: big',
    'management:',
    '  address: 192.0.2.99',
    '  hostKey: ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIClCAdEERgnqBDzVhMqPG0LAf3+DKdSb5Eq9Z+ShyIxQ',
    'lan:',
    ...Array.from({ length: 8 }, (_, i) => `  - interface: lan${i}\n    subnets: [172.20.${i}.0/24]`),
    'providers:',
  ];
  PROVIDERS.forEach((p, i) => {
    lines.push(
      `  - name: ${p.name}`,
      `    interface: ${p.dev}`,
      `    address: ${p.address}`,
      `    gateway: ${p.gateway}`,
      `    balance: ${i + 1}`,
      '    track: true',
      '    snat: auto',
    );
  });
  lines.push('policies:');
  for (let i = 0; i < POLICIES; i++) {
    const a = PROVIDERS[int(4)]!.name;
    let b = PROVIDERS[int(4)]!.name;
    if (b === a) b = PROVIDERS[(PROVIDERS.findIndex((p) => p.name === a) + 1) % 4]!.name;
    lines.push(`  - name: p${i}`);
    switch (int(6)) {
      case 0:
        lines.push(`    from: 172.20.${int(8)}.${int(4) * 64}/26`);
        break;
      case 1:
        lines.push(`    to: ${10 + int(100)}.${int(256)}.0.0/16`);
        break;
      case 2:
        lines.push('    proto: tcp', `    dport: "${1 + int(1000)}-${1000 + int(1000)}"`);
        break;
      case 3:
        lines.push(`    uid: "${1000 + int(50)}-${1050 + int(50)}"`);
        break;
      case 4:
        lines.push(`    from: 172.20.${int(8)}.0/24`, '    proto: udp', '    dport: "5000-5100"');
        break;
      default:
        lines.push(`    mark: 0x${(1 + int(200)).toString(16)}`, '    tos: 0x10');
    }
    lines.push(`    via: [${a}, ${b}]`);
  }
  return `${lines.join('\n')}\n`;
}

function generatePackets(rand: () => number, count: number): Packet[] {
  const int = (n: number) => Math.floor(rand() * n);
  const protos = ['tcp', 'udp', 'icmp'] as const;
  const out: Packet[] = new Array(count);
  for (let i = 0; i < count; i++) {
    const dst = `${10 + int(100)}.${int(256)}.${int(256)}.${int(256)}`;
    const proto = protos[int(3)]!;
    if (rand() < 0.7) {
      const lan = int(8);
      out[i] = {
        iif: `lan${lan}`,
        src: `172.20.${lan}.${2 + int(250)}`,
        dst,
        proto,
        ...(proto === 'icmp' ? {} : { sport: 1024 + int(60000), dport: 1 + int(6000) }),
        ...(rand() < 0.1 ? { mark: 1 + int(200), tos: 0x10 } : {}),
      };
    } else {
      out[i] = { dst, proto: 'udp', dport: 1 + int(6000), uid: 1000 + int(120) };
    }
  }
  return out;
}

function measure(name: string, runs: number, count: number, body: () => number): number {
  const rates: number[] = [];
  // One untimed run first, so the first measure does not pay for the JIT warming up.
  let checksum = body();
  for (let r = 0; r < runs; r++) {
    const t0 = performance.now();
    checksum += body();
    rates.push(count / ((performance.now() - t0) / 1000));
  }
  const m = upperMedian(rates);
  console.log(
    `${name.padEnd(52)} median ${Math.round(m).toLocaleString('en-US').padStart(11)} /s  (runs: ${rates.map((x) => Math.round(x / 100) / 10).join(', ')} k/s; checksum ${checksum})`,
  );
  return m;
}

function main(): void {
  const seed = Number(process.argv[2] ?? 20261121);
  const count = Number(process.argv[3] ?? 1_000_000);
  const runs = Math.max(5, Number(process.argv[4] ?? 5));
  const rand = mulberry32(seed);
  const files = new Map([
    ['fleet.yaml', 'rollout:\n  waves:\n    - name: all\n'],
    ['sites/big.yaml', siteYaml(rand)],
  ]);
  const load = loadFleet(files);
  const errors = load.diagnostics.filter((d) => d.severity === 'error');
  if (errors.length > 0)
    throw new Error(`the generated site does not validate: ${JSON.stringify(errors[0])}`);
  const site = load.validSites[0]!;

  const viewTimes: number[] = [];
  let siteView = buildSiteView(site);
  for (let r = 0; r < runs; r++) {
    const t0 = performance.now();
    siteView = buildSiteView(site);
    simulatePacket(siteView.view, { dst: '192.0.2.200' }, { trace: false }); // forces the precompilation
    viewTimes.push(performance.now() - t0);
  }
  const { view, desired } = siteView;
  console.log(
    `seed ${seed}: site with ${desired.providers.length} providers, ${POLICIES} policies → ${view.rules.length} rules, ${view.routes.length} routes; view built in ${upperMedian(viewTimes).toFixed(1)} ms (median); ${count.toLocaleString('en-US')} packets × ${runs} runs; node ${process.version}`,
  );
  const packets = generatePackets(rand, count);

  const mix = new Map<string, number>();
  for (const p of packets.slice(0, 100_000)) {
    const u = mapVerdictToProvider(simulatePacket(view, p, { trace: false }).verdict, desired.providers);
    const key = u.kind === 'provider' ? u.provider : u.kind;
    mix.set(key, (mix.get(key) ?? 0) + 1);
  }
  console.log(`uplink mix (first 100k): ${[...mix].map(([k, n]) => `${k} ${n}`).join(', ')}`);

  const bare = measure('baseline: simulatePacket, trace off', runs, count, () => {
    let n = 0;
    for (let i = 0; i < count; i++) if (simulatePacket(view, packets[i]!, { trace: false }).verdict.dev) n++;
    return n;
  });
  const verdicts = measure('explain verdicts (simulator + uplink naming)', runs, count, () => {
    let n = 0;
    for (let i = 0; i < count; i++) {
      const u = mapVerdictToProvider(
        simulatePacket(view, packets[i]!, { trace: false }).verdict,
        desired.providers,
      );
      if (u.kind === 'provider') n++;
    }
    return n;
  });
  const fullCount = Math.min(count, 20_000);
  const full = measure(`full explanations, trace + words (${fullCount / 1000}k)`, runs, fullCount, () => {
    let n = 0;
    for (let i = 0; i < fullCount; i++) n += explainInView('big', siteView, packets[i]!).trace.length;
    return n;
  });
  console.log(
    `ratios: explain verdicts / bare simulator ${(verdicts / bare).toFixed(2)}, full explanation / bare simulator ${(full / bare).toFixed(3)}`,
  );
}

main();
