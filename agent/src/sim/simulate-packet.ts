/**
 * Routes one IPv4 packet the way Linux does: netfilter mark logic of table inet uplink
 * (prerouting/output/postrouting), fib rules in priority order, longest-prefix match
 * per table, multipath, source selection and source validation. Pure; see
 * agent/src/sim/README.md for the kernel semantics modelled and their sources.
 */
import type { KernelNftRule } from '../model/kernel-state.js';
import {
  ACTION_BLACKHOLE,
  ACTION_LOOKUP,
  ACTION_UNREACHABLE,
  type CompiledInterface,
  type CompiledNexthop,
  type CompiledRoute,
  type CompiledRule,
  type CompiledView,
  compileView,
  PROTO_NAMES,
  SCOPE_HOST,
  SCOPE_LINK,
  tableName,
} from './compile-view.js';
import { formatIpv4, hex, parseIpv4Fast, prefixMask } from './ipv4.js';
import type { RoutingView } from './routing-view.js';
import type { Candidate, FlowSummary, LookupPurpose, Selector, TableOutcome, TraceStep } from './trace.js';

export type ProtoName = 'tcp' | 'udp' | 'icmp';

export interface Packet {
  /** Absent for a locally generated packet from an unbound socket: the kernel picks one. */
  readonly src?: string;
  readonly dst: string;
  /** Incoming interface; absent = locally generated (the kernel then uses iif `lo`). */
  readonly iif?: string;
  /** Output interface the socket is bound to (SO_BINDTODEVICE, `ip route get oif`); locally generated only. */
  readonly oif?: string;
  readonly proto?: ProtoName;
  readonly sport?: number;
  readonly dport?: number;
  /** Socket uid for locally generated packets (default 0, as `ip route get` run by root). Forwarded packets always carry uid 0. */
  readonly uid?: number;
  /** Packet mark on arrival (forwarded) or the socket mark (SO_MARK) for locally generated packets. */
  readonly mark?: number;
  /** The IPv4 TOS/DS byte. */
  readonly tos?: number;
  /** Conntrack mark of the connection this packet belongs to; absent = a new connection (ct mark 0). */
  readonly ctMark?: number;
  /** Direction within its connection (default `original`). */
  readonly direction?: 'original' | 'reply';
  /** Conntrack state; default `new` for an original-direction packet without ctMark, else `established`. */
  readonly ctState?: 'new' | 'established';
  /** connect() semantics (two lookups, the second with the chosen source). Default: TCP without src. */
  readonly connected?: boolean;
  /** The site firewall DNATs this packet to this address in prerouting (Uplink writes no DNAT). */
  readonly dnatTo?: string;
  /** For a reply of a connection that was DNAT'd inbound: conntrack restores this source in postrouting. */
  readonly replyNatSrc?: string;
}

export interface SimulateOptions {
  /** Record the trace (default true). Off, simulation allocates almost nothing per packet. */
  readonly trace?: boolean;
  /**
   * 31-bit multipath hash (0 … 2^31-1). The kernel hashes the flow with a per-boot
   * secret, so a simulator cannot reproduce its choice; without a hash the verdict lists
   * every path as candidates and names no single dev.
   */
  readonly multipathHash?: number;
}

export type VerdictKind =
  | 'forward'
  | 'local'
  | 'broadcast'
  | 'blackhole'
  | 'unreachable'
  | 'prohibit'
  | 'no-route'
  | 'martian'
  | 'invalid';

/** What `ip route get` would print as "RTNETLINK answers: …". */
export type Errno = 'ENETUNREACH' | 'EHOSTUNREACH' | 'EINVAL' | 'EACCES' | 'EXDEV' | 'ENODEV';

export interface Snat {
  readonly from: string;
  readonly to: string;
  /** `conntrack-reply`: no rule, the reply of a DNAT'd connection is un-NATed by conntrack. */
  readonly reason: 'snat' | 'masquerade' | 'conntrack-reply';
  readonly rule?: KernelNftRule;
}

export interface Verdict {
  /**
   * `forward`: the packet leaves the router by `dev` (forwarded or locally generated —
   * see `origin`); `local`: delivered to this host.
   */
  readonly kind: VerdictKind;
  readonly origin: 'forwarded' | 'local-out';
  readonly errno?: Errno;
  /** The table and the rule that decided. */
  readonly table?: number;
  readonly rulePriority?: number;
  /** The route that decided, `ip route` style. */
  readonly route?: string;
  readonly dev?: string;
  readonly gateway?: string;
  /** Source address on the wire after NAT. */
  readonly src?: string;
  readonly snat?: Snat;
  /** Multipath: every alive path with its weight. */
  readonly candidates?: readonly Candidate[];
  /** Packet mark when it leaves (after nft restores). */
  readonly mark: number;
  readonly ctMark: number;
  /** nft changed the packet mark. */
  readonly markSet: boolean;
  readonly reason?: string;
}

export interface SimResult {
  readonly verdict: Verdict;
  readonly trace: TraceStep[];
}

const PROTO_BY_NAME: Readonly<Record<ProtoName, number>> = { tcp: 6, udp: 17, icmp: 1 };
const MASKS: readonly number[] = Array.from({ length: 33 }, (_, i) => prefixMask(i));
/** The kernel matches rule TOS against the flow's TOS & IPTOS_RT_MASK. */
const IPTOS_RT_MASK = 0x1c;

interface Flow {
  src: number;
  dst: number;
  iif: string;
  oif: string | null;
  mark: number;
  uid: number;
  proto: number;
  sport: number;
  dport: number;
  tos: number;
}

const SEL_IIF = 1;
const SEL_OIF = 2;
const SEL_FWMARK = 3;
const SEL_UID = 4;
const SEL_FROM = 5;
const SEL_TO = 6;
const SEL_TOS = 7;
const SEL_PROTO = 8;
const SEL_SPORT = 9;
const SEL_DPORT = 10;
const SELECTOR_NAMES: readonly Selector[] = [
  'iif',
  'iif',
  'oif',
  'fwmark',
  'uidrange',
  'from',
  'to',
  'tos',
  'ipproto',
  'sport',
  'dport',
];

/** fib_rule_match + fib4_rule_match, in the kernel's order. 0 = match, else the failing selector. */
function matchRule(r: CompiledRule, f: Flow): number {
  if (r.iif !== null && (!r.iifAttached || r.iif !== f.iif)) return SEL_IIF;
  if (r.oif !== null && (!r.oifAttached || r.oif !== f.oif)) return SEL_OIF;
  if (((r.mark ^ f.mark) & r.markMask) !== 0) return SEL_FWMARK;
  if (f.uid < r.uidStart || f.uid > r.uidEnd) return SEL_UID;
  if (((f.src ^ r.fromNet) & r.fromMask) !== 0) return SEL_FROM;
  if (((f.dst ^ r.toNet) & r.toMask) !== 0) return SEL_TO;
  if (r.tos !== 0 && (f.tos & IPTOS_RT_MASK) !== r.tos) return SEL_TOS;
  if (r.proto !== 0 && r.proto !== f.proto) return SEL_PROTO;
  if (r.sportStart !== 0 && (f.sport < r.sportStart || f.sport > r.sportEnd)) return SEL_SPORT;
  if (r.dportStart !== 0 && (f.dport < r.dportStart || f.dport > r.dportEnd)) return SEL_DPORT;
  return 0;
}

function portRange(start: number, end: number): string {
  return start === end ? String(start) : `${start}-${end}`;
}

function describeMiss(r: CompiledRule, sel: number, f: Flow): string {
  const rule = r.rule;
  switch (sel) {
    case SEL_IIF:
      if (!r.iifAttached) return `iif ${r.iif}: no such interface (the rule is detached and never matches)`;
      return f.iif === 'lo'
        ? `iif ${r.iif}: packet is locally generated (iif lo)`
        : `iif ${r.iif}: packet came in on ${f.iif}`;
    case SEL_OIF:
      if (!r.oifAttached) return `oif ${r.oif}: no such interface (the rule is detached and never matches)`;
      return f.oif === null
        ? `oif ${r.oif}: the flow has no output interface (only sockets bound to a device have one)`
        : `oif ${r.oif}: socket is bound to ${f.oif}`;
    case SEL_FWMARK:
      return `fwmark ${hex(r.mark)}/${hex(r.markMask)}: mark ${hex(f.mark)} & ${hex(r.markMask)} = ${hex(f.mark & r.markMask)} ≠ ${hex(r.mark)}`;
    case SEL_UID:
      return `uidrange ${r.uidStart}-${r.uidEnd}: uid ${f.uid}${f.iif === 'lo' ? '' : ' (forwarded packets carry uid 0)'}`;
    case SEL_FROM:
      return f.src === 0
        ? `from ${rule.from}: no source chosen yet (0.0.0.0)`
        : `from ${rule.from}: source ${formatIpv4(f.src)} is outside`;
    case SEL_TO:
      return `to ${rule.to}: destination ${formatIpv4(f.dst)} is outside`;
    case SEL_TOS:
      return `tos ${hex(r.tos)}: packet tos ${hex(f.tos)} & ${hex(IPTOS_RT_MASK)} = ${hex(f.tos & IPTOS_RT_MASK)}`;
    case SEL_PROTO:
      return `ipproto ${rule.ipproto}: packet is ${PROTO_NAMES[f.proto] ?? (f.proto === 0 ? 'unspecified' : `proto ${f.proto}`)}`;
    case SEL_SPORT:
      return `sport ${portRange(r.sportStart, r.sportEnd)}: packet sport ${f.sport}`;
    default:
      return `dport ${portRange(r.dportStart, r.dportEnd)}: packet dport ${f.dport}`;
  }
}

interface TableHit {
  readonly route: CompiledRoute;
  readonly nexthops: readonly CompiledNexthop[];
}

/**
 * fib_table_lookup: longest prefix first; within a prefix, lowest metric first. Reject
 * types and throw answer at once; a unicast route none of whose nexthops suits the
 * flow's oif is skipped and the search backtracks to shorter prefixes.
 */
function lookupTable(cv: CompiledView, tableId: number, f: Flow): TableHit | null | undefined {
  const table = cv.tables.get(tableId);
  if (!table) return undefined;
  for (const length of table.lengths) {
    const list = table.slots[length]!.get((f.dst & MASKS[length]!) >>> 0);
    if (!list) continue;
    for (const route of list) {
      if (route.type !== 'unicast' && route.type !== 'local' && route.type !== 'broadcast')
        return { route, nexthops: route.nexthops };
      if (f.oif === null) return { route, nexthops: route.nexthops };
      for (const nh of route.nexthops) if (nh.dev === f.oif) return { route, nexthops: [nh] };
    }
  }
  return null;
}

interface FibOutcome {
  /** 0 on success. */
  readonly errno: Errno | 0;
  readonly kind: VerdictKind;
  readonly rule: CompiledRule | null;
  readonly hit: TableHit | null;
  readonly reason: string;
}

const NO_RULE: FibOutcome = {
  errno: 'ENETUNREACH',
  kind: 'no-route',
  rule: null,
  hit: null,
  reason: 'no rule gave a route',
};

type StepInput = TraceStep extends infer S ? (S extends TraceStep ? Omit<S, 'depth'> : never) : never;

class Tracer {
  readonly steps: TraceStep[] = [];
  depth = 0;
  push(step: StepInput): void {
    this.steps.push({ ...step, depth: this.depth } as TraceStep);
  }
}

function flowSummary(f: Flow): FlowSummary {
  return {
    src: formatIpv4(f.src),
    dst: formatIpv4(f.dst),
    iif: f.iif,
    ...(f.oif !== null ? { oif: f.oif } : {}),
    mark: f.mark,
    uid: f.uid,
    ...(f.proto ? { proto: PROTO_NAMES[f.proto] ?? String(f.proto) } : {}),
    ...(f.sport ? { sport: f.sport } : {}),
    ...(f.dport ? { dport: f.dport } : {}),
    ...(f.tos ? { tos: f.tos } : {}),
  };
}

const PURPOSE_TEXT: Readonly<Record<LookupPurpose, string>> = {
  route: 'route lookup',
  'connect-first': 'connect(): first lookup, no source yet',
  'connect-second': 'connect(): second lookup with the chosen source',
  reroute: 're-route after the output chain changed the mark',
  'reverse-path': 'source validation: reverse lookup of the source',
};

function describeFlow(f: Flow): string {
  const parts = [
    `from ${f.src === 0 ? '(none)' : formatIpv4(f.src)}`,
    `to ${formatIpv4(f.dst)}`,
    `iif ${f.iif}`,
  ];
  if (f.oif !== null) parts.push(`oif ${f.oif}`);
  parts.push(`mark ${hex(f.mark)}`, `uid ${f.uid}`);
  if (f.proto) parts.push(PROTO_NAMES[f.proto] ?? `proto ${f.proto}`);
  if (f.sport) parts.push(`sport ${f.sport}`);
  if (f.dport) parts.push(`dport ${f.dport}`);
  if (f.tos) parts.push(`tos ${hex(f.tos)}`);
  return parts.join(' ');
}

/** fib_rules_lookup with the IPv4 action and suppress hooks. */
function fibLookup(cv: CompiledView, f: Flow, t: Tracer | null, purpose: LookupPurpose): FibOutcome {
  if (t)
    t.push({
      step: 'lookup',
      purpose,
      flow: flowSummary(f),
      text: `${PURPOSE_TEXT[purpose]}: ${describeFlow(f)}`,
    });
  for (const r of cv.rules) {
    const miss = matchRule(r, f);
    if (miss !== 0) {
      if (t) {
        t.push({
          step: 'rule',
          priority: r.priority,
          rule: r.text,
          matched: false,
          selector: SELECTOR_NAMES[miss]!,
          text: `${r.text} — no: ${describeMiss(r, miss, f)}`,
        });
      }
      continue;
    }
    if (t)
      t.push({
        step: 'rule',
        priority: r.priority,
        rule: r.text,
        matched: true,
        text: `${r.text} — matches`,
      });
    if (r.action !== ACTION_LOOKUP) {
      const action =
        r.action === ACTION_BLACKHOLE
          ? 'blackhole'
          : r.action === ACTION_UNREACHABLE
            ? 'unreachable'
            : 'prohibit';
      const errno: Errno =
        action === 'blackhole' ? 'EINVAL' : action === 'unreachable' ? 'ENETUNREACH' : 'EACCES';
      if (t)
        t.push({
          step: 'rule-action',
          priority: r.priority,
          action,
          text: `rule action ${action}: packet dropped`,
        });
      return { errno, kind: action, rule: r, hit: null, reason: `rule ${r.priority} is ${action}` };
    }
    const hit = lookupTable(cv, r.table, f);
    if (!hit) {
      if (t) {
        const outcome: TableOutcome = hit === undefined ? 'no-table' : 'no-route';
        tableStep(
          t,
          r,
          outcome,
          null,
          `table ${tableName(r.table)}: ${hit === undefined ? 'empty (no such table)' : `no route to ${formatIpv4(f.dst)}`}${f.oif !== null && hit === null ? ` via ${f.oif}` : ''}, falling through`,
        );
      }
      continue;
    }
    const route = hit.route;
    if (route.type === 'throw') {
      if (t)
        tableStep(
          t,
          r,
          'throw',
          route,
          `table ${tableName(r.table)}: ${route.text} — throw, falling through`,
        );
      continue;
    }
    if (route.type === 'blackhole' || route.type === 'unreachable' || route.type === 'prohibit') {
      // Reject routes end the lookup; suppress_prefixlength only applies to successful lookups.
      if (t) tableStep(t, r, 'reject', route, `table ${tableName(r.table)}: ${route.text} — packet rejected`);
      const errno: Errno =
        route.type === 'blackhole' ? 'EINVAL' : route.type === 'unreachable' ? 'EHOSTUNREACH' : 'EACCES';
      return {
        errno,
        kind: route.type,
        rule: r,
        hit,
        reason: `${route.type} route in table ${tableName(r.table)}`,
      };
    }
    if (route.length <= r.suppressPrefixlength) {
      if (t) {
        tableStep(
          t,
          r,
          'suppressed',
          route,
          `table ${tableName(r.table)}: ${route.text} — suppressed (prefix /${route.length} ≤ suppress_prefixlength ${r.suppressPrefixlength}), falling through`,
        );
      }
      continue;
    }
    if (t) tableStep(t, r, 'route', route, `table ${tableName(r.table)}: ${route.text}`);
    const kind: VerdictKind =
      route.type === 'local' ? 'local' : route.type === 'broadcast' ? 'broadcast' : 'forward';
    return { errno: 0, kind, rule: r, hit, reason: '' };
  }
  if (t) t.push({ step: 'note', text: 'no rule produced a route: Network is unreachable' });
  return NO_RULE;
}

function tableStep(
  t: Tracer,
  r: CompiledRule,
  outcome: TableOutcome,
  route: CompiledRoute | null,
  text: string,
): void {
  t.push({
    step: 'table',
    priority: r.priority,
    table: r.table,
    outcome,
    ...(route ? { route: route.text, prefixLength: route.length } : {}),
    text,
  });
}

/**
 * inet_select_addr(dev, gateway, scope): the first primary address of `dev` whose subnet
 * (or point-to-point peer) holds the gateway, else the first primary address of `dev`
 * within scope, else the first primary global address of any interface in ifindex order.
 */
export function selectSourceAddress(
  cv: CompiledView,
  dev: string,
  gateway: number,
  scope: number,
): { address: number; reason: string } {
  const itf = cv.interfaces.get(dev);
  let first = 0;
  if (itf) {
    for (const a of itf.addresses) {
      if (a.secondary) continue;
      if (Math.min(a.scope, SCOPE_HOST) > scope) continue;
      if (gateway === 0 || ((a.match ^ gateway) & a.mask) === 0) {
        return {
          address: a.local,
          reason:
            gateway === 0
              ? `primary address of ${dev}`
              : `address of ${dev} in the subnet of gateway ${formatIpv4(gateway)}`,
        };
      }
      if (first === 0) first = a.local;
    }
  }
  if (first !== 0) {
    return {
      address: first,
      reason: `primary address of ${dev} (none is in the subnet of gateway ${formatIpv4(gateway)})`,
    };
  }
  for (const other of cv.interfaceOrder) {
    for (const a of other.addresses) {
      if (!a.secondary && a.scope !== SCOPE_LINK && a.scope <= scope) {
        return {
          address: a.local,
          reason: `${dev} has no usable address; first global address (on ${other.name})`,
        };
      }
    }
  }
  return { address: 0, reason: `no usable address on any interface` };
}

/** fib_result_prefsrc: the route's src, else inet_select_addr on the nexthop. */
function prefsrcFor(
  cv: CompiledView,
  route: CompiledRoute,
  nh: CompiledNexthop,
): { address: number; reason: string } {
  if (route.prefsrc !== 0) return { address: route.prefsrc, reason: `the route's src` };
  return selectSourceAddress(cv, nh.dev, nh.gateway, route.scope);
}

/** fib_select_multipath: the first alive nexthop whose upper bound is ≥ the hash. */
function pickNexthop(nexthops: readonly CompiledNexthop[], hash: number): number {
  for (let i = 0; i < nexthops.length; i++) if (hash <= nexthops[i]!.upperBound) return i;
  return nexthops.length - 1;
}

interface PathOutcome {
  readonly kind: VerdictKind;
  readonly errno?: Errno;
  readonly fib: FibOutcome | null;
  readonly dev?: string;
  readonly gateway?: number;
  readonly src: number;
  readonly candidates?: readonly Candidate[];
  readonly reason?: string;
}

function describeNexthops(
  cv: CompiledView,
  route: CompiledRoute,
  nexthops: readonly CompiledNexthop[],
  withSource: boolean,
): Candidate[] {
  return nexthops.map((nh) => ({
    dev: nh.dev,
    ...(nh.gateway ? { gateway: formatIpv4(nh.gateway) } : {}),
    weight: nh.weight,
    ...(withSource ? { src: formatIpv4(prefsrcFor(cv, route, nh).address) } : {}),
  }));
}

/** Chooses the path of a unicast result; multipath without a hash yields candidates only. */
function choosePath(
  cv: CompiledView,
  hit: TableHit,
  hash: number | undefined,
  t: Tracer | null,
  withSource: boolean,
): { nh: CompiledNexthop | null; candidates?: Candidate[] } {
  const nexthops = hit.nexthops;
  if (nexthops.length === 1) return { nh: nexthops[0]! };
  const candidates = describeNexthops(cv, hit.route, nexthops, withSource);
  if (hash === undefined) {
    if (t) {
      t.push({
        step: 'nexthop',
        candidates,
        chosen: null,
        text: `multipath: ${candidates.map((c) => `${c.dev} weight ${c.weight}`).join(', ')} — the kernel picks by flow hash (pass multipathHash to pick one)`,
      });
    }
    return { nh: null, candidates };
  }
  const i = pickNexthop(nexthops, hash >>> 0);
  if (t) {
    t.push({
      step: 'nexthop',
      candidates,
      chosen: i,
      text: `multipath: hash ${hex(hash)} picks ${nexthops[i]!.dev} (of ${candidates.map((c) => `${c.dev} weight ${c.weight}`).join(', ')})`,
    });
  }
  return { nh: nexthops[i]!, candidates };
}

function fibFailure(fib: FibOutcome): PathOutcome {
  return { kind: fib.kind, errno: fib.errno === 0 ? undefined : fib.errno, fib, src: 0, reason: fib.reason };
}

/** ip_route_output_key_hash_rcu for a flow whose src may be 0 (unbound). */
function routeOutput(
  cv: CompiledView,
  f: Flow,
  t: Tracer | null,
  hash: number | undefined,
  purpose: LookupPurpose,
): PathOutcome {
  const fib = fibLookup(cv, f, t, purpose);
  if (fib.errno !== 0) {
    if (f.oif !== null) {
      // "Apparently, routing tables are wrong. Assume that the destination is on link."
      if (isLoopback(f.src)) return loopbackSourceOut(fib, f.src, f.oif, t);
      const src = f.src !== 0 ? f.src : selectSourceAddress(cv, f.oif, 0, SCOPE_LINK).address;
      if (t)
        t.push({
          step: 'note',
          text: `no route, but the socket is bound to ${f.oif}: the kernel assumes the destination is on-link`,
        });
      return { kind: 'forward', fib, dev: f.oif, src };
    }
    return fibFailure(fib);
  }
  const hit = fib.hit!;
  if (hit.route.type === 'local') {
    const src = f.src !== 0 ? f.src : hit.route.prefsrc !== 0 ? hit.route.prefsrc : f.dst;
    return { kind: 'local', fib, dev: 'lo', src };
  }
  if (hit.route.type === 'broadcast') {
    const dev = hit.nexthops[0]!.dev;
    const src = f.src !== 0 ? f.src : hit.route.prefsrc;
    if (isLoopback(src) && dev !== 'lo') return loopbackSourceOut(fib, src, dev, t);
    return { kind: 'broadcast', fib, dev, src, reason: broadcastReason(f.dst, dev) };
  }
  const path = f.oif !== null ? { nh: hit.nexthops[0]! } : choosePath(cv, hit, hash, t, f.src === 0);
  if (!path.nh) {
    if (isLoopback(f.src)) return loopbackSourceOut(fib, f.src, path.candidates![0]!.dev, t);
    const srcs = new Set(path.candidates!.map((c) => c.src));
    const src =
      f.src !== 0
        ? f.src
        : srcs.size === 1 && hit.route.prefsrc === 0
          ? parseIpv4Fast([...srcs][0]!)
          : hit.route.prefsrc;
    return { kind: 'forward', fib, src, candidates: path.candidates };
  }
  // __mkroute_output: a loopback source may only leave by a loopback device.
  if (isLoopback(f.src) && path.nh.dev !== 'lo') return loopbackSourceOut(fib, f.src, path.nh.dev, t);
  let src = f.src;
  if (src === 0) {
    const chosen = prefsrcFor(cv, hit.route, path.nh);
    src = chosen.address;
    if (t)
      t.push({
        step: 'source',
        address: formatIpv4(src),
        text: `source ${formatIpv4(src)}: ${chosen.reason}`,
      });
  }
  return {
    kind: 'forward',
    fib,
    dev: path.nh.dev,
    gateway: path.nh.gateway,
    src,
    ...(path.candidates ? { candidates: path.candidates } : {}),
  };
}

/**
 * ip_route_input_slow / ip_route_output_key_hash_rcu: multicast, limited broadcast and
 * 0.0.0.0 are never a source. Since Linux 5.3 the rest of 0.0.0.0/8 is ordinary unicast
 * (ipv4_is_zeronet tests 0.0.0.0 only), and so is 240.0.0.0/4.
 */
function isMartianSource(a: number): boolean {
  return a === 0 || a >>> 28 === 14 || a === 0xffffffff;
}

function isLoopback(a: number): boolean {
  return a >>> 24 === 127;
}

function loopbackSourceOut(fib: FibOutcome, src: number, dev: string, t: Tracer | null): PathOutcome {
  const reason = `source ${formatIpv4(src)} is a loopback address and may not leave by ${dev}`;
  if (t) t.push({ step: 'check', check: 'martian', passed: false, text: reason });
  return { kind: 'invalid', errno: 'EINVAL', fib, src, reason };
}

function broadcastReason(dst: number, dev: string): string {
  return `${formatIpv4(dst)} is the broadcast address of ${dev}'s subnet`;
}

/**
 * fib_validate_source for a packet arriving on `itf`; `reverseIif` is the output device
 * of the forward route (`lo` for local delivery), which the reverse lookup sees as iif.
 */
function validateSource(
  cv: CompiledView,
  f: Flow,
  itf: CompiledInterface,
  reverseIif: string,
  t: Tracer | null,
): { ok: true } | { ok: false; errno: Errno; reason: string } {
  const rpf = itf.rpFilter;
  if (rpf === 0 && !cv.customRules) {
    if (cv.configuredAddresses.has(f.src)) {
      return {
        ok: false,
        errno: 'EINVAL',
        reason: `source ${formatIpv4(f.src)} is one of this router's addresses`,
      };
    }
    return { ok: true };
  }
  const reverse: Flow = {
    src: f.dst,
    dst: f.src,
    iif: reverseIif,
    oif: null,
    mark: itf.srcValidMark ? f.mark : 0,
    uid: 0,
    proto: f.proto,
    sport: f.dport,
    dport: f.sport,
    tos: f.tos,
  };
  if (t) t.depth++;
  const fib = fibLookup(cv, reverse, t, 'reverse-path');
  if (t) t.depth--;
  const mode = rpf === 1 ? 'rp_filter=1 (strict)' : rpf === 2 ? 'rp_filter=2 (loose)' : 'rp_filter=0';
  if (fib.errno !== 0) {
    return rpf !== 0
      ? { ok: false, errno: 'EXDEV', reason: `${mode}: no route back to ${formatIpv4(f.src)}` }
      : { ok: true };
  }
  const route = fib.hit!.route;
  if (route.type !== 'unicast') {
    return {
      ok: false,
      errno: 'EINVAL',
      reason: `source ${formatIpv4(f.src)} routes back as ${route.type} (${route.text}): martian source`,
    };
  }
  if (route.nexthops.some((n) => n.dev === itf.name)) return { ok: true };
  if (itf.addresses.length === 0) {
    return rpf !== 0
      ? { ok: false, errno: 'EXDEV', reason: `${mode}: ${itf.name} has no address` }
      : { ok: true };
  }
  if (rpf === 1) {
    return {
      ok: false,
      errno: 'EXDEV',
      reason: `${mode}: the route back to ${formatIpv4(f.src)} leaves by ${route.nexthops.map((n) => n.dev).join('/')}, not ${itf.name}`,
    };
  }
  return { ok: true };
}

/** ip_route_input_slow for a flow arriving on f.iif. */
function routeInput(
  cv: CompiledView,
  f: Flow,
  itf: CompiledInterface,
  t: Tracer | null,
  hash: number | undefined,
): PathOutcome {
  const martian = (reason: string): PathOutcome => {
    if (t) t.push({ step: 'check', check: 'martian', passed: false, text: reason });
    return { kind: 'martian', errno: 'EINVAL', fib: null, src: f.src, reason };
  };
  if (isMartianSource(f.src)) return martian(`martian source ${formatIpv4(f.src)}`);
  if (f.dst === 0) return martian(`martian destination ${formatIpv4(f.dst)}`);
  if (f.dst >>> 24 === 127)
    return martian(`martian destination ${formatIpv4(f.dst)} (loopback from ${itf.name})`);
  if (f.src >>> 24 === 127) return martian(`martian source ${formatIpv4(f.src)} (loopback on ${itf.name})`);
  if (f.dst >>> 28 === 14 || f.dst === 0xffffffff) {
    return {
      kind: 'invalid',
      errno: 'EINVAL',
      fib: null,
      src: f.src,
      reason: 'multicast and broadcast are not simulated',
    };
  }
  const fib = fibLookup(cv, f, t, 'route');
  if (fib.errno !== 0) {
    const failed = fibFailure(fib);
    return cv.view.forwarding ? failed : { ...failed, errno: 'EHOSTUNREACH' };
  }
  const hit = fib.hit!;
  if (hit.route.type === 'local') {
    const v = validateSource(cv, f, itf, 'lo', t);
    if (!v.ok) {
      if (t) t.push({ step: 'check', check: 'rp-filter', passed: false, text: v.reason });
      return { kind: 'martian', errno: v.errno, fib, src: f.src, reason: v.reason };
    }
    return { kind: 'local', fib, dev: 'lo', src: f.src };
  }
  if (hit.route.type === 'broadcast') {
    // brd_input: validated like local delivery (reverse lookup with iif lo), then delivered.
    const v = validateSource(cv, f, itf, 'lo', t);
    if (!v.ok) {
      if (t) t.push({ step: 'check', check: 'rp-filter', passed: false, text: v.reason });
      return { kind: 'martian', errno: v.errno, fib, src: f.src, reason: v.reason };
    }
    return {
      kind: 'broadcast',
      fib,
      dev: 'lo',
      src: f.src,
      reason: broadcastReason(f.dst, hit.nexthops[0]!.dev),
    };
  }
  if (!cv.view.forwarding) {
    const reason = 'net.ipv4.ip_forward is 0: the router does not forward';
    if (t) t.push({ step: 'check', check: 'forwarding', passed: false, text: reason });
    return { kind: 'unreachable', errno: 'EHOSTUNREACH', fib, src: f.src, reason };
  }
  const path = choosePath(cv, hit, hash, t, false);
  const outDev = path.nh?.dev ?? hit.nexthops[0]!.dev;
  const v = validateSource(cv, f, itf, outDev, t);
  if (!v.ok) {
    if (t) t.push({ step: 'check', check: 'rp-filter', passed: false, text: v.reason });
    return { kind: 'martian', errno: v.errno, fib, src: f.src, reason: v.reason };
  }
  if (!path.nh) return { kind: 'forward', fib, src: f.src, candidates: path.candidates };
  return {
    kind: 'forward',
    fib,
    dev: path.nh.dev,
    gateway: path.nh.gateway,
    src: f.src,
    ...(path.candidates ? { candidates: path.candidates } : {}),
  };
}

interface CtState {
  ctMark: number;
  readonly isNew: boolean;
  readonly reply: boolean;
}

function describeNft(rule: KernelNftRule, mask: number): string {
  switch (rule.kind) {
    case 'track-save':
      return `iifname ${rule.iif} ct state new ct mark set ct mark & ${hex(~mask >>> 0)} | ${hex(rule.mark)}`;
    case 'track-restore':
      return `ct mark & ${hex(mask)} == ${hex(rule.mark)} meta mark set meta mark & ${hex(~mask >>> 0)} | ${hex(rule.mark)}`;
    case 'masquerade':
      return `oifname ${rule.oif} masquerade`;
    case 'snat':
      return `oifname ${rule.oif} snat to ${rule.address}`;
    default:
      return rule.text;
  }
}

/** Uplink's mark rules of one hook; returns the new packet mark (ct.ctMark is updated in place). */
function runMarkRules(
  cv: CompiledView,
  rules: readonly KernelNftRule[],
  hook: 'prerouting' | 'output',
  iif: string,
  mark: number,
  ct: CtState,
  t: Tracer | null,
): number {
  const mask = cv.markMask;
  for (const rule of rules) {
    if (rule.kind === 'track-save') {
      const applies = rule.iif === iif && ct.isNew;
      if (applies) ct.ctMark = ((ct.ctMark & ~mask) | (rule.mark & mask)) >>> 0;
      if (t) {
        t.push({
          step: 'nft',
          hook,
          rule,
          applied: applies,
          text: `${hook}: ${describeNft(rule, mask)} — ${applies ? `ct mark := ${hex(ct.ctMark)}` : rule.iif !== iif ? `no: arrived on ${iif}` : 'no: connection is not new'}`,
        });
      }
    } else if (rule.kind === 'track-restore') {
      const applies = (ct.ctMark & mask) >>> 0 === (rule.mark & mask) >>> 0;
      if (applies) mark = ((mark & ~mask) | (rule.mark & mask)) >>> 0;
      if (t) {
        t.push({
          step: 'nft',
          hook,
          rule,
          applied: applies,
          text: `${hook}: ${describeNft(rule, mask)} — ${applies ? `mark := ${hex(mark)}` : `no: ct mark ${hex(ct.ctMark)}`}`,
        });
      }
    }
  }
  return mark;
}

/**
 * Postrouting NAT: snat/masquerade apply to the first packet of a new connection leaving
 * by their oif (later packets and replies follow the conntrack entry); masquerade uses
 * inet_select_addr(oif, nexthop, universe).
 */
function runNat(
  cv: CompiledView,
  path: PathOutcome,
  src: number,
  dst: number,
  ct: CtState,
  replyNatSrc: number,
  t: Tracer | null,
): { src: number; snat?: Snat } {
  if (ct.reply) {
    if (replyNatSrc !== 0 && replyNatSrc !== src) {
      const snat: Snat = { from: formatIpv4(src), to: formatIpv4(replyNatSrc), reason: 'conntrack-reply' };
      if (t) {
        t.push({
          step: 'nat',
          kind: 'conntrack-reply',
          from: snat.from,
          to: snat.to,
          text: `postrouting: reply of a DNAT'd connection; conntrack rewrites source ${snat.from} → ${snat.to}`,
        });
      }
      return { src: replyNatSrc, snat };
    }
    return { src };
  }
  if (!ct.isNew || path.dev === undefined) return { src };
  const mask = cv.markMask;
  for (const rule of cv.nft.postrouting) {
    if (rule.kind !== 'masquerade' && rule.kind !== 'snat') continue;
    if (rule.oif !== path.dev) {
      if (t)
        t.push({
          step: 'nft',
          hook: 'postrouting',
          rule,
          applied: false,
          text: `postrouting: ${describeNft(rule, mask)} — no: leaves by ${path.dev}`,
        });
      continue;
    }
    let to: number;
    if (rule.kind === 'snat') {
      to = parseIpv4Fast(rule.address);
    } else {
      const nexthop = path.gateway ? path.gateway : dst;
      to = selectSourceAddress(cv, rule.oif, nexthop, 0).address;
    }
    const snat: Snat = { from: formatIpv4(src), to: formatIpv4(to), reason: rule.kind, rule };
    if (t) {
      t.push({
        step: 'nft',
        hook: 'postrouting',
        rule,
        applied: true,
        text: `postrouting: ${describeNft(rule, mask)} — source ${snat.from} → ${snat.to}`,
      });
    }
    return { src: to, snat };
  }
  return { src };
}

function invalid(
  reason: string,
  origin: Verdict['origin'],
  t: Tracer | null,
  errno: Errno = 'EINVAL',
): SimResult {
  if (t) t.push({ step: 'note', text: reason });
  return {
    verdict: { kind: 'invalid', origin, errno, reason, mark: 0, ctMark: 0, markSet: false },
    trace: t?.steps ?? [],
  };
}

const EMPTY: TraceStep[] = [];

/**
 * Route one packet through the view. `view` may be a RoutingView (compiled once and
 * cached per object) or a CompiledView.
 */
export function simulatePacket(
  view: RoutingView | CompiledView,
  packet: Packet,
  options: SimulateOptions = {},
): SimResult {
  const cv = 'rules' in view && 'tables' in view ? (view as CompiledView) : compileView(view as RoutingView);
  const t = options.trace === false ? null : new Tracer();
  const origin: Verdict['origin'] = packet.iif === undefined ? 'local-out' : 'forwarded';
  const dst0 = parseIpv4Fast(packet.dst);
  if (dst0 < 0) return invalid(`destination ${packet.dst}: not an IPv4 address`, origin, t);
  let src = 0;
  if (packet.src !== undefined) {
    src = parseIpv4Fast(packet.src);
    if (src < 0) return invalid(`source ${packet.src}: not an IPv4 address`, origin, t);
  }
  const proto = packet.proto ? PROTO_BY_NAME[packet.proto] : 0;
  // The kernel dissects ports for port-based protocols only (ICMP has none).
  const ported = proto === 6 || proto === 17;
  const reply = packet.direction === 'reply';
  const ct: CtState = {
    ctMark: (packet.ctMark ?? 0) >>> 0,
    isNew: packet.ctState ? packet.ctState === 'new' : !reply && packet.ctMark === undefined,
    reply,
  };
  const mark0 = (packet.mark ?? 0) >>> 0;
  const flow: Flow = {
    src,
    dst: dst0,
    iif: packet.iif ?? 'lo',
    oif: null,
    mark: mark0,
    uid: 0,
    proto,
    sport: ported ? (packet.sport ?? 0) : 0,
    dport: ported ? (packet.dport ?? 0) : 0,
    tos: (packet.tos ?? 0) & 0xff,
  };
  const replyNatSrc = packet.replyNatSrc ? parseIpv4Fast(packet.replyNatSrc) : 0;

  let path: PathOutcome;
  if (packet.iif !== undefined) {
    const itf = cv.interfaces.get(packet.iif);
    if (!itf) return invalid(`iif ${packet.iif}: no such interface`, origin, t, 'ENODEV');
    if (packet.src === undefined) return invalid('a packet with iif needs a source address', origin, t);
    if (t && packet.uid !== undefined && packet.uid !== 0) {
      t.push({
        step: 'note',
        text: `uid ${packet.uid} ignored: forwarded packets carry uid 0 in the routing lookup`,
      });
    }
    if (t && packet.oif !== undefined)
      t.push({
        step: 'note',
        text: `oif ${packet.oif} ignored: forwarded packets have no output interface before routing`,
      });
    flow.mark = runMarkRules(cv, cv.nft.prerouting, 'prerouting', packet.iif, flow.mark, ct, t);
    if (packet.dnatTo !== undefined) {
      const to = parseIpv4Fast(packet.dnatTo);
      if (to < 0) return invalid(`dnatTo ${packet.dnatTo}: not an IPv4 address`, origin, t);
      if (t)
        t.push({
          step: 'nat',
          kind: 'dnat',
          from: packet.dst,
          to: packet.dnatTo,
          text: `prerouting: the site firewall DNATs ${packet.dst} → ${packet.dnatTo}`,
        });
      flow.dst = to;
    }
    path = routeInput(cv, flow, itf, t, options.multipathHash);
  } else {
    flow.uid = (packet.uid ?? 0) >>> 0;
    if (packet.oif !== undefined) {
      const itf = cv.interfaces.get(packet.oif);
      if (!itf) return invalid(`oif ${packet.oif}: no such interface`, origin, t, 'ENODEV');
      if (!itf.up) return invalid(`oif ${packet.oif}: interface is down`, origin, t, 'ENETUNREACH');
      flow.oif = packet.oif;
    }
    if (src !== 0 && isMartianSource(src))
      return invalid(`source ${packet.src} is not a usable source`, origin, t);
    // ip_route_output_key_hash_rcu: a source that is none of our addresses → ENETUNREACH.
    if (src !== 0 && !cv.configuredAddresses.has(src)) {
      return invalid(
        `source ${packet.src} is not an address of this router (a socket cannot bind to it)`,
        origin,
        t,
        'ENETUNREACH',
      );
    }
    const connected = packet.connected ?? (proto === 6 && src === 0);
    if (connected && src === 0) {
      // ip_route_connect: the unbound socket has no source port yet either.
      const sport = flow.sport;
      flow.sport = 0;
      const first = routeOutput(cv, flow, t, options.multipathHash, 'connect-first');
      flow.sport = sport;
      if (first.kind !== 'forward' && first.kind !== 'local') {
        path = first;
      } else if (first.src === 0) {
        if (t)
          t.push({
            step: 'note',
            text: 'the source depends on the multipath choice: pass multipathHash to follow connect() further',
          });
        path = first;
      } else {
        flow.src = first.src;
        path = routeOutput(cv, flow, t, options.multipathHash, 'connect-second');
      }
    } else {
      path = routeOutput(cv, flow, t, options.multipathHash, 'route');
    }
    if (path.kind === 'forward' || path.kind === 'local') {
      flow.src = path.src;
      const before = flow.mark;
      flow.mark = runMarkRules(cv, cv.nft.output, 'output', 'lo', flow.mark, ct, t);
      if (flow.mark !== before) {
        // nft output chain of type route: a changed mark re-routes (ip_route_me_harder), keeping
        // the now-fixed local source and the socket's bound device; the flow carries no uid.
        flow.uid = 0;
        path = routeOutput(cv, flow, t, options.multipathHash, 'reroute');
      }
    }
  }

  let finalSrc = path.src;
  let snat: Snat | undefined;
  if (path.kind === 'forward') {
    const nat = runNat(cv, path, path.src, flow.dst, ct, replyNatSrc, t);
    finalSrc = nat.src;
    snat = nat.snat;
  }
  const fib = path.fib;
  const verdict: Verdict = {
    kind: path.kind,
    origin,
    ...(path.errno ? { errno: path.errno } : {}),
    ...(fib?.rule ? { table: fib.rule.table, rulePriority: fib.rule.priority } : {}),
    ...(fib?.hit ? { route: fib.hit.route.text } : {}),
    ...(path.dev !== undefined ? { dev: path.dev } : {}),
    ...(path.gateway ? { gateway: formatIpv4(path.gateway) } : {}),
    ...(finalSrc !== 0 ? { src: formatIpv4(finalSrc) } : {}),
    ...(snat ? { snat } : {}),
    ...(path.candidates ? { candidates: path.candidates } : {}),
    mark: flow.mark,
    ctMark: ct.ctMark,
    markSet: flow.mark !== mark0,
    ...(path.reason ? { reason: path.reason } : {}),
  };
  return { verdict, trace: t ? t.steps : EMPTY };
}

/** One line: what happens to the packet. */
export function formatVerdict(v: Verdict): string {
  switch (v.kind) {
    case 'forward': {
      const via = v.dev
        ? `dev ${v.dev}${v.gateway ? ` via ${v.gateway}` : ''}`
        : `one of ${(v.candidates ?? []).map((c) => `${c.dev}${c.gateway ? ` via ${c.gateway}` : ''} (weight ${c.weight})`).join(', ')}`;
      const nat = v.snat ? ` (${v.snat.reason} ${v.snat.from} → ${v.snat.to})` : '';
      return `leaves by ${via}${v.src ? ` from ${v.src}` : ''}${nat}${v.table !== undefined ? `, table ${tableName(v.table)} (rule ${v.rulePriority})` : ''}`;
    }
    case 'local':
      return `delivered locally${v.src ? ` (source ${v.src})` : ''}`;
    default:
      return `${v.kind}${v.errno ? ` (${v.errno})` : ''}${v.reason ? `: ${v.reason}` : ''}`;
  }
}
