/**
 * One-line forms of desired objects for `uplink plan`, in the words `ip rule` / `ip route`
 * and nft use (agent/src/core/describe-object.ts does the wording). Values only the router
 * knows stay symbolic: `address(isp1)` is isp1's address at run time, `network(isp1)` its
 * connected subnet, `gateway(isp1)` a detected gateway or PPP peer. A static gateway is
 * written as its address, as `uplink compile --format script` does.
 */
import { describeNftRule, describeRoute, describeRouteKey, describeRule } from '#agent/core';
import type {
  AddressRef,
  DesiredRoute,
  DesiredRule,
  DesiredState,
  KernelNftRule,
  KernelRoute,
  KernelRule,
  NetworkRef,
  NftRule,
  Provider,
} from '#agent/model';
import { nptPrefixText } from '#agent/model';

type Context = Pick<DesiredState, 'providers' | 'settings'>;

/** IPv6 objects (D180) name a provider's IPv6 half: `address6(isp1)`, `gateway6(isp1)`. */
function network(ref: NetworkRef, family?: 'inet6'): string {
  switch (ref.kind) {
    case 'literal':
      return ref.cidr;
    case 'provider-host':
      return family === 'inet6' ? `address6(${ref.provider})` : `address(${ref.provider})`;
    case 'provider-network':
      return `network(${ref.provider})`;
    case 'provider-delegated':
      return `delegated(${ref.provider})`;
  }
}

function address(ref: AddressRef, context: Context, family?: 'inet6'): string {
  if (family === 'inet6' && ref.kind !== 'literal') {
    const gateway = context.providers.find((p) => p.name === ref.provider)?.ipv6?.gateway;
    if (ref.kind === 'provider-address') return `address6(${ref.provider})`;
    return gateway?.kind === 'static' ? gateway.address : `gateway6(${ref.provider})`;
  }
  switch (ref.kind) {
    case 'literal':
      return ref.address;
    case 'provider-address':
      return `address(${ref.provider})`;
    case 'provider-gateway': {
      const gateway = context.providers.find((p) => p.name === ref.provider)?.gateway;
      return gateway?.kind === 'static' ? gateway.address : `gateway(${ref.provider})`;
    }
  }
}

/** e.g. `priority 2000 from address(isp1) lookup 100 proto 252`. */
export function describeDesiredRule(rule: DesiredRule, context: Context): string {
  // describeRule only prints these fields, so symbolic addresses can stand in for CIDRs.
  const f = rule.family;
  const lowered = {
    priority: rule.priority,
    action: rule.action,
    protocol: context.settings.protocol,
    ...(f === undefined ? {} : { family: f }),
    ...(rule.table === undefined ? {} : { table: rule.table }),
    ...(rule.from === undefined ? {} : { from: network(rule.from, f) }),
    ...(rule.to === undefined ? {} : { to: network(rule.to, f) }),
    ...(rule.iif === undefined ? {} : { iif: rule.iif }),
    ...(rule.oif === undefined ? {} : { oif: rule.oif }),
    ...(rule.fwmark === undefined ? {} : { fwmark: rule.fwmark }),
    ...(rule.fwmask === undefined ? {} : { fwmask: rule.fwmask }),
    ...(rule.uidrange === undefined ? {} : { uidrange: rule.uidrange }),
    ...(rule.ipproto === undefined ? {} : { ipproto: rule.ipproto }),
    ...(rule.sport === undefined ? {} : { sport: rule.sport }),
    ...(rule.dport === undefined ? {} : { dport: rule.dport }),
    ...(rule.tos === undefined ? {} : { tos: rule.tos }),
    ...(rule.suppressPrefixlength === undefined ? {} : { suppressPrefixlength: rule.suppressPrefixlength }),
  } satisfies KernelRule;
  return describeRule(lowered);
}

/** The route's identity part: `table 100 default`. */
export function describeDesiredRouteKey(route: DesiredRoute): string {
  return describeRouteKey({
    table: route.table,
    dst: network(route.dst, route.family),
    metric: route.metric,
    ...(route.family === undefined ? {} : { family: route.family }),
  });
}

/** e.g. `default via 198.51.100.1 dev wan1 proto 252 (removed while isp1 is down)`. */
export function describeDesiredRoute(route: DesiredRoute, context: Context): string {
  const f = route.family;
  const lowered = {
    table: route.table,
    dst: network(route.dst, f),
    type: route.type,
    protocol: context.settings.protocol,
    ...(route.dev === undefined ? {} : { dev: route.dev }),
    ...(route.gateway === undefined ? {} : { gateway: address(route.gateway, context, f) }),
    ...(route.src === undefined ? {} : { src: address(route.src, context, f) }),
    ...(route.scope === undefined ? {} : { scope: route.scope }),
    ...(route.metric === undefined ? {} : { metric: route.metric }),
    ...(route.nexthops === undefined
      ? {}
      : {
          nexthops: route.nexthops.map((n) => ({
            dev: n.dev,
            weight: n.weight,
            ...(n.gateway === undefined ? {} : { gateway: address(n.gateway, context, f) }),
          })),
        }),
  } satisfies KernelRoute;
  const when =
    route.requires === undefined
      ? ''
      : route.requiresUp === true
        ? ` (removed while ${route.requires} is down)`
        : ` (only while ${route.requires} is available)`;
  return `${describeRoute(lowered)}${when}`;
}

/** e.g. `postrouting: oif wan1 masquerade`. */
export function describeDesiredNft(rule: NftRule): string {
  const { provider: _provider, ...kernel } = rule;
  // describeNftRule only prints an NPTv6 rule's prefixes: a delegated one stays symbolic.
  if (kernel.kind === 'npt')
    return describeNftRule({ ...kernel, from: nptPrefixText(kernel.from), to: nptPrefixText(kernel.to) });
  return describeNftRule(kernel as KernelNftRule);
}

/** A provider as the fields a reviewer cares about: interface, gateway, table, mark, role, SNAT. */
export function providerFields(provider: Provider): Record<string, string> {
  const h = provider.health;
  return {
    interface: provider.interface,
    gateway:
      provider.gateway.kind === 'static'
        ? provider.gateway.address
        : provider.gateway.kind === 'detect'
          ? 'detect'
          : provider.gateway.kind === 'none'
            ? 'none (IPv6-only)'
            : 'point-to-point',
    table: String(provider.table),
    mark: hex(provider.mark),
    balance: provider.balance === null ? 'no' : String(provider.balance),
    fallback: provider.fallback === null ? 'no' : String(provider.fallback),
    track: provider.track ? 'yes' : 'no',
    snat:
      provider.snat.kind === 'address'
        ? provider.snat.address
        : provider.snat.kind === 'masquerade'
          ? 'masquerade'
          : 'none',
    ...(provider.ipv6 === undefined
      ? {}
      : {
          ipv6: `gateway ${provider.ipv6.gateway.kind === 'static' ? provider.ipv6.gateway.address : 'detect'}, prefixes ${[...provider.ipv6.prefixes, ...(provider.ipv6.delegated === undefined ? [] : [`delegated${provider.ipv6.delegated.length === null ? '' : `/${provider.ipv6.delegated.length}`}`])].join(',') || 'none'}${provider.ipv6.npt.length > 0 ? `, NPTv6 from ${provider.ipv6.npt.map((m) => nptPrefixText(m.from)).join(',')}` : ''}`,
        }),
    health: h.enabled
      ? `${h.method}${h.tcpPort === undefined ? '' : `:${h.tcpPort}`} ${h.targets.length === 0 ? 'gateway' : h.targets.join(',')} every ${h.intervalMs}ms timeout ${h.timeoutMs}ms down after ${h.failAfter} up after ${h.recoverAfter} min ${h.minTargetsUp}`
      : 'off',
  };
}

export function settingsFields(settings: DesiredState['settings']): Record<string, string> {
  return {
    protocol: String(settings.protocol),
    markMask: hex(settings.markMask),
    balanceTable: settings.balanceTable === null ? 'none' : String(settings.balanceTable),
    adoptTables: settings.adoptTables.length === 0 ? 'none' : settings.adoptTables.join(','),
    drift: settings.drift,
  };
}

export function hex(value: number): string {
  return `0x${value.toString(16)}`;
}
