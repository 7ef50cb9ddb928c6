/**
 * Canonical forms of kernel objects, so that the effective state (built from the desired
 * state) and the current state (parsed from `ip -j`) compare equal whenever the kernel
 * would hold the same object. Each rule below mirrors what iproute2/the kernel report back.
 */
import ipaddr from 'ipaddr.js';
import { canonicalJson } from '../model/content-hash.js';
import type {
  KernelNexthop,
  KernelNftRule,
  KernelRoute,
  KernelRule,
  KernelState,
} from '../model/kernel-state.js';

const ALL_ONES = 0xffffffff;
/** What the kernel gives an IPv6 route written without a metric (or with metric 0). */
export const IPV6_DEFAULT_METRIC = 1024;

/** Drop fields whose value the kernel reports as "not set". */
export function canonicalizeRule(rule: KernelRule): KernelRule {
  const out: { -readonly [K in keyof KernelRule]: KernelRule[K] } = { ...rule };
  if (out.from === '0.0.0.0/0' || out.from === '::/0') delete out.from;
  if (out.to === '0.0.0.0/0' || out.to === '::/0') delete out.to;
  if (out.tos === 0) delete out.tos;
  // `fwmark 0x100` is stored with mask 0xffffffff and printed without a mask.
  if (out.fwmask === ALL_ONES && out.fwmark !== undefined) delete out.fwmask;
  // Only `lookup` rules have a table; the kernel reports none for blackhole & co.
  if (out.action !== 'lookup') delete out.table;
  return sortKeys(out);
}

export function canonicalizeRoute(route: KernelRoute): KernelRoute {
  const out: { -readonly [K in keyof KernelRoute]: KernelRoute[K] } = { ...route };
  // IPv4 metric 0 is "no metric": ip -j omits it. IPv6 routes always have one: 1024 unless set.
  if (out.family === 'inet6') out.metric = out.metric || IPV6_DEFAULT_METRIC;
  else if (out.metric === 0) delete out.metric;
  // Universe scope is the default and ip -j omits it.
  if (out.scope === 'global') delete out.scope;
  if (out.nexthops !== undefined) {
    if (out.nexthops.length === 0) delete out.nexthops;
    else out.nexthops = [...out.nexthops].map(canonicalizeNexthop).sort(compareNexthops);
  }
  // iproute2 gives a unicast route with neither gateway nor nexthops `scope link`.
  // IPv6 routes have no scope (the kernel reports 0, universe, for every one).
  if (out.family === 'inet6') delete out.scope;
  else if (
    out.type === 'unicast' &&
    out.scope === undefined &&
    out.gateway === undefined &&
    out.nexthops === undefined &&
    out.dev !== undefined
  ) {
    out.scope = 'link';
  }
  return sortKeys(out);
}

function canonicalizeNexthop(nexthop: KernelNexthop): KernelNexthop {
  return sortKeys({ ...nexthop });
}

export function canonicalizeState(state: KernelState): KernelState {
  const rules = state.rules.map(canonicalizeRule).sort(compareRules);
  const routes = state.routes.map(canonicalizeRoute).sort(compareRoutes);
  const nft = state.nft === null ? null : [...state.nft].map((r) => sortKeys({ ...r })).sort(compareNftRules);
  const sysctls: Record<string, string> = {};
  for (const key of Object.keys(state.sysctls).sort()) sysctls[key] = state.sysctls[key]!;
  return { rules, routes, nft, sysctls };
}

/** A rule's identity is all of it: a changed rule is a different rule. */
export function ruleIdentity(rule: KernelRule): string {
  return stableJson(canonicalizeRule(rule));
}

/**
 * A route's identity in an IPv4 FIB: (table, dst, metric). The type is *not* part of it —
 * `ip route replace blackhole default table 101` replaces a unicast default in place — so a
 * changed type is an update, like a changed gateway.
 */
export function routeIdentity(route: Pick<KernelRoute, 'table' | 'dst' | 'metric' | 'family'>): string {
  if (route.family === 'inet6')
    return `inet6 ${route.table} ${route.dst} ${route.metric || IPV6_DEFAULT_METRIC}`;
  return `${route.table} ${route.dst} ${route.metric === undefined || route.metric === 0 ? 0 : route.metric}`;
}

export function compareRules(a: KernelRule, b: KernelRule): number {
  return a.priority - b.priority || compareStrings(stableJson(a), stableJson(b));
}

export function compareRoutes(a: KernelRoute, b: KernelRoute): number {
  return (
    a.table - b.table ||
    compareCidrs(a.dst, b.dst) ||
    (a.metric ?? 0) - (b.metric ?? 0) ||
    compareStrings(stableJson(a), stableJson(b))
  );
}

const NFT_KIND_ORDER: Record<KernelNftRule['kind'], number> = {
  'track-restore': 0,
  'track-save': 1,
  masquerade: 2,
  snat: 3,
  npt: 4,
  unknown: 5,
};

export function compareNftRules(a: KernelNftRule, b: KernelNftRule): number {
  return NFT_KIND_ORDER[a.kind] - NFT_KIND_ORDER[b.kind] || compareStrings(stableJson(a), stableJson(b));
}

function compareNexthops(a: KernelNexthop, b: KernelNexthop): number {
  return compareStrings(a.dev, b.dev) || compareStrings(a.gateway ?? '', b.gateway ?? '');
}

/** Orders IPv4 before IPv6, then by network address, then by prefix length (`0.0.0.0/0` first). */
function compareCidrs(a: string, b: string): number {
  const [aAddr, aLen] = ipaddr.parseCIDR(a);
  const [bAddr, bLen] = ipaddr.parseCIDR(b);
  return compareBytes(aAddr.toByteArray(), bAddr.toByteArray()) || aLen - bLen;
}

function compareBytes(a: readonly number[], b: readonly number[]): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    const d = (a[i] ?? 0) - (b[i] ?? 0);
    if (d !== 0) return d;
  }
  return a.length - b.length;
}

export function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * Equal values give equal strings: the one canonical JSON (keys sorted at every level) that
 * also makes the content hash (model/content-hash.ts).
 */
export const stableJson: (value: unknown) => string = canonicalJson;

function sortKeys<T extends object>(value: T): T {
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(value).sort()) {
    const v = (value as Record<string, unknown>)[key];
    if (v !== undefined) out[key] = v;
  }
  return out as T;
}
