/**
 * Ownership: which part of the kernel is Uplink's. Rules and routes are Uplink's when they
 * carry its route-protocol tag (routes only in the tables it writes); a table listed in
 * `adoptTables` is Uplink's whole. Table inet uplink is Uplink's whole. Sysctls are Uplink's
 * only for the keys it sets.
 */
import type { DesiredState } from '../model/desired-state.js';
import type { KernelState } from '../model/kernel-state.js';
import { canonicalizeState } from './canonicalize-state.js';

export interface OwnershipScope {
  /** Route-protocol tags that mark Uplink's objects (more than one while the tag changes). */
  readonly protocols: readonly number[];
  /** Tables Uplink writes routes into. */
  readonly tables: readonly number[];
  /** Tables whose untagged routes Uplink takes over (and so may delete). */
  readonly adoptTables: readonly number[];
  readonly sysctls: readonly string[];
}

/** The tables, tags and sysctl keys one desired state touches. */
export function ownershipScope(desired: DesiredState): OwnershipScope {
  const tables = new Set<number>(desired.providers.map((p) => p.table));
  if (desired.settings.balanceTable !== null) tables.add(desired.settings.balanceTable);
  for (const route of desired.routes) tables.add(route.table);
  return {
    protocols: [desired.settings.protocol],
    tables: [...tables].sort((a, b) => a - b),
    adoptTables: desired.settings.adoptTables.filter((t) => tables.has(t)).sort((a, b) => a - b),
    sysctls: Object.keys(desired.sysctls).sort(),
  };
}

/**
 * Union of scopes: the state being left (previous desired state, snapshot) must stay owned,
 * or what it created would be orphaned instead of deleted.
 */
export function mergeOwnershipScopes(...scopes: readonly (OwnershipScope | undefined)[]): OwnershipScope {
  const present = scopes.filter((s): s is OwnershipScope => s !== undefined);
  const union = (pick: (s: OwnershipScope) => readonly number[]) =>
    [...new Set(present.flatMap(pick))].sort((a, b) => a - b);
  return {
    protocols: union((s) => s.protocols),
    tables: union((s) => s.tables),
    adoptTables: union((s) => s.adoptTables),
    sysctls: [...new Set(present.flatMap((s) => s.sysctls))].sort(),
  };
}

/** The part of `current` that Uplink owns, canonical and sorted. */
export function owned(current: KernelState, scope: OwnershipScope): KernelState {
  const protocols = new Set(scope.protocols);
  const tables = new Set(scope.tables);
  const adopted = new Set(scope.adoptTables);
  const sysctls: Record<string, string> = {};
  for (const key of scope.sysctls) {
    const value = current.sysctls[key];
    if (value !== undefined) sysctls[key] = value;
  }
  return canonicalizeState({
    rules: current.rules.filter((rule) => protocols.has(rule.protocol)),
    routes: current.routes.filter(
      (route) => tables.has(route.table) && (protocols.has(route.protocol) || adopted.has(route.table)),
    ),
    nft: current.nft,
    sysctls,
  });
}

/**
 * The rules and routes of `current` that Uplink does not own — the complement of `owned`,
 * without table local (255), which the simulator derives from the addresses. In kernel order.
 */
export function foreign(
  current: KernelState,
  scope: OwnershipScope,
): { rules: KernelState['rules']; routes: KernelState['routes'] } {
  const protocols = new Set(scope.protocols);
  const tables = new Set(scope.tables);
  const adopted = new Set(scope.adoptTables);
  return {
    rules: current.rules.filter((rule) => !protocols.has(rule.protocol)),
    routes: current.routes.filter(
      (route) =>
        route.table !== LOCAL_TABLE &&
        !(tables.has(route.table) && (protocols.has(route.protocol) || adopted.has(route.table))),
    ),
  };
}

const LOCAL_TABLE = 255;
