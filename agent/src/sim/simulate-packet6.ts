/**
 * Routes one IPv6 packet the way Linux does (net/ipv6: fib6_rules, ip6_pol_route,
 * ipv6_dev_get_saddr): the IPv6 twins of Uplink's track rules, `ip -6 rule` in priority
 * order, longest-prefix match per table (multipath, link-local gateways with their
 * device), source address selection (RFC 6724 as the kernel scores it), and NPTv6 in
 * postrouting. The IPv6 objects of the view are those with `family: 'inet6'`; IPv6
 * addresses come from the interfaces' `addresses6`. See README.md ("IPv6") for what is
 * modelled and what is not.
 */

import type { KernelNftRule, KernelRoute, KernelRule } from '../model/kernel-state.js';
import {
  addToTable,
  PROTO_NAMES,
  PROTO_NUMBERS,
  renderRoute,
  renderRule,
  tableName,
} from './compile-view.js';
import { EMPTY, invalid, PROTO_BY_NAME, summaryOf, Tracer } from './flow.js';
import { hex } from './ipv4.js';
import {
  commonPrefixLength,
  formatIpv6,
  isLinkLocal6,
  isMulticast6,
  LOOPBACK6,
  parseIpv6,
  parseIpv6Cidr,
  prefixMask6,
  tryParseIpv6,
} from './ipv6.js';
import { type RoutingView, TABLE_LOCAL, TABLE_MAIN } from './routing-view.js';
import { type CtState, describeNft, runMarkRules } from './run-netfilter.js';
import type {
  Errno,
  Packet,
  SimResult,
  SimulateOptions,
  Snat,
  Verdict,
  VerdictKind,
} from './simulate-packet.js';
import type { Candidate, FlowSummary, LookupPurpose, Selector, TraceStep } from './trace.js';

const PROTOCOL_KERNEL = 2;
/** The kernel gives IPv6 connected routes metric 256, user routes 1024 when none is set. */
const METRIC_CONNECTED = 256;
const METRIC_DEFAULT = 1024;

interface Flow6 {
  /** 0n: no source yet (`::`). */
  src: bigint;
  dst: bigint;
  iif: string;
  oif: string | null;
  mark: number;
  uid: number;
  proto: number;
  sport: number;
  dport: number;
  tclass: number;
}

interface Rule6 {
  readonly text: string;
  readonly priority: number;
  readonly action: KernelRule['action'];
  readonly table: number;
  readonly from: { readonly network: bigint; readonly mask: bigint; readonly length: number } | null;
  readonly to: { readonly network: bigint; readonly mask: bigint } | null;
  readonly iif: string | null;
  readonly iifAttached: boolean;
  readonly oif: string | null;
  readonly oifAttached: boolean;
  readonly mark: number;
  readonly markMask: number;
  readonly uidStart: number;
  readonly uidEnd: number;
  readonly proto: number;
  readonly sport: { readonly start: number; readonly end: number } | null;
  readonly dport: { readonly start: number; readonly end: number } | null;
  readonly tos: number;
  readonly suppressPrefixlength: number;
}

interface Nexthop6 {
  readonly dev: string;
  /** 0n: on-link (no gateway). */
  readonly gateway: bigint;
  readonly weight: number;
  readonly upperBound: number;
}

interface Route6 {
  readonly text: string;
  readonly type: KernelRoute['type'] | 'local';
  readonly network: bigint;
  readonly length: number;
  readonly metric: number;
  readonly prefsrc: bigint;
  readonly nexthops: readonly Nexthop6[];
}

interface Table6 {
  readonly lengths: readonly number[];
  readonly slots: ReadonlyMap<number, ReadonlyMap<bigint, Route6[]>>;
}

interface Address6 {
  readonly address: bigint;
  readonly length: number;
  readonly mask: bigint;
}

interface Interface6 {
  readonly name: string;
  readonly up: boolean;
  readonly addresses: readonly Address6[];
}

export interface CompiledView6 {
  readonly rules: readonly Rule6[];
  readonly tables: ReadonlyMap<number, Table6>;
  readonly interfaces: ReadonlyMap<string, Interface6>;
  /** ifindex order (lo first). */
  readonly interfaceOrder: readonly Interface6[];
  readonly markMask: number;
  readonly prerouting: readonly KernelNftRule[];
  readonly output: readonly KernelNftRule[];
  readonly npt: ReadonlyArray<{
    readonly rule: KernelNftRule & { kind: 'npt' };
    readonly from: bigint;
    readonly mask: bigint;
    readonly to: bigint;
  }>;
  readonly forwarding: boolean;
  readonly warnings: readonly string[];
}

/** The two rules every IPv6 namespace starts with (`ip -6 rule` has no 32767 default). */
const DEFAULT_RULES6: readonly KernelRule[] = [
  { priority: 0, family: 'inet6', action: 'lookup', table: TABLE_LOCAL, protocol: PROTOCOL_KERNEL },
  { priority: 32766, family: 'inet6', action: 'lookup', table: TABLE_MAIN, protocol: PROTOCOL_KERNEL },
];

function effectiveMarkMask(rule: KernelRule): number {
  if (rule.fwmask !== undefined) return rule.fwmask >>> 0;
  return rule.fwmark ? 0xffffffff : 0;
}

function compileRule(rule: KernelRule, interfaces: ReadonlyMap<string, Interface6>): Rule6 {
  const attached = (name: string | undefined) => name === undefined || name === 'lo' || interfaces.has(name);
  return {
    text: renderRule(rule),
    priority: rule.priority,
    action: rule.action,
    table: rule.table ?? -1,
    from: rule.from ? parseIpv6Cidr(rule.from) : null,
    to: rule.to ? parseIpv6Cidr(rule.to) : null,
    iif: rule.iif ?? null,
    iifAttached: attached(rule.iif),
    oif: rule.oif ?? null,
    oifAttached: attached(rule.oif),
    mark: (rule.fwmark ?? 0) >>> 0,
    markMask: effectiveMarkMask(rule),
    uidStart: rule.uidrange?.start ?? 0,
    uidEnd: rule.uidrange?.end ?? 0xffffffff,
    proto: rule.ipproto ? PROTO_NUMBERS[rule.ipproto] : 0,
    sport: rule.sport ?? null,
    dport: rule.dport ?? null,
    tos: rule.tos ?? 0,
    suppressPrefixlength: rule.suppressPrefixlength ?? -1,
  };
}

/** rt6_upper_bound_set: cumulative weights scaled to 31 bits, rounded to nearest, minus one. */
function withUpperBounds(nexthops: ReadonlyArray<Omit<Nexthop6, 'upperBound'>>): Nexthop6[] {
  const total = nexthops.reduce((s, n) => s + n.weight, 0);
  let w = 0;
  return nexthops.map((n) => {
    w += n.weight;
    return { ...n, upperBound: Math.floor((w * 2 ** 31 + total / 2) / total) - 1 };
  });
}

function deviceForGateway(gateway: bigint, order: readonly Interface6[]): string | undefined {
  for (const itf of order) {
    if (itf.addresses.some((a) => ((a.address ^ gateway) & a.mask) === 0n)) return itf.name;
  }
  return undefined;
}

function compileRoute(
  route: KernelRoute,
  interfaces: ReadonlyMap<string, Interface6>,
  order: readonly Interface6[],
  warnings: string[],
): Route6 | null {
  const { network, length } = parseIpv6Cidr(route.dst);
  const text = renderRoute(route);
  let nexthops: Nexthop6[] = [];
  if (route.type === 'unicast') {
    const declared = route.nexthops?.length
      ? route.nexthops.map((n) => ({
          dev: n.dev as string | undefined,
          gateway: n.gateway,
          weight: n.weight,
        }))
      : [{ dev: route.dev, gateway: route.gateway, weight: 1 }];
    const alive: Array<Omit<Nexthop6, 'upperBound'>> = [];
    for (const nh of declared) {
      const gateway = nh.gateway ? parseIpv6(nh.gateway) : 0n;
      // A link-local gateway means nothing without its device; a global one is found by prefix.
      const dev =
        nh.dev ?? (gateway && !isLinkLocal6(gateway) ? deviceForGateway(gateway, order) : undefined);
      const itf = dev === undefined ? undefined : interfaces.get(dev);
      if (!itf?.up) {
        warnings.push(
          `${text}: nexthop ${dev ?? '?'} is ${itf ? 'down' : 'missing'}; the kernel holds no such path`,
        );
        continue;
      }
      alive.push({ dev: itf.name, gateway, weight: nh.weight });
    }
    if (alive.length === 0) return null;
    nexthops = withUpperBounds(alive);
  }
  return {
    text,
    type: route.type,
    network,
    length,
    metric: route.metric ?? METRIC_DEFAULT,
    prefsrc: route.src ? parseIpv6(route.src) : 0n,
    nexthops,
  };
}

function routeKey(r: KernelRoute): string {
  return `${r.table} ${r.dst} ${r.metric ?? METRIC_DEFAULT} ${r.dev ?? ''} ${r.gateway ?? ''}`;
}

/** Main's routes the kernel adds itself: fe80::/64 on every up interface, each address's prefix. */
function connectedRoutes6(order: readonly Interface6[], view: RoutingView): KernelRoute[] {
  const out: KernelRoute[] = [];
  for (const itf of order) {
    if (!itf.up || itf.name === 'lo') continue;
    const source = view.interfaces.find((i) => i.name === itf.name)?.addresses6 ?? [];
    for (const a of source) {
      if (a.prefixLength >= 128) continue;
      const network = parseIpv6(a.address) & prefixMask6(a.prefixLength);
      out.push(connected(`${formatIpv6(network)}/${a.prefixLength}`, itf.name));
    }
    out.push(connected('fe80::/64', itf.name));
  }
  return out;
}

function connected(dst: string, dev: string): KernelRoute {
  return {
    family: 'inet6',
    table: TABLE_MAIN,
    dst,
    type: 'unicast',
    dev,
    metric: METRIC_CONNECTED,
    protocol: PROTOCOL_KERNEL,
  };
}

function localRoute(address: bigint, dev: string): Route6 {
  return {
    text: `local ${formatIpv6(address)} dev ${dev} table local`,
    type: 'local',
    network: address,
    length: 128,
    metric: 0,
    prefsrc: 0n,
    nexthops: [{ dev, gateway: 0n, weight: 1, upperBound: 0x7fffffff }],
  };
}

const cache = new WeakMap<RoutingView, CompiledView6>();

/** Compile (or fetch the cached compilation of) the IPv6 half of a view. */
export function compileView6(view: RoutingView): CompiledView6 {
  const cached = cache.get(view);
  if (cached) return cached;
  const warnings: string[] = [];
  const interfaceOrder: Interface6[] = view.interfaces.map((itf) => ({
    name: itf.name,
    up: itf.up,
    // An admin-down interface loses its IPv6 addresses (keep_addr_on_down 0).
    addresses: (itf.up ? (itf.addresses6 ?? []) : []).map((a) => ({
      address: parseIpv6(a.address),
      length: a.prefixLength,
      mask: prefixMask6(a.prefixLength),
    })),
  }));
  const lo = interfaceOrder.find((i) => i.name === 'lo');
  if (lo && !lo.addresses.some((a) => a.address === LOOPBACK6)) {
    (lo.addresses as Address6[]).push({ address: LOOPBACK6, length: 128, mask: prefixMask6(128) });
  }
  const interfaces = new Map(interfaceOrder.map((i) => [i.name, i]));

  const routes = view.routes.filter((r) => r.family === 'inet6');
  const seen = new Set(routes.map(routeKey));
  const all = [...routes, ...connectedRoutes6(interfaceOrder, view).filter((r) => !seen.has(routeKey(r)))];
  const building = new Map<number, Map<number, Map<bigint, Route6[]>>>();
  for (const route of all) {
    if (route.table === TABLE_LOCAL) continue;
    const compiled = compileRoute(route, interfaces, interfaceOrder, warnings);
    if (compiled) addToTable(building, route.table, compiled);
  }
  for (const itf of interfaceOrder) {
    for (const a of itf.addresses) addToTable(building, TABLE_LOCAL, localRoute(a.address, itf.name));
  }
  const tables = new Map<number, Table6>();
  for (const [id, byLength] of building) {
    for (const slot of byLength.values())
      for (const list of slot.values()) list.sort((a, b) => a.metric - b.metric);
    tables.set(id, { lengths: [...byLength.keys()].sort((a, b) => b - a), slots: byLength });
  }

  let rules = view.rules.filter((r) => r.family === 'inet6');
  for (const def of DEFAULT_RULES6) {
    if (
      !rules.some(
        (r) =>
          r.priority === def.priority &&
          r.action === 'lookup' &&
          r.table === def.table &&
          !r.from &&
          !r.to &&
          r.fwmark === undefined &&
          !r.iif &&
          !r.oif,
      )
    )
      rules = [...rules, def];
  }
  rules = [...rules].sort((a, b) => a.priority - b.priority);

  const npt = view.nft.flatMap((r) => {
    if (r.kind !== 'npt') return [];
    const from = parseIpv6Cidr(r.from);
    return [{ rule: r, from: from.network, mask: from.mask, to: parseIpv6Cidr(r.to).network }];
  });
  const compiled: CompiledView6 = {
    rules: rules.map((r) => compileRule(r, interfaces)),
    tables,
    interfaces,
    interfaceOrder,
    markMask: view.markMask >>> 0,
    prerouting: view.nft.filter(
      (r) => r.kind === 'track-save' || (r.kind === 'track-restore' && r.chain === 'prerouting'),
    ),
    output: view.nft.filter((r) => r.kind === 'track-restore' && r.chain === 'output'),
    npt,
    forwarding: view.forwarding6 ?? true,
    warnings,
  };
  cache.set(view, compiled);
  return compiled;
}

function summary(f: Flow6): FlowSummary {
  return summaryOf(f, formatIpv6(f.src), formatIpv6(f.dst), f.tclass);
}

function describeFlow(f: Flow6): string {
  const parts = [
    `from ${f.src === 0n ? '(none)' : formatIpv6(f.src)}`,
    `to ${formatIpv6(f.dst)}`,
    `iif ${f.iif}`,
  ];
  if (f.oif !== null) parts.push(`oif ${f.oif}`);
  parts.push(`mark ${hex(f.mark)}`, `uid ${f.uid}`);
  if (f.proto) parts.push(PROTO_NAMES[f.proto] ?? `proto ${f.proto}`);
  if (f.sport) parts.push(`sport ${f.sport}`);
  if (f.dport) parts.push(`dport ${f.dport}`);
  if (f.tclass) parts.push(`tclass ${hex(f.tclass)}`);
  return parts.join(' ');
}

const PURPOSE_TEXT: Readonly<Record<LookupPurpose, string>> = {
  route: 'IPv6 route lookup',
  'connect-first': 'connect(): first lookup, no source yet',
  'connect-second': 'connect(): second lookup with the chosen source',
  reroute: 're-route after the output chain changed the mark',
  'reverse-path': 'reverse lookup',
};

/** fib_rule_match + fib6_rule_match; null = match, else the failing selector and why. */
function matchRule(r: Rule6, f: Flow6): { selector: Selector; why: string } | null {
  if (r.iif !== null && (!r.iifAttached || r.iif !== f.iif))
    return {
      selector: 'iif',
      why: r.iifAttached ? `packet came in on ${f.iif}` : 'no such interface (detached)',
    };
  if (r.oif !== null && (!r.oifAttached || r.oif !== f.oif))
    return {
      selector: 'oif',
      why: f.oif === null ? 'the flow has no output interface' : `bound to ${f.oif}`,
    };
  if (((r.mark ^ f.mark) & r.markMask) !== 0)
    return { selector: 'fwmark', why: `mark ${hex(f.mark)} & ${hex(r.markMask)} ≠ ${hex(r.mark)}` };
  if (f.uid < r.uidStart || f.uid > r.uidEnd) return { selector: 'uidrange', why: `uid ${f.uid}` };
  if (r.to && ((f.dst ^ r.to.network) & r.to.mask) !== 0n)
    return { selector: 'to', why: `destination ${formatIpv6(f.dst)} is outside` };
  // Without a source (RT6_LOOKUP_F_HAS_SADDR unset) a rule with `from` never matches.
  if (r.from && r.from.length > 0) {
    if (f.src === 0n) return { selector: 'from', why: 'no source chosen yet (::)' };
    if (((f.src ^ r.from.network) & r.from.mask) !== 0n)
      return { selector: 'from', why: `source ${formatIpv6(f.src)} is outside` };
  }
  if (r.tos !== 0 && (f.tclass & 0xfc) !== r.tos)
    return { selector: 'tos', why: `traffic class ${hex(f.tclass)}` };
  if (r.proto !== 0 && r.proto !== f.proto)
    return { selector: 'ipproto', why: `packet is ${PROTO_NAMES[f.proto] ?? 'unspecified'}` };
  if (r.sport && (f.sport < r.sport.start || f.sport > r.sport.end))
    return { selector: 'sport', why: `packet sport ${f.sport}` };
  if (r.dport && (f.dport < r.dport.start || f.dport > r.dport.end))
    return { selector: 'dport', why: `packet dport ${f.dport}` };
  return null;
}

interface Hit {
  readonly route: Route6;
  readonly nexthops: readonly Nexthop6[];
}

/**
 * Longest prefix, then lowest metric. With an output device and no source the lookup is
 * strict (ip6_route_output_flags: RT6_LOOKUP_F_IFACE when `oif && any_src`): only a nexthop
 * on that device counts, the search backtracks to shorter prefixes, and a table without one
 * has no route (no on-link guess, unlike IPv4). With a source the device is only preferred
 * among the routes of the matching prefix, and a multipath route is hashed as without it.
 */
function lookupTable(cv: CompiledView6, id: number, f: Flow6): Hit | null | undefined {
  const table = cv.tables.get(id);
  if (!table) return undefined;
  for (const length of table.lengths) {
    const list = table.slots.get(length)!.get(f.dst & prefixMask6(length));
    if (!list) continue;
    if (f.oif === null) return { route: list[0]!, nexthops: list[0]!.nexthops };
    if (f.src !== 0n) {
      // rt6_select prefers a route with a nexthop on oif; fib6_select_path still hashes a
      // multipath route over all its nexthops (a non-strict score never rejects one).
      const route = list.find((r) => r.nexthops.some((n) => n.dev === f.oif)) ?? list[0]!;
      return { route, nexthops: route.nexthops };
    }
    for (const route of list) {
      if (route.type !== 'unicast' && route.type !== 'local') return { route, nexthops: route.nexthops };
      const nh = route.nexthops.find((n) => n.dev === f.oif);
      if (nh) return { route, nexthops: [nh] };
    }
  }
  return null;
}

interface Fib {
  readonly errno: Errno | 0;
  readonly kind: VerdictKind;
  readonly rule: Rule6 | null;
  readonly hit: Hit | null;
  readonly reason: string;
}

const ERRNO_OF: Readonly<Record<string, Errno>> = {
  blackhole: 'EINVAL',
  unreachable: 'EHOSTUNREACH',
  prohibit: 'EACCES',
};

/** fib6_rule_lookup: rules in order; lookup actions continue past a table without a route, a throw, or a suppressed result. */
function fibLookup(cv: CompiledView6, f: Flow6, t: Tracer | null, purpose: LookupPurpose): Fib {
  if (t)
    t.push({
      step: 'lookup',
      purpose,
      flow: summary(f),
      text: `${PURPOSE_TEXT[purpose]}: ${describeFlow(f)}`,
    });
  for (const r of cv.rules) {
    const miss = matchRule(r, f);
    if (miss) {
      if (t)
        t.push({
          step: 'rule',
          priority: r.priority,
          rule: r.text,
          matched: false,
          selector: miss.selector,
          text: `${r.text} — no: ${miss.why}`,
        });
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
    if (r.action !== 'lookup') {
      const errno: Errno = r.action === 'unreachable' ? 'ENETUNREACH' : ERRNO_OF[r.action]!;
      if (t)
        t.push({
          step: 'rule-action',
          priority: r.priority,
          action: r.action,
          text: `rule action ${r.action}: packet dropped`,
        });
      return { errno, kind: r.action, rule: r, hit: null, reason: `rule ${r.priority} is ${r.action}` };
    }
    const hit = lookupTable(cv, r.table, f);
    const table = tableName(r.table);
    if (!hit) {
      if (t)
        t.push({
          step: 'table',
          priority: r.priority,
          table: r.table,
          outcome: hit === undefined ? 'no-table' : 'no-route',
          text: `table ${table}: ${hit === undefined ? 'empty (no such table)' : `no route to ${formatIpv6(f.dst)}`}, falling through`,
        });
      continue;
    }
    const route = hit.route;
    const step = {
      step: 'table' as const,
      priority: r.priority,
      table: r.table,
      route: route.text,
      prefixLength: route.length,
    };
    if (route.type === 'throw') {
      if (t)
        t.push({ ...step, outcome: 'throw', text: `table ${table}: ${route.text} — throw, falling through` });
      continue;
    }
    // fib6_rule_suppress looks at the result's prefix length only, reject routes included.
    if (route.length <= r.suppressPrefixlength) {
      if (t)
        t.push({
          ...step,
          outcome: 'suppressed',
          text: `table ${table}: ${route.text} — suppressed (prefix /${route.length} ≤ suppress_prefixlength ${r.suppressPrefixlength}), falling through`,
        });
      continue;
    }
    if (route.type === 'blackhole' || route.type === 'unreachable' || route.type === 'prohibit') {
      if (t) t.push({ ...step, outcome: 'reject', text: `table ${table}: ${route.text} — packet rejected` });
      return {
        errno: ERRNO_OF[route.type]!,
        kind: route.type,
        rule: r,
        hit,
        reason: `${route.type} route in table ${table}`,
      };
    }
    if (t) t.push({ ...step, outcome: 'route', text: `table ${table}: ${route.text}` });
    return { errno: 0, kind: route.type === 'local' ? 'local' : 'forward', rule: r, hit, reason: '' };
  }
  if (t) t.push({ step: 'note', text: 'no rule produced a route: Network is unreachable' });
  return { errno: 'ENETUNREACH', kind: 'no-route', rule: null, hit: null, reason: 'no rule gave a route' };
}

/** The kernel's default address labels (ipv6_addr_label, RFC 6724 §2.1). */
const LABELS: ReadonlyArray<{ readonly network: bigint; readonly mask: bigint; readonly label: number }> = [
  ['::1/128', 0],
  ['::ffff:0:0/96', 4],
  ['2001:10::/28', 7],
  ['2001::/32', 6],
  ['2002::/16', 2],
  ['3ffe::/16', 12],
  ['fec0::/10', 11],
  ['fc00::/7', 5],
  ['::/96', 3],
  ['::/0', 1],
].map(([cidr, label]) => {
  const c = parseIpv6Cidr(cidr as string);
  return { network: c.network, mask: c.mask, label: label as number };
});

function labelOf(a: bigint): number {
  for (const l of LABELS) if ((a & l.mask) === l.network) return l.label;
  return 1;
}

/** IPv6 address scope as the kernel numbers it: link-local (and ::1) 2, global 14. */
function scopeOf(a: bigint): number {
  return isLinkLocal6(a) || a === LOOPBACK6 ? 2 : 14;
}

/**
 * ipv6_dev_get_saddr for a unicast destination: every address of every interface (ifindex
 * order, then the interface's list order) is scored by the kernel's rules in turn — the
 * destination itself, appropriate scope, the outgoing interface, matching label, longest
 * common prefix (capped at the address's prefix length); ties keep the earlier address.
 * Only the global addresses are known (facts carry no link-local ones).
 */
function selectSource(
  cv: CompiledView6,
  dev: string | null,
  dst: bigint,
): { address: bigint; reason: string } {
  const dstScope = scopeOf(dst);
  const dstLabel = labelOf(dst);
  let best: { address: bigint; score: number[]; dev: string } | null = null;
  for (const itf of cv.interfaceOrder) {
    if (dstScope <= 2 && itf.name !== dev) continue;
    for (const a of itf.addresses) {
      const scope = scopeOf(a.address);
      const score = [
        a.address === dst ? 1 : 0,
        scope >= dstScope ? -scope : scope - 128,
        itf.name === dev ? 1 : 0,
        labelOf(a.address) === dstLabel ? 1 : 0,
        Math.min(commonPrefixLength(a.address, dst), a.length),
      ];
      if (best === null || better(score, best.score)) best = { address: a.address, score, dev: itf.name };
    }
  }
  if (!best)
    return {
      address: 0n,
      reason: 'no usable IPv6 address (only link-local ones, which the facts do not list)',
    };
  return {
    address: best.address,
    reason: `address selection (RFC 6724): ${best.dev === dev ? `an address of ${dev}` : `the best address (on ${best.dev})`}, longest common prefix ${best.score[4]} with the destination`,
  };
}

function better(a: readonly number[], b: readonly number[]): boolean {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i]! > b[i]!;
  return false;
}

function sourceFor(
  cv: CompiledView6,
  route: Route6,
  nh: Nexthop6,
  dst: bigint,
): { address: bigint; reason: string } {
  if (route.prefsrc !== 0n) return { address: route.prefsrc, reason: "the route's src" };
  return selectSource(cv, nh.dev, dst);
}

function pickNexthop(nexthops: readonly Nexthop6[], hash: number): number {
  for (let i = 0; i < nexthops.length; i++) if (hash <= nexthops[i]!.upperBound) return i;
  return nexthops.length - 1;
}

interface Path6 {
  readonly kind: VerdictKind;
  readonly errno?: Errno;
  readonly fib: Fib | null;
  readonly dev?: string;
  readonly gateway?: bigint;
  readonly src: bigint;
  readonly candidates?: readonly Candidate[];
  readonly reason?: string;
}

function choosePath(
  cv: CompiledView6,
  hit: Hit,
  f: Flow6,
  hash: number | undefined,
  t: Tracer | null,
  withSource: boolean,
): { nh: Nexthop6 | null; candidates?: Candidate[] } {
  const nexthops = hit.nexthops;
  if (nexthops.length === 1) return { nh: nexthops[0]! };
  const candidates: Candidate[] = nexthops.map((nh) => ({
    dev: nh.dev,
    ...(nh.gateway ? { gateway: formatIpv6(nh.gateway) } : {}),
    weight: nh.weight,
    ...(withSource ? { src: formatIpv6(sourceFor(cv, hit.route, nh, f.dst).address) } : {}),
  }));
  const list = candidates.map((c) => `${c.dev} weight ${c.weight}`).join(', ');
  if (hash === undefined) {
    if (t)
      t.push({
        step: 'nexthop',
        candidates,
        chosen: null,
        text: `multipath: ${list} — the kernel picks by flow hash (pass multipathHash to pick one)`,
      });
    return { nh: null, candidates };
  }
  const i = pickNexthop(nexthops, hash >>> 0);
  if (t)
    t.push({
      step: 'nexthop',
      candidates,
      chosen: i,
      text: `multipath: hash ${hex(hash)} picks ${nexthops[i]!.dev} (of ${list})`,
    });
  return { nh: nexthops[i]!, candidates };
}

function failure(fib: Fib): Path6 {
  return { kind: fib.kind, errno: fib.errno === 0 ? undefined : fib.errno, fib, src: 0n, reason: fib.reason };
}

/** ip6_route_output, then the source the way `ip -6 route get` and an unbound socket get it (ip6_route_get_saddr). */
function routeOutput(
  cv: CompiledView6,
  f: Flow6,
  t: Tracer | null,
  hash: number | undefined,
  purpose: LookupPurpose,
): Path6 {
  const fib = fibLookup(cv, f, t, purpose);
  if (fib.errno !== 0) return failure(fib);
  const hit = fib.hit!;
  if (hit.route.type === 'local') return { kind: 'local', fib, dev: 'lo', src: f.src !== 0n ? f.src : f.dst };
  const path = choosePath(cv, hit, f, hash, t, f.src === 0n);
  if (!path.nh) {
    const srcs = new Set(path.candidates!.map((c) => c.src));
    const src =
      f.src !== 0n
        ? f.src
        : srcs.size === 1 && hit.route.prefsrc === 0n
          ? parseIpv6([...srcs][0]!)
          : hit.route.prefsrc;
    return { kind: 'forward', fib, src, candidates: path.candidates };
  }
  let src = f.src;
  if (src === 0n) {
    const chosen = sourceFor(cv, hit.route, path.nh, f.dst);
    src = chosen.address;
    if (t && src !== 0n)
      t.push({
        step: 'source',
        address: formatIpv6(src),
        text: `source ${formatIpv6(src)}: ${chosen.reason}`,
      });
    if (t && src === 0n) t.push({ step: 'note', text: chosen.reason });
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

/** ip6_route_input: IPv6 has no rp_filter; a forwarded packet needs net.ipv6.conf.all.forwarding. */
function routeInput(cv: CompiledView6, f: Flow6, t: Tracer | null, hash: number | undefined): Path6 {
  const fib = fibLookup(cv, f, t, 'route');
  if (fib.errno !== 0) return failure(fib);
  const hit = fib.hit!;
  if (hit.route.type === 'local') return { kind: 'local', fib, dev: 'lo', src: f.src };
  if (!cv.forwarding) {
    const reason = 'net.ipv6.conf.all.forwarding is 0: the router does not forward IPv6';
    if (t) t.push({ step: 'check', check: 'forwarding', passed: false, text: reason });
    return { kind: 'unreachable', errno: 'EHOSTUNREACH', fib, src: f.src, reason };
  }
  const path = choosePath(cv, hit, f, hash, t, false);
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

/**
 * Postrouting NPTv6 (`snat ip6 prefix to`): the first packet of a new connection leaving by
 * the rule's oif with a source in its `from` prefix gets the `to` prefix, host bits kept.
 */
function runNpt(
  cv: CompiledView6,
  dev: string,
  src: bigint,
  ct: CtState,
  replyNatSrc: bigint,
  t: Tracer | null,
): { src: bigint; snat?: Snat } {
  if (ct.reply) {
    if (replyNatSrc !== 0n && replyNatSrc !== src) {
      const snat: Snat = { from: formatIpv6(src), to: formatIpv6(replyNatSrc), reason: 'conntrack-reply' };
      if (t)
        t.push({
          step: 'nat',
          kind: 'conntrack-reply',
          from: snat.from,
          to: snat.to,
          text: `postrouting: reply of a DNAT'd connection; conntrack rewrites source ${snat.from} → ${snat.to}`,
        });
      return { src: replyNatSrc, snat };
    }
    return { src };
  }
  if (!ct.isNew) return { src };
  for (const n of cv.npt) {
    const text = describeNft(n.rule, cv.markMask);
    if (n.rule.oif !== dev || ((src ^ n.from) & n.mask) !== 0n) {
      if (t)
        t.push({
          step: 'nft',
          hook: 'postrouting',
          rule: n.rule,
          applied: false,
          text: `postrouting: ${text} — no: ${n.rule.oif !== dev ? `leaves by ${dev}` : `source ${formatIpv6(src)} is outside ${n.rule.from}`}`,
        });
      continue;
    }
    const to = n.to | (src & ~n.mask & prefixMask6(128));
    const snat: Snat = { from: formatIpv6(src), to: formatIpv6(to), reason: 'npt', rule: n.rule };
    if (t)
      t.push({
        step: 'nft',
        hook: 'postrouting',
        rule: n.rule,
        applied: true,
        text: `postrouting: ${text} — source ${snat.from} → ${snat.to}`,
      });
    return { src: to, snat };
  }
  return { src };
}

/** Route one IPv6 packet through the IPv6 half of `view`. */
export function simulatePacket6(view: RoutingView, packet: Packet, options: SimulateOptions = {}): SimResult {
  const t = options.trace === false ? null : new Tracer();
  const origin: Verdict['origin'] = packet.iif === undefined ? 'local-out' : 'forwarded';
  const dst = tryParseIpv6(packet.dst);
  if (dst < 0n)
    return invalid(
      `destination ${packet.dst}: not an IPv6 address (source and destination must be one family)`,
      origin,
      t,
    );
  let src = 0n;
  if (packet.src !== undefined) {
    src = tryParseIpv6(packet.src);
    if (src < 0n)
      return invalid(
        `source ${packet.src}: not an IPv6 address (source and destination must be one family)`,
        origin,
        t,
      );
  }
  if (dst === 0n || isMulticast6(dst) || isLinkLocal6(dst) || dst === LOOPBACK6)
    return invalid(
      `destination ${packet.dst}: unspecified, loopback, link-local and multicast destinations are not simulated`,
      origin,
      t,
    );
  if (isMulticast6(src))
    return invalid(`source ${packet.src}: a multicast address is never a source`, origin, t);
  const cv = compileView6(view);
  const proto = packet.proto ? PROTO_BY_NAME[packet.proto] : 0;
  const ported = proto === 6 || proto === 17;
  const reply = packet.direction === 'reply';
  const ct: CtState = {
    ctMark: (packet.ctMark ?? 0) >>> 0,
    isNew: packet.ctState ? packet.ctState === 'new' : !reply && packet.ctMark === undefined,
    reply,
  };
  const mark0 = (packet.mark ?? 0) >>> 0;
  const flow: Flow6 = {
    src,
    dst,
    iif: packet.iif ?? 'lo',
    oif: null,
    mark: mark0,
    uid: 0,
    proto,
    sport: ported ? (packet.sport ?? 0) : 0,
    dport: ported ? (packet.dport ?? 0) : 0,
    tclass: (packet.tos ?? 0) & 0xff,
  };
  const replyNatSrc = packet.replyNatSrc ? tryParseIpv6(packet.replyNatSrc) : 0n;
  if (replyNatSrc < 0n) return invalid(`replyNatSrc ${packet.replyNatSrc}: not an IPv6 address`, origin, t);

  let path: Path6;
  if (packet.iif !== undefined) {
    if (!cv.interfaces.has(packet.iif))
      return invalid(`iif ${packet.iif}: no such interface`, origin, t, 'ENODEV');
    if (packet.src === undefined) return invalid('a packet with iif needs a source address', origin, t);
    flow.mark = runMarkRules(cv, cv.prerouting, 'prerouting', packet.iif, flow.mark, ct, t, 'ipv6');
    if (packet.dnatTo !== undefined) {
      const to = tryParseIpv6(packet.dnatTo);
      if (to < 0n) return invalid(`dnatTo ${packet.dnatTo}: not an IPv6 address`, origin, t);
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
    if (t) t.push({ step: 'note', text: 'IPv6 has no rp_filter: the source is not validated' });
    path = routeInput(cv, flow, t, options.multipathHash);
  } else {
    flow.uid = (packet.uid ?? 0) >>> 0;
    if (packet.oif !== undefined) {
      const itf = cv.interfaces.get(packet.oif);
      if (!itf) return invalid(`oif ${packet.oif}: no such interface`, origin, t, 'ENODEV');
      if (!itf.up) return invalid(`oif ${packet.oif}: interface is down`, origin, t, 'ENETUNREACH');
      flow.oif = packet.oif;
    }
    if (src !== 0n && t && !cv.interfaceOrder.some((i) => i.addresses.some((a) => a.address === src)))
      t.push({
        step: 'note',
        text: `source ${packet.src} is not a known address of this router (a socket could not bind to it)`,
      });
    path = routeOutput(cv, flow, t, options.multipathHash, 'route');
    const connected = packet.connected ?? (proto === 6 && src === 0n);
    // ip6_dst_lookup_tail: an unbound socket keeps its first route and only takes the
    // source from it; it looks up again with that source only when the first lookup failed.
    if (connected && src === 0n && path.kind !== 'forward' && path.kind !== 'local') {
      const chosen = selectSource(cv, null, dst);
      if (chosen.address !== 0n) {
        flow.src = chosen.address;
        path = routeOutput(cv, flow, t, options.multipathHash, 'connect-second');
      }
    }
    if (path.kind === 'forward' || path.kind === 'local') {
      flow.src = path.src;
      const before = flow.mark;
      flow.mark = runMarkRules(cv, cv.output, 'output', 'lo', flow.mark, ct, t, 'ipv6');
      if (flow.mark !== before) {
        flow.uid = 0;
        path = routeOutput(cv, flow, t, options.multipathHash, 'reroute');
      }
    }
  }

  let finalSrc = path.src;
  let snat: Snat | undefined;
  if (path.kind === 'forward' && path.dev !== undefined) {
    const nat = runNpt(cv, path.dev, path.src, ct, replyNatSrc, t);
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
    ...(path.gateway ? { gateway: formatIpv6(path.gateway) } : {}),
    ...(finalSrc !== 0n ? { src: formatIpv6(finalSrc) } : {}),
    ...(snat ? { snat } : {}),
    ...(path.candidates ? { candidates: path.candidates } : {}),
    mark: flow.mark,
    ctMark: ct.ctMark,
    markSet: flow.mark !== mark0,
    ...(path.reason ? { reason: path.reason } : {}),
  };
  return { verdict, trace: t ? t.steps : EMPTY };
}
