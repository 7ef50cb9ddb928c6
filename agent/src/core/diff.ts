/**
 * effective vs current → the minimal ChangeSet. Identities:
 * - rule: all of it (a changed rule is delete + create);
 * - route: (table, dst, metric) — a changed gateway, type or nexthop set is an `update`,
 *   carried out with `ip route replace` (make before break);
 * - nft: table inet uplink as a whole, any difference is one `replace`;
 * - sysctl: its key; sysctls Uplink no longer sets are left as they are.
 */
import type { KernelNftRule, KernelRoute, KernelRule, KernelState } from '../model/kernel-state.js';
import { canonicalizeState, compareStrings, routeIdentity, stableJson } from './canonicalize-state.js';
import { describeNftRule, describeRouteKey, describeRule } from './describe-object.js';

export type ChangeAction = 'create' | 'update' | 'delete' | 'replace';
export type ChangeKind = 'rule' | 'route' | 'nft' | 'sysctl';

export type Change =
  | { readonly kind: 'rule'; readonly action: 'create'; readonly key: string; readonly after: KernelRule }
  | { readonly kind: 'rule'; readonly action: 'delete'; readonly key: string; readonly before: KernelRule }
  | { readonly kind: 'route'; readonly action: 'create'; readonly key: string; readonly after: KernelRoute }
  | {
      readonly kind: 'route';
      /** Done with `ip route replace`: the new route replaces the old one in place. */
      readonly action: 'update';
      readonly key: string;
      readonly before: KernelRoute;
      readonly after: KernelRoute;
    }
  | { readonly kind: 'route'; readonly action: 'delete'; readonly key: string; readonly before: KernelRoute }
  | {
      readonly kind: 'nft';
      /** The whole table in one `nft -f` transaction; `null` is "no table". */
      readonly action: 'replace';
      readonly key: 'table inet uplink';
      readonly before: readonly KernelNftRule[] | null;
      readonly after: readonly KernelNftRule[] | null;
      /** Per-rule differences, for humans: `+ …`, `- …`. */
      readonly details: readonly string[];
    }
  | {
      readonly kind: 'sysctl';
      readonly action: 'create' | 'update';
      readonly key: string;
      readonly before?: string;
      readonly after: string;
    };

export type ChangeSet = readonly Change[];

export function diff(effective: KernelState, current: KernelState): ChangeSet {
  const want = canonicalizeState(effective);
  const have = canonicalizeState(current);
  return [
    ...diffSysctls(want, have),
    ...diffRoutes(want, have),
    ...diffRules(want, have),
    ...diffNft(want, have),
  ];
}

function diffRules(want: KernelState, have: KernelState): Change[] {
  // Identities are computed once per rule: they are most of a no-op plan's cost. The rules
  // are canonical already (canonicalizeState), so ruleIdentity's own canonicalizing is skipped.
  const wantIdentities = want.rules.map(canonicalRuleIdentity);
  const haveIdentities = have.rules.map(canonicalRuleIdentity);
  const wanted = new Set(wantIdentities);
  const had = new Set(haveIdentities);
  const changes: Change[] = [];
  want.rules.forEach((rule, i) => {
    if (!had.has(wantIdentities[i]!))
      changes.push({ kind: 'rule', action: 'create', key: ruleKey(rule), after: rule });
  });
  // The kernel may hold an identical rule twice (older kernels, manual `ip rule add`): keep one.
  const kept = new Set<string>();
  for (const [i, rule] of have.rules.entries()) {
    const identity = haveIdentities[i]!;
    if (wanted.has(identity) && !kept.has(identity)) kept.add(identity);
    else changes.push({ kind: 'rule', action: 'delete', key: ruleKey(rule), before: rule });
  }
  return changes;
}

/** ruleIdentity of a rule that is already canonical. */
function canonicalRuleIdentity(rule: KernelRule): string {
  return stableJson(rule);
}

function ruleKey(rule: KernelRule): string {
  return `rule ${describeRule(rule)}`;
}

function diffRoutes(want: KernelState, have: KernelState): Change[] {
  const had = groupBy(have.routes, routeIdentity);
  const wanted = new Set(want.routes.map(routeIdentity));
  const changes: Change[] = [];
  for (const route of want.routes) {
    const key = `route ${describeRouteKey(route)}`;
    const before = had.get(routeIdentity(route));
    if (before === undefined) changes.push({ kind: 'route', action: 'create', key, after: route });
    else if (before.length !== 1 || stableJson(before[0]) !== stableJson(route)) {
      // Replace takes the place of one route with this identity; any duplicates are deleted below.
      const [first, ...extra] = before as [KernelRoute, ...KernelRoute[]];
      changes.push({ kind: 'route', action: 'update', key, before: first, after: route });
      for (const duplicate of extra)
        changes.push({ kind: 'route', action: 'delete', key, before: duplicate });
    }
  }
  for (const route of have.routes) {
    if (!wanted.has(routeIdentity(route))) {
      changes.push({
        kind: 'route',
        action: 'delete',
        key: `route ${describeRouteKey(route)}`,
        before: route,
      });
    }
  }
  return changes;
}

function diffNft(want: KernelState, have: KernelState): Change[] {
  if (stableJson(want.nft) === stableJson(have.nft)) return [];
  const wanted = new Set((want.nft ?? []).map(stableJson));
  const had = new Set((have.nft ?? []).map(stableJson));
  const details: string[] = [];
  if (have.nft === null) details.push('+ table inet uplink');
  for (const rule of have.nft ?? [])
    if (!wanted.has(stableJson(rule))) details.push(`- ${describeNftRule(rule)}`);
  for (const rule of want.nft ?? [])
    if (!had.has(stableJson(rule))) details.push(`+ ${describeNftRule(rule)}`);
  if (want.nft === null) details.push('- table inet uplink');
  return [
    { kind: 'nft', action: 'replace', key: 'table inet uplink', before: have.nft, after: want.nft, details },
  ];
}

function diffSysctls(want: KernelState, have: KernelState): Change[] {
  const changes: Change[] = [];
  for (const key of Object.keys(want.sysctls).sort(compareStrings)) {
    const after = want.sysctls[key]!;
    const before = have.sysctls[key];
    if (before === after) continue;
    changes.push(
      before === undefined
        ? { kind: 'sysctl', action: 'create', key, after }
        : { kind: 'sysctl', action: 'update', key, before, after },
    );
  }
  return changes;
}

function groupBy<T>(items: readonly T[], identity: (item: T) => string): Map<string, T[]> {
  const groups = new Map<string, T[]>();
  for (const item of items) {
    const id = identity(item);
    const group = groups.get(id);
    if (group === undefined) groups.set(id, [item]);
    else group.push(item);
  }
  return groups;
}
