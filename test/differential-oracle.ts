/**
 * The pieces of the simulator-vs-kernel differential test: a seeded packet generator, a
 * batched `ip route get` (thousands of queries per spawn), and the comparison of one
 * kernel answer with one simulator verdict.
 *
 * `ip route get` evaluates the FIB only (rules, tables, source selection, source
 * validation for `iif` queries); it does not run netfilter. The simulator is therefore
 * compared on a view without table inet uplink, with the mark given explicitly — the nft
 * mark logic (track save/restore, NAT) is proven by the track-traffic scenario test with
 * real packets and conntrack.
 */

import ipaddr from 'ipaddr.js';
import type { Packet, Verdict } from '../agent/src/sim/index.js';
import type { Lab } from './lab/lab.js';
import { mulberry32 } from './lab/mulberry32.js';

export interface PacketPools {
  /** Interfaces a packet may arrive on (uplinks, LAN, lo). */
  readonly interfaces: readonly string[];
  /** The router's own addresses. */
  readonly localAddresses: readonly string[];
  /** Networks whose hosts are interesting as sources and destinations (LAN, provider subnets, policy `to`s). */
  readonly networks: readonly string[];
  /** Single addresses worth hitting exactly (gateways, peers, internet hosts). */
  readonly hosts: readonly string[];
  /** Marks worth trying (provider marks, policy marks). */
  readonly marks: readonly number[];
  /** Uids worth trying (policy uid ranges and their edges). */
  readonly uids: readonly number[];
  /** Ports worth trying (policy ports and their edges). */
  readonly ports: readonly number[];
  /** TOS bytes worth trying (policy tos values, with ECN and other bits); empty: no tos. */
  readonly tos: readonly number[];
}

function pick<T>(rand: () => number, list: readonly T[]): T {
  return list[Math.floor(rand() * list.length)]!;
}

function int(rand: () => number, n: number): number {
  return Math.floor(rand() * n);
}

function formatAddress(value: number): string {
  return `${value >>> 24}.${(value >>> 16) & 255}.${(value >>> 8) & 255}.${value & 255}`;
}

function hostIn(rand: () => number, cidr: string): string {
  const [base, len] = cidr.split('/') as [string, string];
  const octets = base.split('.').map(Number);
  const network = ((octets[0]! << 24) | (octets[1]! << 16) | (octets[2]! << 8) | octets[3]!) >>> 0;
  const size = 2 ** (32 - Number(len));
  return formatAddress((network + int(rand, size)) >>> 0);
}

/** A random unicast-looking address: not 0/8, not 127/8, not multicast or reserved (the simulator does not model those). */
function randomUnicast(rand: () => number): string {
  for (;;) {
    const v = int(rand, 2 ** 32) >>> 0;
    const top = v >>> 24;
    if (top !== 0 && top !== 127 && top < 224) return formatAddress(v);
  }
}

const DOC_NETS = ['192.0.2.0/24', '198.51.100.0/24', '203.0.113.0/24', '10.0.0.0/8', '172.20.0.0/16'];

function address(rand: () => number, pools: PacketPools): string {
  const r = rand();
  if (r < 0.15) return pick(rand, pools.hosts);
  if (r < 0.45) return hostIn(rand, pick(rand, pools.networks));
  if (r < 0.55) return pick(rand, pools.localAddresses);
  if (r < 0.8) return hostIn(rand, pick(rand, DOC_NETS));
  return randomUnicast(rand);
}

/** Marks: none, a pool mark, a pool mark with foreign bits, or anything. */
function mark(rand: () => number, pools: PacketPools): number | undefined {
  const r = rand();
  if (r < 0.4) return undefined;
  if (r < 0.7) return pick(rand, pools.marks);
  if (r < 0.85) return (pick(rand, pools.marks) | (int(rand, 256) << (rand() < 0.5 ? 0 : 16))) >>> 0;
  return int(rand, 2 ** 32) >>> 0;
}

function protoPart(rand: () => number, pools: PacketPools): Pick<Packet, 'proto' | 'sport' | 'dport'> {
  const r = rand();
  if (r < 0.2) return {};
  if (r < 0.3) return { proto: 'icmp' };
  const proto = r < 0.75 ? 'tcp' : 'udp';
  const port = () => (rand() < 0.6 ? pick(rand, pools.ports) : 1 + int(rand, 65535));
  return { proto, ...(rand() < 0.8 ? { dport: port() } : {}), ...(rand() < 0.5 ? { sport: port() } : {}) };
}

/**
 * `count` packets: about half locally generated (with or without a bound source, uids,
 * socket marks), half arriving on an interface (forwarded or to the router), a few
 * martian sources among them.
 */
export function generatePackets(seed: number, count: number, pools: PacketPools): Packet[] {
  const rand = mulberry32(seed);
  const out: Packet[] = [];
  for (let i = 0; i < count; i++) {
    const dst = address(rand, pools);
    const m = mark(rand, pools);
    const tos =
      pools.tos.length > 0 && rand() < 0.3
        ? rand() < 0.6
          ? pick(rand, pools.tos) | int(rand, 4)
          : int(rand, 256)
        : undefined;
    const common = {
      dst,
      ...(m !== undefined ? { mark: m } : {}),
      ...(tos !== undefined ? { tos } : {}),
      ...protoPart(rand, pools),
    };
    const uid = rand() < 0.5 ? undefined : rand() < 0.7 ? pick(rand, pools.uids) : int(rand, 70000);
    if (rand() < 0.45) {
      const src =
        rand() < 0.7 ? undefined : rand() < 0.85 ? pick(rand, pools.localAddresses) : address(rand, pools);
      const oif =
        rand() < 0.1
          ? pick(
              rand,
              pools.interfaces.filter((i) => i !== 'lo'),
            )
          : undefined;
      out.push({
        ...common,
        ...(src !== undefined ? { src } : {}),
        ...(uid !== undefined ? { uid } : {}),
        ...(oif !== undefined ? { oif } : {}),
      });
    } else {
      const r = rand();
      const src =
        r < 0.03
          ? `127.0.0.${1 + int(rand, 250)}`
          : r < 0.05
            ? `0.0.0.${1 + int(rand, 250)}`
            : address(rand, pools);
      out.push({ ...common, src, iif: pick(rand, pools.interfaces), ...(uid !== undefined ? { uid } : {}) });
    }
  }
  return out;
}

/** IPv6 packet pools: like PacketPools, addresses and networks IPv6. */
export interface PacketPools6 {
  /** Interfaces a packet may arrive on (uplinks, LAN; not lo). */
  readonly interfaces: readonly string[];
  readonly localAddresses: readonly string[];
  /** IPv6 networks (LAN /64s, uplink /64s, routed /48s, policy `to`s). */
  readonly networks: readonly string[];
  readonly hosts: readonly string[];
  readonly marks: readonly number[];
  readonly ports: readonly number[];
  /** Traffic class bytes worth trying (policy tos values); empty: no tos. */
  readonly tos: readonly number[];
}

/** A random host of an IPv6 network (ipaddr.js does the bytes). */
function hostIn6(rand: () => number, cidr: string): string {
  const [net, len] = ipaddr.IPv6.parseCIDR(cidr);
  const bytes = net.toByteArray();
  for (let i = 0; i < 16; i++) {
    const keep = Math.max(0, Math.min(8, len - i * 8));
    const mask = keep === 0 ? 0 : (0xff << (8 - keep)) & 0xff;
    bytes[i] = (bytes[i]! & mask) | (int(rand, 256) & ~mask & 0xff);
  }
  return ipaddr.fromByteArray(bytes).toString();
}

/** Global unicast only: the simulator refuses link-local, multicast, loopback and unspecified destinations. */
const DOC_NETS6 = ['2001:db8::/32', '2001:db8:99::/48', '2001:db8:cafe::/48', '2400::/6'];

function address6(rand: () => number, pools: PacketPools6): string {
  const r = rand();
  if (r < 0.15) return pick(rand, pools.hosts);
  if (r < 0.5) return hostIn6(rand, pick(rand, pools.networks));
  if (r < 0.6) return pick(rand, pools.localAddresses);
  return hostIn6(rand, pick(rand, DOC_NETS6));
}

/**
 * `count` IPv6 packets, as generatePackets: locally generated (with or without a source,
 * uids, socket marks, a bound device) and arriving on an interface. No ICMP (the simulator only prefers a
 * and no uid on arrival (`ip -6 route get iif` looks up with
 * the uid it is given, a real forwarded packet with uid 0).
 */
export function generatePackets6(seed: number, count: number, pools: PacketPools6): Packet[] {
  const rand = mulberry32(seed);
  const out: Packet[] = [];
  // mark() and protoPart() read only marks and ports.
  const shared: PacketPools = { ...pools, uids: [] };
  for (let i = 0; i < count; i++) {
    const dst = address6(rand, pools);
    const m = mark(rand, shared);
    // The traffic class: a policy's DSCP with ECN bits, or anything.
    const tos =
      pools.tos.length > 0 && rand() < 0.3
        ? rand() < 0.6
          ? pick(rand, pools.tos) | int(rand, 4)
          : int(rand, 256)
        : undefined;
    // An IPv6 packet's ICMP is ICMPv6 (58; `ip -6 route get ipproto ipv6-icmp`).
    const { proto: drawn, ...ports } = protoPart(rand, shared);
    const proto = drawn === 'icmp' ? ('icmpv6' as const) : drawn;
    const common = {
      dst,
      ...(m !== undefined ? { mark: m } : {}),
      ...(tos !== undefined ? { tos } : {}),
      ...(proto !== undefined ? { proto } : {}),
      ...(proto === 'icmpv6' ? {} : ports),
    };
    if (rand() < 0.45) {
      const src =
        rand() < 0.7 ? undefined : rand() < 0.85 ? pick(rand, pools.localAddresses) : address6(rand, pools);
      const uid = rand() < 0.5 ? undefined : int(rand, 70000);
      const oif = rand() < 0.15 ? pick(rand, pools.interfaces) : undefined;
      out.push({
        ...common,
        ...(src !== undefined ? { src } : {}),
        ...(uid !== undefined ? { uid } : {}),
        ...(oif !== undefined ? { oif } : {}),
      });
    } else {
      out.push({ ...common, src: address6(rand, pools), iif: pick(rand, pools.interfaces) });
    }
  }
  return out;
}

/** One `ip route get` line for the batch, the same question the simulator is asked. */
export function routeGetLine(p: Packet): string {
  const args = ['route', 'get', p.dst];
  if (p.src !== undefined) args.push('from', p.src);
  if (p.iif !== undefined) args.push('iif', p.iif);
  if (p.oif !== undefined) args.push('oif', p.oif);
  if (p.mark !== undefined) args.push('mark', `0x${p.mark.toString(16)}`);
  if (p.uid !== undefined) args.push('uid', String(p.uid));
  if (p.proto !== undefined) args.push('ipproto', p.proto === 'icmpv6' ? 'ipv6-icmp' : p.proto);
  if (p.sport !== undefined) args.push('sport', String(p.sport));
  if (p.dport !== undefined) args.push('dport', String(p.dport));
  if (p.tos !== undefined) args.push('tos', `0x${p.tos.toString(16)}`);
  return args.join(' ');
}

export type KernelAnswer =
  | {
      readonly ok: true;
      readonly type: string;
      readonly dev?: string;
      readonly gateway?: string;
      readonly prefsrc?: string;
    }
  | { readonly ok: false; readonly errno: string; readonly message: string };

const ERRNO_BY_MESSAGE: Readonly<Record<string, string>> = {
  'Network is unreachable': 'ENETUNREACH',
  'No route to host': 'EHOSTUNREACH',
  'Invalid argument': 'EINVAL',
  'Permission denied': 'EACCES',
  'Invalid cross-device link': 'EXDEV',
  'No such device': 'ENODEV',
};

/**
 * Runs every query in one `ip -j -force -batch -` inside `ns`: answers come one JSON line
 * per successful command on stdout, failures as "RTNETLINK answers: …" followed by
 * "Command failed -:N" on stderr.
 */
export async function routeGetBatch(
  lab: Lab,
  ns: string,
  packets: readonly Packet[],
  /** `-6` for IPv6 queries. */
  family?: '-6',
): Promise<KernelAnswer[]> {
  const input = `${packets.map(routeGetLine).join('\n')}\n`;
  const flags = family === undefined ? [] : [family];
  const result = await lab.run(['ip', ...flags, '-j', '-force', '-n', ns, '-batch', '-'], {
    stdin: input,
    allowFailure: true,
    timeoutMs: 120_000,
  });
  const failed = new Map<number, { errno: string; message: string }>();
  let last = '';
  for (const line of result.stderr.split('\n')) {
    const failure = /^Command failed -:(\d+)$/.exec(line.trim());
    if (failure) {
      const message = last.replace(/^RTNETLINK answers: /, '').replace(/^Error: /, '');
      failed.set(Number(failure[1]) - 1, { errno: ERRNO_BY_MESSAGE[message] ?? `? ${message}`, message });
      last = '';
    } else if (line.trim() !== '') {
      last = line.trim();
    }
  }
  const lines = result.stdout.split('\n').filter((l) => l.trim() !== '');
  const answers: KernelAnswer[] = [];
  let next = 0;
  for (let i = 0; i < packets.length; i++) {
    const failure = failed.get(i);
    if (failure) {
      answers.push({ ok: false, ...failure });
      continue;
    }
    const text = lines[next++];
    if (text === undefined)
      throw new Error(`ip route get batch: no answer for line ${i + 1}\n${result.stderr}`);
    const [entry] = JSON.parse(text) as Array<{
      type?: string;
      dev?: string;
      gateway?: string;
      prefsrc?: string;
    }>;
    answers.push({
      ok: true,
      type: entry?.type ?? 'unicast',
      ...(entry?.dev !== undefined ? { dev: entry.dev } : {}),
      ...(entry?.gateway !== undefined ? { gateway: entry.gateway } : {}),
      ...(entry?.prefsrc !== undefined ? { prefsrc: entry.prefsrc } : {}),
    });
  }
  if (next !== lines.length) throw new Error(`ip route get batch: ${lines.length - next} answers left over`);
  return answers;
}

/**
 * Disagreement between the kernel and the simulator, or null. A multipath verdict agrees
 * when the kernel's choice is one of its candidates (the kernel hashes with a per-boot
 * secret). Local sends compare the source the kernel would pick (`prefsrc`), before NAT.
 */
export function compareAnswer(packet: Packet, kernel: KernelAnswer, verdict: Verdict): string | null {
  const sim = describeVerdict(verdict);
  if (!kernel.ok) {
    if (verdict.errno === kernel.errno) return null;
    // Linux ≥ 6.13: ip_route_input returns a drop reason, and `ip route get … iif` answers
    // EINVAL for every input drop — also rp_filter's, which the simulator (like older
    // kernels and the drop reason IP_RPFILTER) calls EXDEV.
    if (packet.iif !== undefined && kernel.errno === 'EINVAL' && verdict.errno === 'EXDEV') return null;
    return `kernel ${kernel.errno}, simulator ${sim}`;
  }
  const k = `${kernel.type} dev ${kernel.dev ?? '-'}${kernel.gateway ? ` via ${kernel.gateway}` : ''}${kernel.prefsrc ? ` src ${kernel.prefsrc}` : ''}`;
  if (kernel.type === 'local') {
    return verdict.kind === 'local' ? null : `kernel ${k}, simulator ${sim}`;
  }
  if (kernel.type === 'broadcast') {
    return verdict.kind === 'broadcast' && verdict.dev === kernel.dev
      ? null
      : `kernel ${k}, simulator ${sim}`;
  }
  if (verdict.kind !== 'forward') return `kernel ${k}, simulator ${sim}`;
  const paths =
    verdict.dev !== undefined
      ? [{ dev: verdict.dev, gateway: verdict.gateway, src: undefined as string | undefined }]
      : (verdict.candidates ?? []).map((c) => ({ dev: c.dev, gateway: c.gateway, src: c.src }));
  const path = paths.find((p) => p.dev === kernel.dev && p.gateway === kernel.gateway);
  if (!path) return `kernel ${k}, simulator ${sim}`;
  if (packet.iif === undefined && packet.src === undefined && kernel.prefsrc !== undefined) {
    const simSrc = path.src ?? verdict.snat?.from ?? verdict.src;
    if (simSrc !== kernel.prefsrc) return `kernel ${k}, simulator ${sim} (source ${simSrc ?? 'none'})`;
  }
  return null;
}

function describeVerdict(v: Verdict): string {
  if (v.kind === 'forward' || v.kind === 'broadcast') {
    const via =
      v.dev !== undefined
        ? `dev ${v.dev}${v.gateway ? ` via ${v.gateway}` : ''}`
        : `multipath ${(v.candidates ?? []).map((c) => c.dev).join('/')}`;
    return `${v.kind} ${via}${v.src ? ` src ${v.src}` : ''} (table ${v.table}, rule ${v.rulePriority})`;
  }
  return `${v.kind}${v.errno ? ` ${v.errno}` : ''}${v.reason ? ` (${v.reason})` : ''}`;
}
