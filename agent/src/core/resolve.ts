/**
 * desired + facts + health → effective: the concrete kernel objects Uplink wants right now.
 *
 * Availability (interface present, up, with an IPv4 address, and a gateway when the mode
 * needs one) removes a provider's objects entirely; health ("down") only removes what
 * carries traffic to it — routes marked `requiresUp` and its nexthops in multipath routes —
 * so rules fall through to the next table instead (failover is never drift).
 *
 * Two health rules live here too (docs/decisions.md D31, D32):
 * - Probe routes: while a provider with explicit probe targets is down, its table keeps a
 *   /32 route to each target, so the probes (sent with the provider's mark) keep leaving
 *   by that uplink and can see it come back.
 * - Last resort: when every available provider is down, none is treated as down — nothing
 *   would carry traffic otherwise, the probes may be what is wrong, and traffic resumes
 *   the moment any uplink does, without waiting for its recovery threshold.
 */
import ipaddr from 'ipaddr.js';
import type {
  AddressRef,
  DesiredNexthop,
  DesiredRoute,
  DesiredRule,
  DesiredState,
  NetworkRef,
  NftRule,
  NptPrefix,
  Provider,
} from '../model/desired-state.js';
import type {
  Facts,
  Health,
  InterfaceFacts,
  KernelNexthop,
  KernelNftRule,
  KernelRoute,
  KernelRule,
  KernelState,
} from '../model/kernel-state.js';
import { routedPrefixProblem } from '../model/routed-prefix.js';
import { sysctlInterface } from '../model/sysctl-key.js';
import {
  canonicalizeRoute,
  canonicalizeState,
  routeIdentity,
  ruleIdentity,
  stableJson,
} from './canonicalize-state.js';
import { describeRouteKey } from './describe-object.js';

export interface UnavailableProvider {
  readonly provider: string;
  readonly reason: string;
}

export interface ResolveResult {
  /** Canonical and sorted, so it compares with `stableJson`. */
  readonly effective: KernelState;
  readonly unavailable: readonly UnavailableProvider[];
  /** Providers with an IPv6 half the router cannot use (no interface, no IPv6 gateway), D180. */
  readonly unavailable6: readonly UnavailableProvider[];
  /** Desired objects that cannot coexist (e.g. two routes with one identity); resolve keeps the first. */
  readonly problems: readonly string[];
  /** Every available provider is down, so all are kept as if up (the last resort, D32). */
  readonly lastResort: boolean;
  /** The same for the providers' IPv6 halves, judged on their own (D183). */
  readonly lastResort6: boolean;
  /** Delegated prefixes the router reported that the agent will not route (D155), with why. */
  readonly refusedDelegated: readonly RefusedDelegated[];
}

export interface RefusedDelegated {
  readonly provider: string;
  readonly prefix: string;
  readonly reason: string;
}

interface AvailableProvider {
  readonly provider: Provider;
  /** The primary address, then every other address of the interface. */
  readonly addresses: readonly string[];
  readonly address: string;
  readonly prefixLength: number;
  readonly peer: string | undefined;
  /** undefined: point-to-point without a peer address, routes go `dev IF` only. */
  readonly gateway: string | undefined;
  down: boolean;
}

/** A provider's IPv6 half the router can use: interface up and an IPv6 next hop. */
interface AvailableProvider6 {
  readonly provider: Provider;
  /** Global IPv6 addresses of the interface, kernel order (may be none: a delegated prefix only). */
  readonly addresses: readonly string[];
  readonly gateway: string;
  down: boolean;
}

/** The health key of a provider's IPv6 half: probes judge each family on its own (D183). */
export function healthKey(provider: string, family?: 'inet6'): string {
  return family === 'inet6' ? `${provider}:ipv6` : provider;
}

/** Thrown inside resolve when an object refers to an unavailable provider; the object is dropped. */
class Unresolvable {
  constructor(readonly provider: string) {}
}

export function resolve(desired: DesiredState, facts: Facts, health: Health): ResolveResult {
  const available = new Map<string, AvailableProvider>();
  const unavailable: UnavailableProvider[] = [];
  for (const provider of desired.providers) {
    // An IPv6-only uplink has no IPv4 half to be available or not (D165).
    if (provider.gateway.kind === 'none') continue;
    const result = checkProvider(provider, facts.interfaces[provider.interface], health);
    if (typeof result === 'string') unavailable.push({ provider: provider.name, reason: result });
    else available.set(provider.name, result);
  }
  const lastResort = available.size > 0 && [...available.values()].every((p) => p.down);
  if (lastResort) for (const p of available.values()) p.down = false;
  const available6 = new Map<string, AvailableProvider6>();
  const unavailable6: UnavailableProvider[] = [];
  for (const provider of desired.providers) {
    if (provider.ipv6 === undefined) continue;
    const result = checkProvider6(provider, facts.interfaces[provider.interface], health);
    if (typeof result === 'string') unavailable6.push({ provider: provider.name, reason: result });
    else available6.set(provider.name, result);
  }
  // The last resort holds per family: IPv6 down everywhere keeps every IPv6 half as if up.
  const lastResort6 = available6.size > 0 && [...available6.values()].every((p) => p.down);
  if (lastResort6) for (const p of available6.values()) p.down = false;
  const declared = new Set(desired.providers.map((p) => p.name));
  const { delegated, refused: refusedDelegated } = acceptDelegated(desired, facts);
  const context: Context = { available, available6, declared, delegated };

  const problems: string[] = [];
  const attempt = <T>(subject: string, fn: () => T): T | undefined => {
    try {
      return fn();
    } catch (error) {
      if (!(error instanceof Unresolvable)) throw error;
      if (!declared.has(error.provider))
        problems.push(`${subject}: provider ${error.provider} is not declared`);
      return undefined;
    }
  };

  // Two desired rules may resolve to one kernel rule (e.g. both name the same address): keep one.
  const rules = new Map<string, KernelRule>();
  for (const rule of desired.rules) {
    const resolved = attempt(`rule ${rule.id}`, () => resolveRule(rule, context, desired.settings.protocol));
    for (const one of resolved ?? []) rules.set(ruleIdentity(one), one);
  }

  const routes = new Map<string, KernelRoute>();
  for (const route of desired.routes) {
    const resolved = attempt(`route ${route.id}`, () =>
      resolveRoute(route, context, desired.settings.protocol),
    );
    if (resolved === undefined) continue;
    const identity = routeIdentity(resolved);
    const existing = routes.get(identity);
    if (existing === undefined) routes.set(identity, resolved);
    else if (stableJson(existing) !== stableJson(resolved)) {
      problems.push(
        `route ${describeRouteKey(resolved)}: defined twice with different contents (id ${route.id})`,
      );
    }
  }

  for (const route of [
    ...probeRoutes(available.values(), desired.settings.protocol),
    ...probeRoutes6(available6.values(), desired.settings.protocol),
  ]) {
    const identity = routeIdentity(route);
    if (!routes.has(identity)) routes.set(identity, route);
  }

  for (const rule of desired.nft) {
    if (!declared.has(rule.provider))
      problems.push(`nft ${rule.kind} rule: provider ${rule.provider} is not declared`);
  }
  // No nft rules desired → no table at all (null); rules desired but all providers
  // unavailable → the table exists and is empty, so it is not created and deleted on every flap.
  const nft =
    desired.nft.length === 0
      ? null
      : desired.nft
          .filter((rule) => (isIpv6NftRule(rule) ? available6 : available).has(rule.provider))
          .flatMap((rule) => resolveNftRule(rule, context));

  const sysctls: Record<string, string> = {};
  for (const [key, value] of Object.entries(desired.sysctls)) {
    const iface = sysctlInterface(key);
    // net.ipv4.conf.ppp1.* does not exist while ppp1 does not: writing it would fail.
    if (iface !== undefined && facts.interfaces[iface]?.exists !== true) continue;
    sysctls[key] = value;
  }

  const byProvider = (a: UnavailableProvider, b: UnavailableProvider) =>
    a.provider < b.provider ? -1 : a.provider > b.provider ? 1 : 0;
  unavailable.sort(byProvider);
  unavailable6.sort(byProvider);
  return {
    effective: canonicalizeState({ rules: [...rules.values()], routes: [...routes.values()], nft, sysctls }),
    unavailable,
    unavailable6,
    problems,
    lastResort,
    lastResort6,
    refusedDelegated,
  };
}

/**
 * The delegated prefixes each provider may use (D155): the ones its interface's DHCPv6 client
 * reported, less those that are no prefix an ISP can route to a site (link-local, longer than
 * a /64), not of the length the spec expects, or overlapping a prefix of another provider's
 * (a listed one, or one delegated to a provider before it) — a prefix comes from one ISP.
 * The facts are kept while the provider is unavailable: hosts numbered from its prefix still
 * need their NPTv6 mapping onto the uplink that is left.
 */
export function acceptDelegated(
  desired: DesiredState,
  facts: Facts,
): { delegated: ReadonlyMap<string, readonly string[]>; refused: RefusedDelegated[] } {
  const delegated = new Map<string, string[]>();
  const refused: RefusedDelegated[] = [];
  const taken: { provider: string; prefix: string }[] = desired.providers.flatMap((p) =>
    (p.ipv6?.prefixes ?? []).map((prefix) => ({ provider: p.name, prefix })),
  );
  for (const p of desired.providers) {
    const expected = p.ipv6?.delegated;
    if (expected === undefined) continue;
    const accepted: string[] = [];
    for (const { prefix } of facts.interfaces[p.interface]?.delegated6 ?? []) {
      const length = Number(prefix.slice(prefix.indexOf('/') + 1));
      const clash = taken.find((t) => overlaps6(t.prefix, prefix));
      const reason =
        routedPrefixProblem(prefix) ??
        (expected.length !== null && length !== expected.length
          ? `is a /${length}; the spec expects a /${expected.length} (ipv6.prefixes: [delegated/${expected.length}]): write delegated/${length}, or ask the ISP for a /${expected.length}`
          : clash === undefined
            ? undefined
            : clash.provider === p.name
              ? `overlaps ${clash.prefix}, already ${p.name}'s`
              : `overlaps ${clash.prefix}, provider ${clash.provider}'s; a prefix comes from one ISP`);
      if (reason !== undefined) {
        refused.push({ provider: p.name, prefix, reason });
        continue;
      }
      accepted.push(prefix);
      taken.push({ provider: p.name, prefix });
    }
    delegated.set(p.name, accepted);
  }
  return { delegated, refused };
}

function overlaps6(a: string, b: string): boolean {
  const [addressA, lengthA] = ipaddr.parseCIDR(a);
  const [addressB, lengthB] = ipaddr.parseCIDR(b);
  const length = Math.min(lengthA, lengthB);
  return addressA.match(addressB, length);
}

/**
 * While a provider is down, a /32 to each explicit probe target in its table, in place of
 * the default route it lost (D31). The default target, the gateway, needs none: it is on-link, and rule 900 finds
 * its connected route in main.
 */
function probeRoutes(providers: Iterable<AvailableProvider>, protocol: number): KernelRoute[] {
  const out: KernelRoute[] = [];
  for (const p of providers) {
    const { health, table, interface: dev } = p.provider;
    // While up, the table's default route carries the probes; the /32s would only add churn.
    if (!health.enabled || !p.down) continue;
    for (const target of health.targets) {
      if (target === p.gateway) continue;
      out.push(
        canonicalizeRoute({
          table,
          dst: `${target}/32`,
          type: 'unicast',
          protocol,
          dev,
          ...(p.gateway === undefined ? { scope: 'link' as const } : { gateway: p.gateway }),
        }),
      );
    }
  }
  return out;
}

/** The IPv6 twin of `probeRoutes`: /128s to the IPv6 targets while the IPv6 half is down. */
function probeRoutes6(providers: Iterable<AvailableProvider6>, protocol: number): KernelRoute[] {
  const out: KernelRoute[] = [];
  for (const p of providers) {
    const { health, table, interface: dev } = p.provider;
    if (!health.enabled || !p.down) continue;
    for (const target of p.provider.ipv6?.healthTargets ?? []) {
      if (target === p.gateway) continue;
      out.push(
        canonicalizeRoute({
          family: 'inet6',
          table,
          dst: `${target}/128`,
          type: 'unicast',
          protocol,
          dev,
          gateway: p.gateway,
        }),
      );
    }
  }
  return out;
}

function isIpv6NftRule(rule: NftRule): boolean {
  return (
    rule.kind === 'npt' ||
    ((rule.kind === 'track-save' || rule.kind === 'track-restore') && rule.family === 'ipv6')
  );
}

function checkProvider6(
  provider: Provider,
  iface: InterfaceFacts | undefined,
  health: Health,
): AvailableProvider6 | string {
  const name = provider.interface;
  if (iface === undefined || !iface.exists) return `interface ${name} does not exist`;
  if (!iface.up) return `interface ${name} is down`;
  const gatewayMode = provider.ipv6!.gateway;
  const gateway = gatewayMode.kind === 'static' ? gatewayMode.address : iface.detectedGateway6;
  if (gateway === undefined) return `no IPv6 gateway detected on ${name} (no router advertisement yet)`;
  return {
    provider,
    addresses: [...new Set((iface.addresses6 ?? []).map((a) => a.address))],
    gateway,
    down: health[healthKey(provider.name, 'inet6')] === 'down',
  };
}

interface Context {
  readonly available: ReadonlyMap<string, AvailableProvider>;
  readonly available6: ReadonlyMap<string, AvailableProvider6>;
  readonly declared: ReadonlySet<string>;
  /** Each delegating provider's accepted delegated prefixes (D155), available or not. */
  readonly delegated: ReadonlyMap<string, readonly string[]>;
}

function checkProvider(
  provider: Provider,
  iface: InterfaceFacts | undefined,
  health: Health,
): AvailableProvider | string {
  const name = provider.interface;
  if (iface === undefined || !iface.exists) return `interface ${name} does not exist`;
  if (!iface.up) return `interface ${name} is down`;
  const primary = iface.addresses[0];
  if (primary === undefined) return `interface ${name} has no IPv4 address`;
  let gateway: string | undefined;
  switch (provider.gateway.kind) {
    case 'static':
      gateway = provider.gateway.address;
      break;
    case 'detect':
      if (iface.detectedGateway === undefined) return `no gateway detected on ${name}`;
      gateway = iface.detectedGateway;
      break;
    case 'point-to-point':
      gateway = primary.peer;
      break;
    case 'none':
      return `${provider.name} is IPv6-only`;
  }
  return {
    provider,
    addresses: [...new Set(iface.addresses.map((a) => a.address))],
    address: primary.address,
    prefixLength: primary.prefixLength,
    peer: primary.peer,
    gateway,
    down: health[provider.name] === 'down',
  };
}

function need(
  context: Context,
  name: string | undefined,
  family?: 'inet6',
): { readonly down: boolean } | undefined {
  if (name === undefined) return undefined;
  const provider = (family === 'inet6' ? context.available6 : context.available).get(name);
  if (provider === undefined) throw new Unresolvable(name);
  return provider;
}

/**
 * One desired rule as kernel rules. A rule *from* an uplink's own address is one rule per
 * address on the interface, at the same priority (D92): replies from a secondary address (a
 * server DNAT'd on the uplink's /29) must leave by that uplink as much as the primary's.
 */
function resolveRule(rule: DesiredRule, context: Context, protocol: number): KernelRule[] {
  need(context, rule.requires, rule.family);
  const { id: _id, requires: _requires, from, to, ...rest } = rule;
  if (rule.family === 'inet6') {
    const base6 = { ...rest, ...(to === undefined ? {} : { to: resolveNetwork6(to, context) }), protocol };
    if (from?.kind === 'provider-host') {
      return provider6(context, from.provider).addresses.map((address) => ({
        ...base6,
        from: `${address}/128`,
      }));
    }
    if (from?.kind === 'provider-delegated') {
      provider6(context, from.provider);
      return (context.delegated.get(from.provider) ?? []).map((prefix) => ({ ...base6, from: prefix }));
    }
    return [{ ...base6, ...(from === undefined ? {} : { from: resolveNetwork6(from, context) }) }];
  }
  const base = { ...rest, ...(to === undefined ? {} : { to: resolveNetwork(to, context) }), protocol };
  if (from?.kind === 'provider-host') {
    return provider(context, from.provider).addresses.map((address) => ({ ...base, from: `${address}/32` }));
  }
  return [{ ...base, ...(from === undefined ? {} : { from: resolveNetwork(from, context) }) }];
}

function provider6(context: Context, name: string): AvailableProvider6 {
  const found = context.available6.get(name);
  if (found === undefined) throw new Unresolvable(name);
  return found;
}

/** IPv6 networks: literals, and an uplink's own address as a /128 (connected networks are not named in v6 rules). */
function resolveNetwork6(ref: NetworkRef, context: Context): string {
  switch (ref.kind) {
    case 'literal':
      return ref.cidr;
    case 'provider-host': {
      const [first] = provider6(context, ref.provider).addresses;
      if (first === undefined) throw new Unresolvable(ref.provider);
      return `${first}/128`;
    }
    case 'provider-network':
    case 'provider-delegated':
      throw new Unresolvable(ref.provider);
  }
}

function resolveRoute6(route: DesiredRoute, context: Context, protocol: number): KernelRoute | undefined {
  const required = need(context, route.requires, 'inet6');
  if (required?.down === true && route.requiresUp === true) return undefined;
  const base: KernelRoute = {
    family: 'inet6',
    table: route.table,
    dst: resolveNetwork6(route.dst, context),
    type: route.type,
    protocol,
    ...(route.metric === undefined ? {} : { metric: route.metric }),
  };
  const gatewayOf = (ref: AddressRef | undefined): string | undefined => {
    if (ref === undefined) return undefined;
    if (ref.kind === 'literal') return ref.address;
    if (ref.kind === 'provider-gateway') return provider6(context, ref.provider).gateway;
    const [first] = provider6(context, ref.provider).addresses;
    if (first === undefined) throw new Unresolvable(ref.provider);
    return first;
  };
  if (route.nexthops !== undefined) {
    const nexthops: KernelNexthop[] = [];
    for (const hop of route.nexthops) {
      if (!context.declared.has(hop.provider)) throw new Unresolvable(hop.provider);
      const p = context.available6.get(hop.provider);
      if (p === undefined || p.down) continue;
      nexthops.push({ dev: hop.dev, weight: hop.weight, ...gatewayField(gatewayOf(hop.gateway)) });
    }
    const [only] = nexthops;
    if (only === undefined) return undefined;
    if (nexthops.length === 1)
      return canonicalizeRoute({ ...base, dev: only.dev, ...gatewayField(only.gateway) });
    return canonicalizeRoute({ ...base, nexthops });
  }
  const gatewayProvider =
    route.gateway !== undefined && route.gateway.kind !== 'literal'
      ? context.available6.get(route.gateway.provider)
      : undefined;
  const dev = route.dev ?? gatewayProvider?.provider.interface;
  return canonicalizeRoute({
    ...base,
    ...(dev === undefined ? {} : { dev }),
    ...gatewayField(gatewayOf(route.gateway)),
    ...(route.src === undefined ? {} : { src: gatewayOf(route.src) }),
  });
}

function resolveRoute(route: DesiredRoute, context: Context, protocol: number): KernelRoute | undefined {
  if (route.family === 'inet6') return resolveRoute6(route, context, protocol);
  const required = need(context, route.requires);
  if (required?.down === true && route.requiresUp === true) return undefined;

  const base: KernelRoute = {
    table: route.table,
    dst: resolveNetwork(route.dst, context),
    type: route.type,
    protocol,
    ...(route.scope === undefined ? {} : { scope: route.scope }),
    ...(route.metric === undefined ? {} : { metric: route.metric }),
    ...(route.src === undefined ? {} : { src: resolveAddress(route.src, context) }),
  };

  if (route.nexthops !== undefined) {
    const nexthops = route.nexthops.flatMap((nexthop) => resolveNexthop(nexthop, context));
    const [only] = nexthops;
    if (only === undefined) return undefined;
    // The kernel stores a one-nexthop multipath route as a plain route, without the weight.
    if (nexthops.length === 1)
      return canonicalizeRoute({ ...base, dev: only.dev, ...gatewayField(only.gateway) });
    return canonicalizeRoute({ ...base, nexthops });
  }

  const gateway = route.gateway === undefined ? undefined : resolveAddress(route.gateway, context, true);
  const gatewayProvider =
    route.gateway !== undefined && route.gateway.kind !== 'literal'
      ? context.available.get(route.gateway.provider)
      : undefined;
  const dev = route.dev ?? gatewayProvider?.provider.interface;
  return canonicalizeRoute({ ...base, ...(dev === undefined ? {} : { dev }), ...gatewayField(gateway) });
}

function resolveNexthop(nexthop: DesiredNexthop, context: Context): KernelNexthop[] {
  if (!context.declared.has(nexthop.provider)) throw new Unresolvable(nexthop.provider);
  const provider = context.available.get(nexthop.provider);
  if (provider === undefined || provider.down) return [];
  const gateway = nexthop.gateway === undefined ? undefined : resolveAddress(nexthop.gateway, context, true);
  return [{ dev: nexthop.dev, weight: nexthop.weight, ...gatewayField(gateway) }];
}

function gatewayField(gateway: string | undefined): { gateway?: string } {
  return gateway === undefined ? {} : { gateway };
}

function provider(context: Context, name: string): AvailableProvider {
  const found = context.available.get(name);
  if (found === undefined) throw new Unresolvable(name);
  return found;
}

/** `allowNone`: a point-to-point gateway without a peer resolves to "no gateway" (dev route). */
function resolveAddress(ref: AddressRef, context: Context, allowNone = false): string | undefined {
  switch (ref.kind) {
    case 'literal':
      return ref.address;
    case 'provider-address':
      return provider(context, ref.provider).address;
    case 'provider-gateway': {
      const gateway = provider(context, ref.provider).gateway;
      if (gateway === undefined && !allowNone) throw new Unresolvable(ref.provider);
      return gateway;
    }
  }
}

function resolveNetwork(ref: NetworkRef, context: Context): string {
  switch (ref.kind) {
    case 'literal':
      return ref.cidr;
    case 'provider-host':
      return `${provider(context, ref.provider).address}/32`;
    case 'provider-delegated':
      throw new Unresolvable(ref.provider);
    case 'provider-network': {
      const p = provider(context, ref.provider);
      // On a point-to-point link the connected network is the peer's (`peer 203.0.113.1/32`).
      const base = p.peer ?? p.address;
      const network = ipaddr.IPv4.networkAddressFromCIDR(`${base}/${p.prefixLength}`);
      return `${network.toString()}/${p.prefixLength}`;
    }
  }
}

/**
 * A desired nft rule as the kernel holds it (without the provider it belongs to); an NPTv6
 * mapping from or onto a delegated prefix takes the provider's first accepted prefix of the
 * expected length, and is left out while there is none (D155).
 */
function resolveNftRule(rule: NftRule, context: Context): KernelNftRule[] {
  if (rule.kind !== 'npt') return [toKernelNftRule(rule)];
  const side = (ref: NptPrefix): string | undefined =>
    typeof ref === 'string'
      ? ref
      : context.delegated.get(ref.delegated)?.find((prefix) => prefix.endsWith(`/${ref.length}`));
  const from = side(rule.from);
  const to = side(rule.to);
  if (from === undefined || to === undefined) return [];
  return [{ kind: 'npt', oif: rule.oif, from, to }];
}

/** A desired nft rule without references as the kernel holds it (without its provider). */
export function toKernelNftRule(rule: Exclude<NftRule, { kind: 'npt' }>): KernelNftRule {
  const { provider: _provider, ...rest } = rule;
  return rest;
}
