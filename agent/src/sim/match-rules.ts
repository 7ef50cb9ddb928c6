import {
  ACTION_BLACKHOLE,
  ACTION_LOOKUP,
  ACTION_UNREACHABLE,
  type CompiledNexthop,
  type CompiledRoute,
  type CompiledRule,
  type CompiledView,
  PROTO_NAMES,
  tableName,
} from './compile-view.js';
import {
  describeFlow,
  type Flow,
  flowSummary,
  IPTOS_RT_MASK,
  MASKS,
  PURPOSE_TEXT,
  type Tracer,
} from './flow.js';
import { formatIpv4, hex } from './ipv4.js';
import type { Errno, VerdictKind } from './simulate-packet.js';
import type { LookupPurpose, Selector, TableOutcome } from './trace.js';

export const SEL_IIF = 1;
export const SEL_OIF = 2;
export const SEL_FWMARK = 3;
export const SEL_UID = 4;
export const SEL_FROM = 5;
export const SEL_TO = 6;
export const SEL_TOS = 7;
export const SEL_PROTO = 8;
export const SEL_SPORT = 9;
export const SEL_DPORT = 10;
export const SELECTOR_NAMES: readonly Selector[] = [
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
export function matchRule(r: CompiledRule, f: Flow): number {
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

export function portRange(start: number, end: number): string {
  return start === end ? String(start) : `${start}-${end}`;
}

export function describeMiss(r: CompiledRule, sel: number, f: Flow): string {
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

export interface TableHit {
  readonly route: CompiledRoute;
  readonly nexthops: readonly CompiledNexthop[];
}

/**
 * fib_table_lookup: longest prefix first; within a prefix, lowest metric first. Reject
 * types and throw answer at once; a unicast route none of whose nexthops suits the
 * flow's oif is skipped and the search backtracks to shorter prefixes.
 */
export function lookupTable(cv: CompiledView, tableId: number, f: Flow): TableHit | null | undefined {
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

export interface FibOutcome {
  /** 0 on success. */
  readonly errno: Errno | 0;
  readonly kind: VerdictKind;
  readonly rule: CompiledRule | null;
  readonly hit: TableHit | null;
  readonly reason: string;
}

export const NO_RULE: FibOutcome = {
  errno: 'ENETUNREACH',
  kind: 'no-route',
  rule: null,
  hit: null,
  reason: 'no rule gave a route',
};

/** fib_rules_lookup with the IPv4 action and suppress hooks. */
export function fibLookup(cv: CompiledView, f: Flow, t: Tracer | null, purpose: LookupPurpose): FibOutcome {
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

export function tableStep(
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
