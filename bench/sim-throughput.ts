/**
 * Throughput of the routing simulator on a large generated site.
 *
 *   npx esbuild bench/sim-throughput.ts --bundle --platform=node --format=esm \
 *     --outfile=/tmp/sim-bench.mjs && node /tmp/sim-bench.mjs [seed] [packets] [runs]
 *
 * Site: 4 providers, 200 policy rules (+ track, from and balance rules), 1000 routes over
 * provider tables and main. Reports the median packets/s over the runs for the
 * precompiled simulator without and with trace, and a baseline: a naive evaluator that
 * parses addresses with ipaddr.js per packet and scans rules and routes linearly.
 */
import ipaddr from 'ipaddr.js';
import type { KernelNftRule, KernelRoute, KernelRule } from '../agent/src/model/kernel-state.js';
import { compileView } from '../agent/src/sim/compile-view.js';
import { buildView, type RoutingView, type ViewInterface } from '../agent/src/sim/routing-view.js';
import { type Packet, simulatePacket } from '../agent/src/sim/simulate-packet.js';
import { mulberry32 } from '../test/lab/mulberry32.js';
import { upperMedian } from './median.js';

const ip = (n: number) => `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;

function generateSite(rand: () => number): { view: RoutingView; lans: string[] } {
  const int = (n: number) => Math.floor(rand() * n);
  const providers = [
    { dev: 'eth1', addr: '192.0.2.10', gw: '192.0.2.1', prefix: 24, table: 101, mark: 0x100 },
    { dev: 'eth2', addr: '198.51.100.10', gw: '198.51.100.1', prefix: 24, table: 102, mark: 0x200 },
    { dev: 'eth3', addr: '203.0.113.10', gw: '203.0.113.1', prefix: 24, table: 103, mark: 0x300 },
    { dev: 'eth4', addr: '100.64.0.10', gw: '100.64.0.1', prefix: 24, table: 104, mark: 0x400 },
  ];
  const lans = Array.from({ length: 8 }, (_, i) => `172.20.${i}.0/24`);
  const interfaces: ViewInterface[] = [
    ...lans.map((_cidr, i) => ({
      name: `lan${i}`,
      up: true,
      addresses: [{ address: `172.20.${i}.1`, prefixLength: 24 }],
    })),
    ...providers.map((p) => ({
      name: p.dev,
      up: true,
      addresses: [{ address: p.addr, prefixLength: p.prefix }],
    })),
  ];
  const rules: KernelRule[] = [
    { priority: 900, action: 'lookup', table: 254, suppressPrefixlength: 0, protocol: 252 },
  ];
  providers.forEach((p, i) => {
    rules.push({
      priority: 1000 + i,
      action: 'lookup',
      table: p.table,
      fwmark: p.mark,
      fwmask: 0xff00,
      protocol: 252,
    });
    rules.push({ priority: 2000 + i, action: 'lookup', table: p.table, from: `${p.addr}/32`, protocol: 252 });
  });
  for (let i = 0; i < 200; i++) {
    const p = providers[int(4)]!;
    const r: KernelRule = { priority: 10000 + i * 10, action: 'lookup', table: p.table, protocol: 252 };
    const kind = int(6);
    if (kind === 0) r.from = `172.20.${int(8)}.${int(4) * 64}/26`;
    if (kind === 1) r.to = `${10 + int(100)}.${int(256)}.0.0/16`;
    if (kind === 2)
      Object.assign(r, { ipproto: 'tcp', dport: { start: 1 + int(1000), end: 1000 + int(1000) } });
    if (kind === 3) r.uidrange = { start: 1000 + int(50), end: 1050 + int(50) };
    if (kind === 4)
      Object.assign(r, { from: `172.20.${int(8)}.0/24`, ipproto: 'udp', dport: { start: 5000, end: 5100 } });
    if (kind === 5) Object.assign(r, { iif: `lan${int(8)}`, tos: 0x10 });
    rules.push(r);
  }
  rules.push({ priority: 30000, action: 'lookup', table: 200, protocol: 252 });
  const routes: KernelRoute[] = [];
  for (const p of providers)
    routes.push({
      table: p.table,
      dst: '0.0.0.0/0',
      type: 'unicast',
      gateway: p.gw,
      dev: p.dev,
      protocol: 252,
    });
  routes.push({
    table: 200,
    dst: '0.0.0.0/0',
    type: 'unicast',
    nexthops: providers.map((p, i) => ({ dev: p.dev, gateway: p.gw, weight: 1 + i })),
    protocol: 252,
  });
  while (routes.length < 1000) {
    const p = providers[int(4)]!;
    const len = 16 + int(13);
    const base = ((10 + int(100)) << 24) | (int(256) << 16) | (int(256) << 8);
    const mask = (0xffffffff << (32 - len)) >>> 0;
    const table = rand() < 0.3 ? 254 : p.table;
    routes.push({
      table,
      dst: `${ip((base & mask) >>> 0)}/${len}`,
      type: rand() < 0.05 ? 'throw' : 'unicast',
      gateway: p.gw,
      dev: p.dev,
      metric: int(3) * 10,
      protocol: 252,
    });
  }
  const nft: KernelNftRule[] = [
    ...providers.map((p): KernelNftRule => ({ kind: 'track-save', iif: p.dev, mark: p.mark })),
    ...providers.map((p): KernelNftRule => ({ kind: 'track-restore', chain: 'prerouting', mark: p.mark })),
    ...providers.map((p): KernelNftRule => ({ kind: 'track-restore', chain: 'output', mark: p.mark })),
    ...providers.map((p): KernelNftRule => ({ kind: 'masquerade', oif: p.dev })),
  ];
  return { view: buildView({ interfaces, rules, routes, nft, connectedRoutes: true }), lans };
}

function generatePackets(rand: () => number, count: number): Packet[] {
  const int = (n: number) => Math.floor(rand() * n);
  const protos = ['tcp', 'udp', 'icmp'] as const;
  const out: Packet[] = new Array(count);
  for (let i = 0; i < count; i++) {
    const dst = ip((((10 + int(100)) << 24) | int(1 << 24)) >>> 0);
    const proto = protos[int(3)]!;
    const kind = rand();
    if (kind < 0.7) {
      const lan = int(8);
      out[i] = {
        iif: `lan${lan}`,
        src: `172.20.${lan}.${2 + int(250)}`,
        dst,
        proto,
        sport: 1024 + int(60000),
        dport: 1 + int(6000),
        tos: int(2) * 0x10,
      };
    } else if (kind < 0.9) {
      out[i] = { dst, proto: proto === 'tcp' ? 'udp' : proto, dport: 1 + int(6000), uid: 1000 + int(120) };
    } else {
      const lan = int(8);
      out[i] = {
        iif: `lan${lan}`,
        src: `172.20.${lan}.${2 + int(250)}`,
        dst,
        proto,
        sport: 443,
        dport: 1024 + int(60000),
        ctMark: 0x100 * (1 + int(4)),
        direction: 'reply',
      };
    }
  }
  return out;
}

/** The naive evaluator: what the simulator would cost without precompilation (forwarded packets, rules + tables only). */
function naiveRoute(view: RoutingView, p: Packet): string | null {
  const dst = ipaddr.IPv4.parse(p.dst);
  const src = p.src ? ipaddr.IPv4.parse(p.src) : ipaddr.IPv4.parse('0.0.0.0');
  const inside = (a: ipaddr.IPv4, cidr: string) => a.match(ipaddr.IPv4.parseCIDR(cidr));
  for (const r of view.rules) {
    if (r.from && !inside(src, r.from)) continue;
    if (r.to && !inside(dst, r.to)) continue;
    if (r.iif && r.iif !== (p.iif ?? 'lo')) continue;
    if (r.fwmark !== undefined && (((p.mark ?? 0) ^ r.fwmark) & (r.fwmask ?? 0xffffffff)) !== 0) continue;
    if (r.ipproto && r.ipproto !== p.proto) continue;
    if (r.dport && ((p.dport ?? 0) < r.dport.start || (p.dport ?? 0) > r.dport.end)) continue;
    if (r.uidrange && ((p.uid ?? 0) < r.uidrange.start || (p.uid ?? 0) > r.uidrange.end)) continue;
    if (r.action !== 'lookup') return r.action;
    let best: KernelRoute | null = null;
    let bestLen = -1;
    for (const route of view.routes) {
      if (route.table !== r.table) continue;
      const [, len] = ipaddr.IPv4.parseCIDR(route.dst);
      if (len < bestLen || !inside(dst, route.dst)) continue;
      if (len > bestLen || (route.metric ?? 0) < (best?.metric ?? 0)) {
        best = route;
        bestLen = len;
      }
    }
    if (!best || best.type === 'throw') continue;
    if (bestLen <= (r.suppressPrefixlength ?? -1)) continue;
    return best.dev ?? best.nexthops?.[0]?.dev ?? null;
  }
  return null;
}

function measure(name: string, runs: number, count: number, body: () => number): number {
  const rates: number[] = [];
  let checksum = 0;
  for (let r = 0; r < runs; r++) {
    const t0 = performance.now();
    checksum += body();
    const seconds = (performance.now() - t0) / 1000;
    rates.push(count / seconds);
  }
  const m = upperMedian(rates);
  console.log(
    `${name.padEnd(44)} median ${Math.round(m).toLocaleString('en-US').padStart(11)} packets/s  (runs: ${rates.map((x) => Math.round(x / 1000)).join(', ')} k/s; checksum ${checksum})`,
  );
  return m;
}

function main(): void {
  const seed = Number(process.argv[2] ?? 20240607);
  const count = Number(process.argv[3] ?? 1_000_000);
  const runs = Math.max(5, Number(process.argv[4] ?? 5));
  const rand = mulberry32(seed);
  const { view } = generateSite(rand);
  const tc = performance.now();
  const compiled = compileView(view);
  const compileMs = performance.now() - tc;
  const packets = generatePackets(rand, count);
  const rules = compiled.rules.length;
  const routes = view.routes.length;
  console.log(
    `seed ${seed}: ${rules} rules, ${routes} routes, ${compiled.tables.size} tables, compiled in ${compileMs.toFixed(1)} ms; ${count.toLocaleString('en-US')} packets × ${runs} runs; node ${process.version}`,
  );

  const kinds = new Map<string, number>();
  for (const p of packets.slice(0, 100_000)) {
    const k = simulatePacket(compiled, p, { trace: false }).verdict.kind;
    kinds.set(k, (kinds.get(k) ?? 0) + 1);
  }
  console.log(`verdict mix (first 100k): ${[...kinds].map(([k, n]) => `${k} ${n}`).join(', ')}`);

  const fast = measure('simulatePacket, precompiled, trace off', runs, count, () => {
    let n = 0;
    for (let i = 0; i < count; i++)
      if (simulatePacket(compiled, packets[i]!, { trace: false }).verdict.kind === 'forward') n++;
    return n;
  });
  const traced = Math.min(count, 200_000);
  const withTrace = measure(`simulatePacket, precompiled, trace on (${traced / 1000}k)`, runs, traced, () => {
    let n = 0;
    for (let i = 0; i < traced; i++) n += simulatePacket(compiled, packets[i]!).trace.length;
    return n;
  });
  const naiveCount = Math.min(count, 20_000);
  const naive = measure(
    `baseline: naive ipaddr.js linear scan (${naiveCount / 1000}k)`,
    runs,
    naiveCount,
    () => {
      let n = 0;
      for (let i = 0; i < naiveCount; i++) if (naiveRoute(view, packets[i]!) !== null) n++;
      return n;
    },
  );
  const gen = measure(
    'baseline: generating the packets',
    runs,
    count,
    () => generatePackets(mulberry32(seed + 1), count).length,
  );
  console.log(
    `ratios: precompiled/naive ${(fast / naive).toFixed(1)}×, trace-on/trace-off ${(withTrace / fast).toFixed(2)}, generation/simulation ${(gen / fast).toFixed(1)}×`,
  );
}

main();
