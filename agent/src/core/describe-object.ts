/**
 * Human-readable one-line forms of kernel objects, in `ip rule` / `ip route` / nft words,
 * used as change keys, in plans, conflicts and drift reports.
 */
import type { KernelNftRule, KernelRoute, KernelRule } from '../model/kernel-state.js';
import { type RouteStyle, type RuleStyle, routeWords, ruleWords, SHOW_ORDER } from './render-rule-words.js';

const TABLE_NAMES: Readonly<Record<number, string>> = { 253: 'default', 254: 'main', 255: 'local' };

export function describeTable(table: number): string {
  return TABLE_NAMES[table] ?? String(table);
}

/** e.g. `priority 2000 from 203.0.113.5/32 lookup 101` */
export function describeRule(
  rule: KernelRule,
  options: { priority?: boolean; protocol?: boolean } = {},
): string {
  const words = ruleWords(rule, {
    ...DESCRIBE_RULE,
    priority: options.priority === false ? 'none' : 'keyword',
    protocol: options.protocol === false ? 'none' : 'proto',
  }).join(' ');
  return rule.family === 'inet6' ? `-6 ${words}` : words;
}

const DESCRIBE_RULE: RuleStyle<string> = {
  order: SHOW_ORDER,
  priority: 'keyword',
  fromAll: true,
  tos: 'decimal',
  zeroTos: true,
  fwmark: 'given',
  protocol: 'proto',
  table: (table) => describeTable(table ?? 254),
  address: (value) => value,
};

/** The identity part of a route: `table 101 default`, `table 101 blackhole 192.0.2.0/24 metric 10`. */
export function describeRouteKey(route: Pick<KernelRoute, 'table' | 'dst' | 'metric' | 'family'>): string {
  const v6 = route.family === 'inet6';
  const dst = route.dst === '0.0.0.0/0' || route.dst === '::/0' ? 'default' : route.dst;
  const metric =
    route.metric === undefined || route.metric === 0 || (v6 && route.metric === 1024)
      ? ''
      : ` metric ${route.metric}`;
  return `${v6 ? '-6 ' : ''}table ${describeTable(route.table)} ${dst}${metric}`;
}

/** e.g. `default via 198.51.100.1 dev eth1 proto 252` (without the table). */
export function describeRoute(route: KernelRoute): string {
  return routeWords(route, DESCRIBE_ROUTE).join(' ');
}

const DESCRIBE_ROUTE: RouteStyle<string> = {
  order: ['gateway', 'dev', 'protocol', 'scope', 'src', 'metric', 'nexthops'],
  dst: (value) => (value === '0.0.0.0/0' || value === '::/0' ? 'default' : value),
  address: (value) => value,
  table: describeTable,
  protocolWord: 'proto',
  omitGlobalScope: false,
  omitZeroMetric: true,
};

export function describeNftRule(rule: KernelNftRule): string {
  switch (rule.kind) {
    case 'track-save':
      return `prerouting: ${rule.family === 'ipv6' ? 'ipv6 ' : ''}iif ${rule.iif} ct state new → ct mark ${hex(rule.mark)}`;
    case 'track-restore':
      return `${rule.chain}: ${rule.family === 'ipv6' ? 'ipv6 ' : ''}ct mark ${hex(rule.mark)} → meta mark`;
    case 'masquerade':
      return `postrouting: oif ${rule.oif} masquerade`;
    case 'snat':
      return `postrouting: oif ${rule.oif} snat to ${rule.address}`;
    case 'npt':
      return `postrouting: oif ${rule.oif} ${rule.from} → prefix ${rule.to} (NPTv6)`;
    case 'unknown':
      return `${rule.chain}: ${rule.text} (not written by Uplink)`;
  }
}

function hex(value: number): string {
  return `0x${value.toString(16)}`;
}
