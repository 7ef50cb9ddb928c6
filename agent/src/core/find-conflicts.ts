/**
 * Objects that are not Uplink's but sit where Uplink would write: applying over them would
 * silently take them over (routes) or make the kernel evaluate someone else's rule between
 * Uplink's (rules). Uplink refuses instead, and says what to do.
 */
import type { DesiredState } from '../model/desired-state.js';
import type { KernelRoute, KernelRule, KernelState } from '../model/kernel-state.js';
import { compareRoutes, compareRules } from './canonicalize-state.js';
import { describeRoute, describeRule, describeTable } from './describe-object.js';

export type Conflict =
  | { readonly kind: 'route'; readonly route: KernelRoute; readonly message: string }
  | { readonly kind: 'rule'; readonly rule: KernelRule; readonly message: string };

/**
 * `ownProtocols`: tags counted as Uplink's (the previous tag too while it changes).
 */
export function findConflicts(
  current: KernelState,
  desired: DesiredState,
  ownProtocols: readonly number[] = [desired.settings.protocol],
): Conflict[] {
  const ours = new Set([desired.settings.protocol, ...ownProtocols]);
  const tables = new Set<number>(desired.providers.map((p) => p.table));
  if (desired.settings.balanceTable !== null) tables.add(desired.settings.balanceTable);
  for (const route of desired.routes) tables.add(route.table);
  const adopted = new Set(desired.settings.adoptTables);
  const priorities = new Set(desired.rules.map((r) => r.priority));

  const routeConflicts: Conflict[] = current.routes
    .filter((route) => !ours.has(route.protocol) && tables.has(route.table) && !adopted.has(route.table))
    .sort(compareRoutes)
    .map((route) => {
      const table = describeTable(route.table);
      return {
        kind: 'route',
        route,
        message:
          `table ${table} holds a route not written by Uplink: ${describeRoute(route)}; ` +
          `add ${route.table} to adoptTables to take it over`,
      };
    });

  const ruleConflicts: Conflict[] = current.rules
    .filter((rule) => !ours.has(rule.protocol) && priorities.has(rule.priority))
    .sort(compareRules)
    .map((rule) => ({
      kind: 'rule',
      rule,
      message:
        `priority ${rule.priority} holds a rule not written by Uplink: ${describeRule(rule, { priority: false })}; ` +
        `delete it or move Uplink's rule priorities away from ${rule.priority}`,
    }));

  return [...ruleConflicts, ...routeConflicts];
}
