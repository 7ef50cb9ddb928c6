/**
 * Objects that live and die with an interface. When an interface is deleted the kernel
 * removes its routes (a multipath route with any nexthop on it too) and its per-interface
 * sysctls (`net.ipv4.conf.IF.*`, `net.ipv4.neigh.IF.*`); rules that name it (`iif`, `oif`)
 * and nft rules (which match names as strings) stay. A restore to a snapshot can therefore
 * not put those objects back while the interface is gone, and must not try: it restores
 * everything else and says what it skipped (D101).
 */
import type { Facts, KernelRoute, KernelState } from '../model/kernel-state.js';
import { sysctlInterface } from '../model/sysctl-key.js';
import { describeRoute, describeRouteKey } from './describe-object.js';

/** Interfaces a route needs: its device and every nexthop's. */
export function routeInterfaces(route: KernelRoute): string[] {
  const devices = [route.dev, ...(route.nexthops ?? []).map((hop) => hop.dev)];
  return [...new Set(devices.filter((d): d is string => d !== undefined))];
}

/** Every interface the objects of `state` live on (routes' devices, per-interface sysctls). */
export function stateInterfaces(state: KernelState): string[] {
  const names = new Set<string>();
  for (const route of state.routes) for (const dev of routeInterfaces(route)) names.add(dev);
  for (const key of Object.keys(state.sysctls)) {
    const name = sysctlInterface(key);
    if (name !== undefined) names.add(name);
  }
  return [...names].sort();
}

export interface SkippedObject {
  /** e.g. `route table 102 default via 198.51.100.9 dev enp2s0.7 proto 252`, `sysctl net.ipv4.conf.enp2s0.7.rp_filter`. */
  readonly object: string;
  readonly interface: string;
}

/**
 * `state` without the objects whose interface does not exist in `facts`, and what was left
 * out. An interface counts as gone when the facts do not list it as existing.
 */
export function withoutVanishedInterfaces(
  state: KernelState,
  facts: Facts,
): { readonly state: KernelState; readonly skipped: readonly SkippedObject[] } {
  const gone = (name: string) => facts.interfaces[name]?.exists !== true;
  const skipped: SkippedObject[] = [];
  const routes = state.routes.filter((route) => {
    const missing = routeInterfaces(route).find(gone);
    if (missing === undefined) return true;
    skipped.push({
      object: `route ${describeRouteKey(route)}: ${describeRoute(route)}`,
      interface: missing,
    });
    return false;
  });
  const sysctls: Record<string, string> = {};
  for (const [key, value] of Object.entries(state.sysctls)) {
    const name = sysctlInterface(key);
    if (name !== undefined && gone(name))
      skipped.push({ object: `sysctl ${key} = ${value}`, interface: name });
    else sysctls[key] = value;
  }
  return { state: { ...state, routes, sysctls }, skipped };
}
