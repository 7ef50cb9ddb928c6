/**
 * An in-process kernel with iproute2/nft semantics for the objects Uplink owns. For fleet
 * simulation and fast unit tests only: kernel behaviour is proven against `linux` in
 * namespaces. Mirrors what matters to the engine:
 * - steps run one by one; a failing step leaves the earlier ones applied (like `ip -batch`);
 * - `rule-add` of an identical rule fails (EEXIST), `rule-delete` of a missing one fails;
 * - `route-replace` upserts by (family, table, dst, metric) — the FIB identity; it fails when the
 *   device does not exist or a gateway is not on a connected network of it;
 * - `route-delete` of a missing route fails (ESRCH);
 * - `nft-replace` swaps table inet uplink whole, `null` deletes it;
 * - `sysctl-set` of `net.ipv4.conf.IF.*` fails when IF does not exist (IF may hold dots, `eth0.7`);
 * - deleting an interface (`deleteInterface`) takes its routes — a multipath route with any
 *   nexthop on it too — and its `net.ipv4.conf.IF.*` / `neigh.IF.*` sysctls with it, as the
 *   kernel does; rules naming it (iif/oif) and nft rules stay.
 * Test helpers set facts, seed foreign objects and inject faults.
 */
import ipaddr from 'ipaddr.js';
import { routeIdentity, stableJson } from '../core/canonicalize-state.js';
import { routeInterfaces } from '../core/vanished-interfaces.js';
import type {
  Facts,
  InterfaceFacts,
  KernelNftRule,
  KernelRoute,
  KernelRule,
  KernelState,
} from '../model/kernel-state.js';
import type { Step } from '../model/steps.js';
import { isSysctlKey, sysctlInterface, sysctlPath } from '../model/sysctl-key.js';
import { type Dataplane, DataplaneError, type ReadRequest } from './dataplane.js';

export interface MemoryDataplaneInit {
  readonly facts?: Facts;
  readonly rules?: readonly KernelRule[];
  readonly routes?: readonly KernelRoute[];
  readonly nft?: readonly KernelNftRule[] | null;
  readonly sysctls?: Readonly<Record<string, string>>;
}

/**
 * A fault armed for the next `apply` calls. `match` sees each step and its 1-based position
 * within the apply call. `throw`: the step fails like a kernel refusal; `ignore`: the step
 * "succeeds" but changes nothing (a kernel that reads back differently).
 */
export interface Fault {
  readonly match: (step: Step, position: number) => boolean;
  readonly effect: 'throw' | 'ignore';
  /** How many steps it hits before disarming; default 1. */
  readonly times?: number;
}

export class MemoryDataplane implements Dataplane {
  private facts: Facts;
  private rules: KernelRule[];
  private routes: KernelRoute[];
  private nft: KernelNftRule[] | null;
  private readonly sysctls: Map<string, string>;
  private readonly faults: { fault: Fault; remaining: number }[] = [];
  /** Every step that took effect, in order (for assertions). */
  readonly applied: Step[] = [];
  /** Number of `apply` calls so far. */
  applyCalls = 0;

  constructor(init: MemoryDataplaneInit = {}) {
    this.facts = clone(init.facts ?? { interfaces: {} });
    this.rules = clone([...(init.rules ?? [])]);
    this.routes = clone([...(init.routes ?? [])]);
    this.nft = init.nft === undefined || init.nft === null ? null : clone([...init.nft]);
    this.sysctls = new Map(Object.entries(init.sysctls ?? {}));
  }

  async readFacts(): Promise<Facts> {
    return clone(this.facts);
  }

  async readKernel(request: ReadRequest): Promise<KernelState> {
    const sysctls: Record<string, string> = {};
    for (const key of request.sysctls) {
      const value = this.sysctls.get(key);
      if (value !== undefined) sysctls[key] = value;
    }
    return clone({ rules: this.rules, routes: this.routes, nft: this.nft, sysctls });
  }

  async apply(steps: readonly Step[]): Promise<void> {
    this.applyCalls++;
    for (const [index, step] of steps.entries()) {
      const fault = this.takeFault(step, index + 1);
      if (fault === 'throw')
        throw new DataplaneError(`step ${index + 1} (${step.op}) failed`, 'injected fault');
      if (fault === 'ignore') continue;
      this.applyStep(step, index + 1);
      this.applied.push(clone(step));
    }
  }

  // ---- test helpers ----

  /** Replaces all facts (e.g. after a PPP re-dial). */
  setFacts(facts: Facts): void {
    this.facts = clone(facts);
  }

  /** Sets (or with `undefined`, removes) one interface's facts. */
  setInterface(name: string, facts: InterfaceFacts | undefined): void {
    const interfaces = { ...this.facts.interfaces };
    if (facts === undefined) delete interfaces[name];
    else interfaces[name] = clone(facts);
    this.facts = { interfaces };
  }

  /** The interface disappears (unplugged, `ip link del`), with what the kernel removes with it. */
  deleteInterface(name: string): void {
    this.setInterface(name, undefined);
    this.routes = this.routes.filter((r) => !routeInterfaces(r).includes(name));
    for (const key of [...this.sysctls.keys()]) if (sysctlInterface(key) === name) this.sysctls.delete(key);
  }

  setSysctl(key: string, value: string): void {
    this.sysctls.set(key, value);
  }

  /** Adds objects behind Uplink's back (another daemon, an admin). */
  addRule(rule: KernelRule): void {
    this.rules.push(clone(rule));
  }

  addRoute(route: KernelRoute): void {
    this.routes.push(clone(route));
  }

  setNft(rules: readonly KernelNftRule[] | null): void {
    this.nft = rules === null ? null : clone([...rules]);
  }

  injectFault(fault: Fault): void {
    this.faults.push({ fault, remaining: fault.times ?? 1 });
  }

  /** The whole kernel, all sysctls included. */
  dump(): KernelState {
    return clone({
      rules: this.rules,
      routes: this.routes,
      nft: this.nft,
      sysctls: Object.fromEntries(this.sysctls),
    });
  }

  // ---- semantics ----

  private takeFault(step: Step, position: number): Fault['effect'] | undefined {
    for (const armed of this.faults) {
      if (armed.remaining > 0 && armed.fault.match(step, position)) {
        armed.remaining--;
        return armed.fault.effect;
      }
    }
    return undefined;
  }

  private applyStep(step: Step, position: number): void {
    const fail = (message: string): never => {
      throw new DataplaneError(`step ${position} (${step.op}) failed: ${message}`, JSON.stringify(step));
    };
    switch (step.op) {
      case 'rule-add': {
        const key = selectorKey(step.rule);
        if (this.rules.some((r) => selectorKey(r) === key)) fail('RTNETLINK answers: File exists');
        // Keep the list in priority order, a new rule after those of its priority (as the kernel does).
        const at = this.rules.findIndex((r) => r.priority > step.rule.priority);
        this.rules.splice(at < 0 ? this.rules.length : at, 0, clone(step.rule));
        return;
      }
      case 'rule-delete': {
        const key = selectorKey(step.rule);
        const index = this.rules.findIndex(
          (r) => selectorKey(r) === key && r.protocol === step.rule.protocol,
        );
        if (index < 0) fail('RTNETLINK answers: No such file or directory');
        this.rules.splice(index, 1);
        return;
      }
      case 'route-replace': {
        this.checkRoute(step.route, fail);
        const index = this.routes.findIndex((r) => sameRouteSlot(r, step.route));
        if (index < 0) this.routes.push(clone(step.route));
        else this.routes[index] = clone(step.route);
        return;
      }
      case 'route-delete': {
        const index = this.routes.findIndex(
          (r) => sameRouteSlot(r, step.route) && r.type === step.route.type,
        );
        if (index < 0) fail('RTNETLINK answers: No such process');
        this.routes.splice(index, 1);
        return;
      }
      case 'nft-replace':
        this.nft = step.rules === null ? null : clone([...step.rules]);
        return;
      case 'sysctl-set': {
        if (!isSysctlKey(step.key)) fail(`sysctl: ${step.key}: not a sysctl key Uplink manages`);
        const iface = sysctlInterface(step.key);
        if (iface !== undefined && !this.facts.interfaces[iface]?.exists) {
          fail(`sysctl: cannot stat /proc/sys/${sysctlPath(step.key)}: No such file or directory`);
        }
        this.sysctls.set(step.key, step.value);
        return;
      }
    }
  }

  private checkRoute(route: KernelRoute, fail: (message: string) => never): void {
    if (route.type !== 'unicast') return;
    const hops = route.nexthops ?? [{ dev: route.dev, gateway: route.gateway }];
    for (const hop of hops) {
      if (hop.dev === undefined) {
        if (hop.gateway === undefined) fail('unicast route needs a device or a gateway');
        continue;
      }
      const iface = this.facts.interfaces[hop.dev];
      if (iface === undefined || !iface.exists) fail(`Cannot find device "${hop.dev}"`);
      if (hop.gateway !== undefined && !onLink(iface!, hop.gateway)) {
        fail('RTNETLINK answers: Nexthop has invalid gateway');
      }
    }
  }
}

const selectorKeys = new WeakMap<KernelRule, string>();

/**
 * What `ip rule` compares to find "the same rule": everything but the protocol tag. Cached
 * per rule object (the model's rules are never mutated in place), so adding n rules costs
 * n² string comparisons, not n² serialisations.
 */
function selectorKey(rule: KernelRule): string {
  let key = selectorKeys.get(rule);
  if (key === undefined) {
    const { protocol: _protocol, ...rest } = rule;
    key = stableJson(rest);
    selectorKeys.set(rule, key);
  }
  return key;
}

function sameRouteSlot(a: KernelRoute, b: KernelRoute): boolean {
  return routeIdentity(a) === routeIdentity(b);
}

function onLink(iface: InterfaceFacts, gateway: string): boolean {
  if (gateway.includes(':')) {
    // IPv6: a link-local next hop is on every link; a global one inside a prefix of the interface.
    const address6 = ipaddr.IPv6.parse(gateway);
    if (address6.range() === 'linkLocal') return true;
    return (iface.addresses6 ?? []).some((a) => address6.match(ipaddr.IPv6.parse(a.address), a.prefixLength));
  }
  const address = ipaddr.IPv4.parse(gateway);
  return iface.addresses.some((a) => {
    const base = a.peer ?? a.address;
    return address.match(ipaddr.IPv4.parse(base), a.prefixLength);
  });
}

function clone<T>(value: T): T {
  return structuredClone(value);
}
