/**
 * Precompiles a RoutingView into integer form once: rules with numeric selectors, one
 * longest-prefix-match structure per table (a hash map per prefix length, longest
 * first), interfaces with their primary addresses. `simulatePacket` compiles on first
 * use and caches per view object, so callers may pass the view itself.
 */
import {
  type RouteStyle,
  type RuleStyle,
  routeWords,
  ruleWords,
  SHOW_ORDER,
} from '../core/render-rule-words.js';
import type { KernelNftRule, KernelRoute, KernelRule } from '../model/kernel-state.js';
import { formatCidr, formatIpv4, parseIpv4, parseIpv4Cidr, prefixMask } from './ipv4.js';
import { DEFAULT_RULES, type RoutingView, TABLE_DEFAULT, TABLE_LOCAL, TABLE_MAIN } from './routing-view.js';

export const SCOPE_UNIVERSE = 0;
export const SCOPE_LINK = 253;
export const SCOPE_HOST = 254;

export const ACTION_LOOKUP = 0;
export const ACTION_BLACKHOLE = 1;
export const ACTION_UNREACHABLE = 2;
export const ACTION_PROHIBIT = 3;

export const PROTO_NUMBERS = { tcp: 6, udp: 17, icmp: 1, 'ipv6-icmp': 58 } as const;
export const PROTO_NAMES: Readonly<Record<number, string>> = {
  6: 'tcp',
  17: 'udp',
  1: 'icmp',
  58: 'ipv6-icmp',
};

export interface CompiledRule {
  readonly rule: KernelRule;
  readonly text: string;
  readonly priority: number;
  readonly action: number;
  /** -1: no table (the lookup finds nothing and evaluation continues). */
  readonly table: number;
  readonly fromNet: number;
  readonly fromMask: number;
  readonly toNet: number;
  readonly toMask: number;
  readonly iif: string | null;
  /** false when the named device does not exist: the kernel keeps the rule "detached" and it never matches. */
  readonly iifAttached: boolean;
  readonly oif: string | null;
  readonly oifAttached: boolean;
  readonly mark: number;
  readonly markMask: number;
  readonly uidStart: number;
  readonly uidEnd: number;
  readonly proto: number;
  readonly sportStart: number;
  readonly sportEnd: number;
  readonly dportStart: number;
  readonly dportEnd: number;
  readonly tos: number;
  /** -1 when not set. */
  readonly suppressPrefixlength: number;
}

export interface CompiledNexthop {
  readonly dev: string;
  /** 0 when the nexthop is the device itself (on-link / point-to-point). */
  readonly gateway: number;
  readonly weight: number;
  /** fib_rebalance's upper bound on the 31-bit multipath hash. */
  readonly upperBound: number;
}

export type CompiledRouteType =
  | 'unicast'
  | 'local'
  | 'broadcast'
  | 'blackhole'
  | 'unreachable'
  | 'prohibit'
  | 'throw';

export interface CompiledRoute {
  /** null for routes derived into the local table. */
  readonly route: KernelRoute | null;
  readonly text: string;
  readonly type: CompiledRouteType;
  readonly network: number;
  readonly length: number;
  readonly metric: number;
  readonly scope: number;
  /** Preferred source (`src`), 0 when not set. */
  readonly prefsrc: number;
  /** Alive nexthops only (empty for reject types and throw). */
  readonly nexthops: readonly CompiledNexthop[];
}

export interface RouteTable {
  readonly id: number;
  /** Prefix lengths present, longest first. */
  readonly lengths: readonly number[];
  /** Indexed by prefix length: masked destination → routes, lowest metric first. */
  readonly slots: ReadonlyArray<Map<number, CompiledRoute[]> | undefined>;
}

export interface CompiledAddress {
  readonly local: number;
  /** What gateway matching compares against: the peer for point-to-point, else the local address. */
  readonly match: number;
  readonly mask: number;
  readonly scope: number;
  readonly secondary: boolean;
}

export interface CompiledInterface {
  readonly name: string;
  readonly up: boolean;
  readonly addresses: readonly CompiledAddress[];
  readonly rpFilter: number;
  readonly srcValidMark: boolean;
}

export interface CompiledNft {
  readonly prerouting: readonly KernelNftRule[];
  readonly output: readonly KernelNftRule[];
  readonly postrouting: readonly KernelNftRule[];
}

export interface CompiledView {
  readonly view: RoutingView;
  readonly rules: readonly CompiledRule[];
  readonly tables: ReadonlyMap<number, RouteTable>;
  readonly interfaces: ReadonlyMap<string, CompiledInterface>;
  /** ifindex order (lo first). */
  readonly interfaceOrder: readonly CompiledInterface[];
  /** Every configured address, on any interface, up or not (`__ip_dev_find`). */
  readonly configuredAddresses: ReadonlySet<number>;
  /** Rules beyond the three defaults exist (the kernel then always does a full source validation). */
  readonly customRules: boolean;
  readonly markMask: number;
  readonly nft: CompiledNft;
  /** Objects the kernel could not hold in this view (route via a missing or down device, …). */
  readonly warnings: readonly string[];
}

export function tableName(id: number): string {
  if (id === TABLE_LOCAL) return 'local';
  if (id === TABLE_MAIN) return 'main';
  if (id === TABLE_DEFAULT) return 'default';
  return String(id);
}

/** `ip rule show` style text of one rule. */
export function renderRule(rule: KernelRule): string {
  return ruleWords(rule, SHOW_RULE).join(' ');
}

const SHOW_RULE: RuleStyle<string> = {
  order: SHOW_ORDER,
  priority: 'colon',
  fromAll: true,
  tos: 'hex',
  zeroTos: false,
  fwmark: 'effective',
  protocol: 'none',
  table: (table) => (table === undefined ? '?' : tableName(table)),
  address: (value) => value,
};

/**
 * The kernel sets mask 0xffffffff only when a non-zero fwmark is given without a mask:
 * `fwmark 0` alone leaves the mask 0, so the rule matches every mark.
 */
function effectiveMarkMask(rule: KernelRule): number {
  if (rule.fwmask !== undefined) return rule.fwmask >>> 0;
  return rule.fwmark ? 0xffffffff : 0;
}

/** `ip route show` style text of one route. */
export function renderRoute(route: KernelRoute): string {
  return routeWords(route, SHOW_ROUTE).join(' ');
}

const SHOW_ROUTE: RouteStyle<string> = {
  order: ['gateway', 'dev', 'nexthops', 'scope', 'src', 'metric', 'table'],
  dst: (value) => (value === '0.0.0.0/0' ? 'default' : value.endsWith('/32') ? value.slice(0, -3) : value),
  address: (value) => value,
  table: tableName,
  protocolWord: 'proto',
  omitGlobalScope: true,
  omitZeroMetric: true,
};

function compileRule(rule: KernelRule, interfaces: ReadonlyMap<string, CompiledInterface>): CompiledRule {
  const from = rule.from ? parseIpv4Cidr(rule.from) : { network: 0, mask: 0 };
  const to = rule.to ? parseIpv4Cidr(rule.to) : { network: 0, mask: 0 };
  const markMask = effectiveMarkMask(rule);
  const action =
    rule.action === 'lookup'
      ? ACTION_LOOKUP
      : rule.action === 'blackhole'
        ? ACTION_BLACKHOLE
        : rule.action === 'unreachable'
          ? ACTION_UNREACHABLE
          : ACTION_PROHIBIT;
  return {
    rule,
    text: renderRule(rule),
    priority: rule.priority,
    action,
    table: rule.table ?? -1,
    fromNet: from.network,
    fromMask: from.mask,
    toNet: to.network,
    toMask: to.mask,
    iif: rule.iif ?? null,
    iifAttached: rule.iif === undefined || rule.iif === 'lo' || interfaces.has(rule.iif),
    oif: rule.oif ?? null,
    oifAttached: rule.oif === undefined || rule.oif === 'lo' || interfaces.has(rule.oif),
    mark: (rule.fwmark ?? 0) >>> 0,
    markMask,
    uidStart: rule.uidrange?.start ?? 0,
    uidEnd: rule.uidrange?.end ?? 0xffffffff,
    proto: rule.ipproto ? PROTO_NUMBERS[rule.ipproto] : 0,
    sportStart: rule.sport?.start ?? 0,
    sportEnd: rule.sport?.end ?? 0,
    dportStart: rule.dport?.start ?? 0,
    dportEnd: rule.dport?.end ?? 0,
    tos: rule.tos ?? 0,
    suppressPrefixlength: rule.suppressPrefixlength ?? -1,
  };
}

function compileInterfaces(view: RoutingView): CompiledInterface[] {
  return view.interfaces.map((itf) => {
    const addresses: CompiledAddress[] = [];
    for (const a of itf.addresses) {
      const local = parseIpv4(a.address);
      const match = a.peer ? parseIpv4(a.peer) : local;
      const mask = prefixMask(a.prefixLength);
      // __inet_insert_ifa: an address in the subnet of an existing primary with the same mask is secondary.
      const secondary = addresses.some(
        (p) => !p.secondary && p.mask === mask && ((p.match ^ match) & mask) === 0,
      );
      const scope = local >>> 24 === 127 ? SCOPE_HOST : SCOPE_UNIVERSE;
      addresses.push({ local, match, mask, scope, secondary });
    }
    return {
      name: itf.name,
      up: itf.up,
      addresses,
      rpFilter: itf.rpFilter ?? 0,
      srcValidMark: itf.srcValidMark ?? false,
    };
  });
}

/** fib_rebalance: cumulative weights scaled to 31 bits, rounded to nearest, minus one. */
function withUpperBounds(nexthops: ReadonlyArray<Omit<CompiledNexthop, 'upperBound'>>): CompiledNexthop[] {
  const total = nexthops.reduce((s, n) => s + n.weight, 0);
  let w = 0;
  return nexthops.map((n) => {
    w += n.weight;
    return { ...n, upperBound: Math.floor((w * 2 ** 31 + total / 2) / total) - 1 };
  });
}

function compileRoute(
  route: KernelRoute,
  interfaces: ReadonlyMap<string, CompiledInterface>,
  warnings: string[],
): CompiledRoute | null {
  const { network, length } = parseIpv4Cidr(route.dst);
  const text = renderRoute(route);
  let nexthops: CompiledNexthop[] = [];
  if (route.type === 'unicast') {
    const declared = route.nexthops?.length
      ? route.nexthops.map((n) => ({ dev: n.dev, gateway: n.gateway, weight: n.weight }))
      : [{ dev: route.dev, gateway: route.gateway, weight: 1 }];
    const alive: Array<Omit<CompiledNexthop, 'upperBound'>> = [];
    for (const nh of declared) {
      const gateway = nh.gateway ? parseIpv4(nh.gateway) : 0;
      const dev = nh.dev ?? (gateway ? deviceForGateway(gateway, interfaces) : undefined);
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
  const hasGateway = nexthops.some((n) => n.gateway !== 0);
  const scope =
    route.scope === 'host'
      ? SCOPE_HOST
      : route.scope === 'link'
        ? SCOPE_LINK
        : route.scope === 'global' || hasGateway || route.type !== 'unicast'
          ? SCOPE_UNIVERSE
          : SCOPE_LINK;
  return {
    route,
    text,
    type: route.type,
    network,
    length,
    metric: route.metric ?? 0,
    scope,
    prefsrc: route.src ? parseIpv4(route.src) : 0,
    nexthops,
  };
}

function deviceForGateway(
  gateway: number,
  interfaces: ReadonlyMap<string, CompiledInterface>,
): string | undefined {
  for (const itf of interfaces.values()) {
    if (itf.addresses.some((a) => ((a.match ^ gateway) & a.mask) === 0)) return itf.name;
  }
  return undefined;
}

/** Files a route under its table, prefix length and network (either family's key). */
export function addToTable<K, R extends { readonly length: number; readonly network: K }>(
  tables: Map<number, Map<number, Map<K, R[]>>>,
  id: number,
  r: R,
): void {
  let byLength = tables.get(id);
  if (!byLength) {
    byLength = new Map();
    tables.set(id, byLength);
  }
  let slot = byLength.get(r.length);
  if (!slot) {
    slot = new Map();
    byLength.set(r.length, slot);
  }
  const list = slot.get(r.network);
  if (list) list.push(r);
  else slot.set(r.network, [r]);
}

function finishTable(id: number, byLength: Map<number, Map<number, CompiledRoute[]>>): RouteTable {
  const slots: Array<Map<number, CompiledRoute[]> | undefined> = new Array(33).fill(undefined);
  for (const [length, slot] of byLength) {
    // Aliases of one prefix are kept in metric order; equal metrics keep insertion order.
    for (const list of slot.values()) list.sort((a, b) => a.metric - b.metric);
    slots[length] = slot;
  }
  const lengths = [...byLength.keys()].sort((a, b) => b - a);
  return { id, lengths, slots };
}

const cache = new WeakMap<RoutingView, CompiledView>();

/** Compile (or fetch the cached compilation of) a view. Throws AddressError on malformed addresses. */
export function compileView(view: RoutingView): CompiledView {
  const cached = cache.get(view);
  if (cached) return cached;
  const warnings: string[] = [];
  const interfaceOrder = compileInterfaces(view);
  const interfaces = new Map(interfaceOrder.map((i) => [i.name, i]));
  const configuredAddresses = new Set<number>();
  for (const itf of interfaceOrder) for (const a of itf.addresses) configuredAddresses.add(a.local);

  const building = new Map<number, Map<number, Map<number, CompiledRoute[]>>>();
  for (const route of view.routes) {
    // The simulator follows IPv4 packets: the IPv6 half of a dual-stack state is another FIB.
    if (route.family !== undefined) continue;
    if (route.table === TABLE_LOCAL) {
      warnings.push(`${renderRoute(route)}: ignored; the local table is derived from the local addresses`);
      continue;
    }
    const compiled = compileRoute(route, interfaces, warnings);
    if (compiled) addToTable(building, route.table, compiled);
  }
  // The local table: a host route per address of an up interface (the kernel removes them
  // when the interface goes down), plus 127.0.0.0/8 on lo.
  for (const la of view.localAddresses) {
    const itf = interfaces.get(la.dev);
    if (la.dev !== 'lo' && !itf?.up) continue;
    const address = parseIpv4(la.address);
    addToTable(building, TABLE_LOCAL, localRoute(address, 32, address, la.dev));
  }
  addToTable(building, TABLE_LOCAL, localRoute(0x7f000000, 8, 0x7f000001, 'lo'));
  // fib_add_ifaddr: a primary address with a prefix shorter than /31 also gets the subnet's
  // broadcast address (prefix | ~mask) as a broadcast route, src the primary (127.255.255.255
  // on lo). Recent kernels (checked on 6.18) add none for the network address itself.
  for (const itf of interfaceOrder) {
    if (!itf.up) continue;
    for (const a of itf.addresses) {
      if (a.secondary || a.mask === 0 || a.mask === 0xfffffffe || a.mask === 0xffffffff) continue;
      // The prefix is the peer's for a point-to-point address (ifa_address), as for the connected route.
      const broadcast = ((a.match & a.mask) | ~a.mask) >>> 0;
      addToTable(building, TABLE_LOCAL, broadcastRoute(broadcast, a.local, itf.name));
    }
  }

  const tables = new Map<number, RouteTable>();
  for (const [id, byLength] of building) tables.set(id, finishTable(id, byLength));

  // The view's rules are taken as they are (buildView adds the defaults); kernel order is
  // by priority with ties in list order, and Array.prototype.sort is stable.
  const ruleList = view.rules.filter((r) => r.family === undefined).sort((a, b) => a.priority - b.priority);
  const compiled: CompiledView = {
    view,
    rules: ruleList.map((r) => compileRule(r, interfaces)),
    tables,
    interfaces,
    interfaceOrder,
    configuredAddresses,
    customRules: ruleList.some((r) => !DEFAULT_RULES.some((d) => sameRule(d, r))),
    markMask: view.markMask >>> 0,
    nft: {
      prerouting: view.nft.filter(
        (r) => r.kind === 'track-save' || (r.kind === 'track-restore' && r.chain === 'prerouting'),
      ),
      output: view.nft.filter((r) => r.kind === 'track-restore' && r.chain === 'output'),
      postrouting: view.nft.filter((r) => r.kind === 'masquerade' || r.kind === 'snat'),
    },
    warnings,
  };
  for (const r of view.nft) {
    if (r.kind === 'unknown') warnings.push(`nft ${r.chain}: "${r.text}" is not Uplink's; not simulated`);
  }
  cache.set(view, compiled);
  return compiled;
}

function localRoute(network: number, length: number, prefsrc: number, dev: string): CompiledRoute {
  return {
    route: null,
    text: `local ${length === 32 ? formatIpv4(network) : formatCidr(network, length)} dev ${dev} scope host src ${formatIpv4(prefsrc)} table local`,
    type: 'local',
    network,
    length,
    metric: 0,
    scope: SCOPE_HOST,
    prefsrc,
    nexthops: [{ dev, gateway: 0, weight: 1, upperBound: 0x7fffffff }],
  };
}

function broadcastRoute(address: number, prefsrc: number, dev: string): CompiledRoute {
  return {
    route: null,
    text: `broadcast ${formatIpv4(address)} dev ${dev} scope link src ${formatIpv4(prefsrc)} table local`,
    type: 'broadcast',
    network: address,
    length: 32,
    metric: 0,
    scope: SCOPE_LINK,
    prefsrc,
    nexthops: [{ dev, gateway: 0, weight: 1, upperBound: 0x7fffffff }],
  };
}

function sameRule(a: KernelRule, b: KernelRule): boolean {
  return renderRule(a) === renderRule(b);
}
