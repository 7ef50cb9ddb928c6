/** What Uplink owns right now, the facts it resolves against, and what it last applied. */
import { foreign, mergeOwnershipScopes, type OwnershipScope, owned } from '../core/owned.js';
import type { Dataplane } from '../dataplane/dataplane.js';
import type { Facts, KernelState } from '../model/kernel-state.js';
import { factSysctlKeys, type RouterFacts } from '../model/router-facts.js';
import { readCurrent, scopeFor } from './read-current.js';
import type { EngineOptions } from './reconcile.js';
import { StateStore } from './state-store.js';

/** The protocol tag assumed before anything was applied (DESIGN.md: default 252). */
const DEFAULT_PROTOCOL = 252;

export interface ShowReport {
  readonly facts: Facts;
  readonly owned: KernelState;
  readonly scope: OwnershipScope;
  readonly applied: { readonly site: string; readonly hash: string; readonly appliedAt: string } | null;
  readonly snapshot: { readonly createdAt: string } | null;
  /** What a routing decision depends on beside Uplink's objects (D170), for `status` and `show --facts`. */
  readonly routerFacts: RouterFacts;
}

export async function show(
  dataplane: Dataplane,
  options: Pick<EngineOptions, 'stateDir' | 'failpoints'>,
  /** Interfaces whose rp_filter and src_valid_mark the facts carry (the ones seen last time). */
  factInterfaces: Iterable<string> = [],
): Promise<ShowReport> {
  const store = new StateStore(options.stateDir, options);
  const applied = await store.readApplied();
  const snapshot = await store.readSnapshot();
  const base: OwnershipScope =
    applied === undefined
      ? { protocols: [DEFAULT_PROTOCOL], tables: [], adoptTables: [], sysctls: [] }
      : scopeFor(applied.desired, undefined);
  const scope = mergeOwnershipScopes(base, snapshot?.scope);
  const names = new Set(factInterfaces);
  for (const p of applied?.desired.providers ?? []) names.add(p.interface);
  const factKeys = factSysctlKeys(names);
  const { facts, kernel } = await readCurrent(dataplane, {
    ...scope,
    sysctls: [...new Set([...scope.sysctls, ...factKeys])].sort(),
  });
  const sysctls: Record<string, string> = {};
  for (const key of factKeys) {
    const value = kernel.sysctls[key];
    if (value !== undefined) sysctls[key] = value;
  }
  return {
    facts,
    owned: owned(kernel, scope),
    scope,
    applied:
      applied === undefined
        ? null
        : { site: applied.desired.site, hash: applied.desired.hash, appliedAt: applied.appliedAt },
    snapshot: snapshot === undefined ? null : { createdAt: snapshot.createdAt },
    routerFacts: { interfaces: facts.interfaces, ...foreign(kernel, scope), sysctls },
  };
}
