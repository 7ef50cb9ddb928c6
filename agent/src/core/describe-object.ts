/**
 * Human-readable one-line forms of kernel objects, in `ip rule` / `ip route` / nft words,
 * used as change keys, in plans, conflicts and drift reports.
 */
import type { KernelNftRule, KernelRoute, KernelRule } from '../model/kernel-state.js';

const TABLE_NAMES: Readonly<Record<number, string>> = { 253: 'default', 254: 'main', 255: 'local' };

export function describeTable(table: number): string {
  return TABLE_NAMES[table] ?? String(table);
}

/** e.g. `priority 2000 from 203.0.113.5/32 lookup 101` */
export function describeRule(
  rule: KernelRule,
  options: { priority?: boolean; protocol?: boolean } = {},
): string {
  const parts = options.priority === false ? [] : [`priority ${rule.priority}`];
  parts.push(`from ${rule.from ?? 'all'}`);
  if (rule.to !== undefined) parts.push(`to ${rule.to}`);
  if (rule.tos !== undefined) parts.push(`tos ${rule.tos}`);
  if (rule.fwmark !== undefined) {
    parts.push(`fwmark ${hex(rule.fwmark)}${rule.fwmask === undefined ? '' : `/${hex(rule.fwmask)}`}`);
  }
  if (rule.iif !== undefined) parts.push(`iif ${rule.iif}`);
  if (rule.oif !== undefined) parts.push(`oif ${rule.oif}`);
  if (rule.uidrange !== undefined) parts.push(`uidrange ${rule.uidrange.start}-${rule.uidrange.end}`);
  if (rule.ipproto !== undefined) parts.push(`ipproto ${rule.ipproto}`);
  if (rule.sport !== undefined) parts.push(`sport ${range(rule.sport)}`);
  if (rule.dport !== undefined) parts.push(`dport ${range(rule.dport)}`);
  if (rule.action === 'lookup') parts.push(`lookup ${describeTable(rule.table ?? 254)}`);
  else parts.push(rule.action);
  if (rule.suppressPrefixlength !== undefined)
    parts.push(`suppress_prefixlength ${rule.suppressPrefixlength}`);
  if (options.protocol !== false) parts.push(`proto ${rule.protocol}`);
  return parts.join(' ');
}

/** The identity part of a route: `table 101 default`, `table 101 blackhole 192.0.2.0/24 metric 10`. */
export function describeRouteKey(route: Pick<KernelRoute, 'table' | 'dst' | 'metric'>): string {
  const dst = route.dst === '0.0.0.0/0' ? 'default' : route.dst;
  const metric = route.metric === undefined || route.metric === 0 ? '' : ` metric ${route.metric}`;
  return `table ${describeTable(route.table)} ${dst}${metric}`;
}

/** e.g. `default via 198.51.100.1 dev eth1 proto 252` (without the table). */
export function describeRoute(route: KernelRoute): string {
  const parts: string[] = [];
  if (route.type !== 'unicast') parts.push(route.type);
  parts.push(route.dst === '0.0.0.0/0' ? 'default' : route.dst);
  if (route.gateway !== undefined) parts.push(`via ${route.gateway}`);
  if (route.dev !== undefined) parts.push(`dev ${route.dev}`);
  parts.push(`proto ${route.protocol}`);
  if (route.scope !== undefined) parts.push(`scope ${route.scope}`);
  if (route.src !== undefined) parts.push(`src ${route.src}`);
  if (route.metric !== undefined && route.metric !== 0) parts.push(`metric ${route.metric}`);
  for (const nexthop of route.nexthops ?? []) {
    const via = nexthop.gateway === undefined ? '' : ` via ${nexthop.gateway}`;
    parts.push(`nexthop${via} dev ${nexthop.dev} weight ${nexthop.weight}`);
  }
  return parts.join(' ');
}

export function describeNftRule(rule: KernelNftRule): string {
  switch (rule.kind) {
    case 'track-save':
      return `prerouting: iif ${rule.iif} ct state new → ct mark ${hex(rule.mark)}`;
    case 'track-restore':
      return `${rule.chain}: ct mark ${hex(rule.mark)} → meta mark`;
    case 'masquerade':
      return `postrouting: oif ${rule.oif} masquerade`;
    case 'snat':
      return `postrouting: oif ${rule.oif} snat to ${rule.address}`;
    case 'unknown':
      return `${rule.chain}: ${rule.text} (not written by Uplink)`;
  }
}

function hex(value: number): string {
  return `0x${value.toString(16)}`;
}

function range(r: { start: number; end: number }): string {
  return r.start === r.end ? String(r.start) : `${r.start}-${r.end}`;
}
