/**
 * ValidSite → DesiredState. Pure and deterministic: the same site gives byte-identical
 * JSON (canonical key order, stable lists), and the content hash identifies it.
 * Kernel layout: docs/decisions.md D2–D4.
 */
import {
  DESIRED_STATE_VERSION,
  type DesiredRoute,
  type DesiredRule,
  type DesiredState,
  desiredStateHash,
  interfaceSysctlKey,
  MAIN_TABLE,
  type NftRule,
  type NptPrefix,
} from '#agent/model';
import type { ValidPolicy, ValidProvider, ValidSite } from '../spec/valid-site.js';

export function compileSite(site: ValidSite): DesiredState {
  const { settings } = site;
  const bands = settings.priorities;
  const rules: DesiredRule[] = [];
  const routes: DesiredRoute[] = [];
  const nft: NftRule[] = [];

  rules.push({
    id: 'main-specific-routes',
    priority: bands.suppressMain,
    action: 'lookup',
    table: 254,
    suppressPrefixlength: 0,
  });

  const providers = site.providers;
  // The IPv4 layout skips IPv6-only uplinks (D165); priorities keep the index among all.
  const hasIpv4 = (p: ValidProvider) => p.gateway.kind !== 'none';
  const providers4 = providers.filter(hasIpv4);
  const tracked = providers.filter((p) => p.track);
  tracked.forEach((p, i) => {
    if (!hasIpv4(p)) return;
    rules.push({
      id: `track:${p.name}`,
      priority: bands.track[0] + i,
      action: 'lookup',
      table: p.table,
      fwmark: p.mark,
      fwmask: settings.markMask,
      requires: p.name,
    });
  });
  providers.forEach((p, i) => {
    if (!hasIpv4(p)) return;
    // Replies from any address of the uplink — the agent makes one rule per address it finds
    // on the interface — or from a prefix the ISP routes to the router leave by that uplink.
    rules.push({
      id: `source:${p.name}`,
      priority: bands.source[0] + i,
      action: 'lookup',
      table: p.table,
      from: { kind: 'provider-host', provider: p.name },
      requires: p.name,
    });
    p.routed.forEach((cidr, r) => {
      rules.push({
        id: `source:${p.name}:routed#${r}`,
        priority: bands.source[0] + i,
        action: 'lookup',
        table: p.table,
        from: { kind: 'literal', cidr },
        requires: p.name,
      });
    });
  });

  for (const policy of site.policies) {
    if (policy.families === undefined || policy.families.includes('inet'))
      rules.push(...policyRules(policy, providers4, settings.balanceTable));
  }

  const balanced = providers4.filter((p) => p.balance !== null);
  if (balanced.length > 0) {
    rules.push({ id: 'balance', priority: bands.balance, action: 'lookup', table: settings.balanceTable });
    routes.push({
      id: 'balance:default',
      table: settings.balanceTable,
      dst: { kind: 'literal', cidr: '0.0.0.0/0' },
      type: 'unicast',
      nexthops: balanced.map((p) => ({
        provider: p.name,
        dev: p.interface,
        ...(p.gateway.kind === 'point-to-point'
          ? {}
          : { gateway: { kind: 'provider-gateway' as const, provider: p.name } }),
        weight: p.balance!,
      })),
    });
  }
  const fallbacks = providers
    .filter((p) => p.fallback !== null)
    .sort((a, b) => a.fallback! - b.fallback! || a.name.localeCompare(b.name));
  fallbacks.forEach((p, i) => {
    if (!hasIpv4(p)) return;
    rules.push({
      id: `fallback:${p.name}`,
      priority: bands.fallback[0] + i,
      action: 'lookup',
      table: p.table,
      requires: p.name,
    });
  });

  for (const p of providers4) {
    routes.push({
      id: `provider:${p.name}:default`,
      table: p.table,
      dst: { kind: 'literal', cidr: '0.0.0.0/0' },
      type: 'unicast',
      dev: p.interface,
      ...(p.gateway.kind === 'point-to-point'
        ? { scope: 'link' as const }
        : { gateway: { kind: 'provider-gateway' as const, provider: p.name } }),
      requires: p.name,
      requiresUp: true,
    });
  }

  const dual = providers.filter((p) => p.ipv6 !== undefined);
  if (dual.length > 0) compileIpv6(site, dual, rules, routes);

  const tracked6 = tracked.filter((p) => p.ipv6 !== undefined);
  const tracked4 = tracked.filter(hasIpv4);
  for (const p of tracked4) {
    nft.push({ kind: 'track-save', provider: p.name, iif: p.interface, mark: p.mark });
  }
  for (const p of tracked6) {
    nft.push({ kind: 'track-save', provider: p.name, iif: p.interface, mark: p.mark, family: 'ipv6' });
  }
  for (const chain of ['prerouting', 'output'] as const) {
    for (const p of tracked4) nft.push({ kind: 'track-restore', chain, provider: p.name, mark: p.mark });
    for (const p of tracked6)
      nft.push({ kind: 'track-restore', chain, provider: p.name, mark: p.mark, family: 'ipv6' });
  }
  for (const p of providers) {
    if (p.snat.kind === 'masquerade') nft.push({ kind: 'masquerade', provider: p.name, oif: p.interface });
    else if (p.snat.kind === 'address')
      nft.push({ kind: 'snat', provider: p.name, oif: p.interface, address: p.snat.address });
  }
  for (const p of dual) {
    for (const map of nptMappings(p, dual))
      nft.push({ kind: 'npt', provider: p.name, oif: p.interface, ...map });
  }

  const sysctls: Record<string, string> = {};
  if (site.lan.length > 0) sysctls['net.ipv4.ip_forward'] = '1';
  for (const p of providers4) {
    sysctls[interfaceSysctlKey(p.interface, 'rp_filter')] = RP_FILTER[p.rpFilter];
  }
  if (dual.length > 0 && site.lan.length > 0) sysctls['net.ipv6.conf.all.forwarding'] = '1';
  for (const p of dual) {
    // A forwarding router ignores router advertisements unless accept_ra is 2 (D180).
    if (p.ipv6!.address === null || p.ipv6!.gateway.kind === 'detect')
      sysctls[interfaceSysctlKey(p.interface, 'accept_ra', 'ipv6')] = '2';
  }
  Object.assign(sysctls, site.sysctls);

  const body: Omit<DesiredState, 'hash'> = {
    version: DESIRED_STATE_VERSION,
    site: site.name,
    settings: {
      protocol: settings.protocol,
      markMask: settings.markMask,
      balanceTable: providers.some((p) => p.balance !== null) ? settings.balanceTable : null,
      adoptTables: [...settings.adoptTables].sort((a, b) => a - b),
      drift: settings.drift,
    },
    providers: providers.map((p) => ({
      name: p.name,
      interface: p.interface,
      gateway: p.gateway,
      table: p.table,
      mark: p.mark,
      balance: p.balance,
      fallback: p.fallback,
      track: p.track,
      snat: p.snat,
      health: p.health,
      ...(p.ipv6 === undefined
        ? {}
        : {
            ipv6: {
              gateway: p.ipv6.gateway,
              prefixes: [...p.ipv6.prefixes],
              npt: nptMappings(p, dual),
              healthTargets: [...p.ipv6.healthTargets],
              ...(p.ipv6.delegated === null ? {} : { delegated: { length: p.ipv6.delegated.length } }),
            },
          }),
    })),
    rules,
    routes,
    nft,
    sysctls: sortKeys(sysctls),
  };
  return { ...body, hash: desiredStateHash(body) };
}

const RP_FILTER = { off: '0', strict: '1', loose: '2' } as const;

/**
 * The IPv6 half of the layout (D180): the same bands in the `ip -6 rule` list — suppress
 * main, track, source (the uplink's addresses and its routed prefixes), policies, balance,
 * fallback — and an IPv6 default route in each provider's table beside the IPv4 one.
 */
function compileIpv6(
  site: ValidSite,
  dual: readonly ValidProvider[],
  rules: DesiredRule[],
  routes: DesiredRoute[],
): void {
  const { settings } = site;
  const bands = settings.priorities;
  const family = 'inet6' as const;
  rules.push({
    id: 'main-specific-routes:ipv6',
    family,
    priority: bands.suppressMain,
    action: 'lookup',
    table: 254,
    suppressPrefixlength: 0,
  });
  // Priorities follow the provider's index among all providers, as the IPv4 rules do.
  const index = (p: ValidProvider) => site.providers.indexOf(p);
  const tracked = site.providers.filter((p) => p.track);
  for (const p of dual) {
    if (!p.track) continue;
    rules.push({
      id: `track:${p.name}:ipv6`,
      family,
      priority: bands.track[0] + tracked.indexOf(p),
      action: 'lookup',
      table: p.table,
      fwmark: p.mark,
      fwmask: settings.markMask,
      requires: p.name,
    });
  }
  for (const p of dual) {
    rules.push({
      id: `source:${p.name}:ipv6`,
      family,
      priority: bands.source[0] + index(p),
      action: 'lookup',
      table: p.table,
      from: { kind: 'provider-host', provider: p.name },
      requires: p.name,
    });
    p.ipv6!.prefixes.forEach((cidr, r) => {
      rules.push({
        id: `source:${p.name}:prefix#${r}`,
        family,
        priority: bands.source[0] + index(p),
        action: 'lookup',
        table: p.table,
        from: { kind: 'literal', cidr },
        requires: p.name,
      });
    });
    // Delegated prefixes (D155): one rule per prefix the router's DHCPv6 client reported.
    if (p.ipv6!.delegated !== null)
      rules.push({
        id: `source:${p.name}:delegated`,
        family,
        priority: bands.source[0] + index(p),
        action: 'lookup',
        table: p.table,
        from: { kind: 'provider-delegated', provider: p.name },
        requires: p.name,
      });
    // Delegated prefixes (D155): one rule per prefix the router's DHCPv6 client reported.
    if (p.ipv6!.delegated !== null)
      rules.push({
        id: `source:${p.name}:delegated`,
        family,
        priority: bands.source[0] + index(p),
        action: 'lookup',
        table: p.table,
        from: { kind: 'provider-delegated', provider: p.name },
        requires: p.name,
      });
  }
  for (const policy of site.policies) {
    if (policy.families?.includes('inet6'))
      rules.push(...policyRules(policy, dual, settings.balanceTable, family));
  }
  const balanced = dual.filter((p) => p.balance !== null);
  if (balanced.length > 0) {
    rules.push({
      id: 'balance:ipv6',
      family,
      priority: bands.balance,
      action: 'lookup',
      table: settings.balanceTable,
    });
    routes.push({
      id: 'balance:default:ipv6',
      family,
      table: settings.balanceTable,
      dst: { kind: 'literal', cidr: '::/0' },
      type: 'unicast',
      nexthops: balanced.map((p) => ({
        provider: p.name,
        dev: p.interface,
        gateway: { kind: 'provider-gateway' as const, provider: p.name },
        weight: p.balance!,
      })),
    });
  }
  const fallbacks = site.providers
    .filter((p) => p.fallback !== null)
    .sort((a, b) => a.fallback! - b.fallback! || a.name.localeCompare(b.name));
  fallbacks.forEach((p, i) => {
    if (p.ipv6 === undefined) return;
    rules.push({
      id: `fallback:${p.name}:ipv6`,
      family,
      priority: bands.fallback[0] + i,
      action: 'lookup',
      table: p.table,
      requires: p.name,
    });
  });
  for (const p of dual) {
    routes.push({
      id: `provider:${p.name}:default:ipv6`,
      family,
      table: p.table,
      dst: { kind: 'literal', cidr: '::/0' },
      type: 'unicast',
      dev: p.interface,
      gateway: { kind: 'provider-gateway', provider: p.name },
      requires: p.name,
      requiresUp: true,
    });
  }
}

/**
 * NPTv6 onto `p` (D181): each other provider's prefix, mapped onto `p`'s first prefix of the
 * same length (validation makes sure there is one), so a LAN host numbered from a dead ISP's
 * prefix keeps working through this one.
 */
export function nptMappings(
  p: ValidProvider,
  dual: readonly ValidProvider[],
): { from: NptPrefix; to: NptPrefix }[] {
  if (p.ipv6 === undefined || !p.ipv6.npt) return [];
  // A delegated prefix (D155) is known by its length here; the agent fills in the prefix.
  const slots = (q: ValidProvider): NptPrefix[] => {
    const delegated = q.ipv6!.delegated;
    return [
      ...q.ipv6!.prefixes,
      ...(delegated === null || delegated.length === null
        ? []
        : [{ delegated: q.name, length: delegated.length }]),
    ];
  };
  const own = slots(p);
  const out: { from: NptPrefix; to: NptPrefix }[] = [];
  for (const other of dual) {
    if (other === p || other.ipv6 === undefined) continue;
    for (const from of slots(other)) {
      const to = own.find((prefix) => slotLength(prefix) === slotLength(from));
      if (to !== undefined) out.push({ from, to });
    }
  }
  return out;
}

function slotLength(slot: NptPrefix): number {
  return typeof slot === 'string' ? prefixLength(slot) : slot.length;
}

function prefixLength(cidr: string): number {
  return Number(cidr.slice(cidr.indexOf('/') + 1));
}

/** One policy → consecutive rules: per provider in `via` order, every selector combination. */
function policyRules(
  policy: ValidPolicy,
  providers: readonly ValidProvider[],
  balanceTable: number,
  family?: 'inet6',
): DesiredRule[] {
  // `main` and `balance` look a table up like a provider does, without a provider to require.
  const table =
    policy.action === 'main' ? MAIN_TABLE : policy.action === 'balance' ? balanceTable : undefined;
  const axis = <T>(xs: readonly T[]): (T | undefined)[] => (xs.length > 0 ? [...xs] : [undefined]);
  const targets: (ValidProvider | undefined)[] =
    policy.action === 'route'
      ? policy.via.flatMap((name) => providers.filter((p) => p.name === name))
      : [undefined];
  // Each family's rules take its own addresses (a rule has one family).
  const v6 = family === 'inet6';
  const ofFamily = (cidrs: readonly string[]) => cidrs.filter((cidr) => cidr.includes(':') === v6);
  const out: DesiredRule[] = [];
  let priority = policy.priority;
  for (const provider of targets) {
    for (const from of axis(ofFamily(policy.from))) {
      for (const to of axis(ofFamily(policy.to))) {
        for (const iif of axis(policy.iif)) {
          for (const dport of axis(policy.dport)) {
            for (const sport of axis(policy.sport)) {
              // Fields set one by one in the order the JSON shows them (the spread form
              // made and copied a small object per optional field, 310,000 rules a fleet).
              const rule: Record<string, unknown> = {
                id: `policy:${policy.name}${provider ? `:${provider.name}` : ''}${v6 ? ':ipv6' : ''}#${out.length}`,
              };
              if (v6) rule.family = family;
              rule.priority = priority++;
              rule.action =
                policy.action === 'route' || table !== undefined
                  ? 'lookup'
                  : (policy.action as 'blackhole' | 'unreachable' | 'prohibit');
              if (provider) {
                rule.table = provider.table;
                rule.requires = provider.name;
              }
              if (table !== undefined) rule.table = table;
              if (from) rule.from = { kind: 'literal' as const, cidr: from };
              if (to) rule.to = { kind: 'literal' as const, cidr: to };
              if (iif) rule.iif = iif;
              if (policy.mark) {
                rule.fwmark = policy.mark.value;
                rule.fwmask = policy.mark.mask;
              }
              if (policy.uid) rule.uidrange = policy.uid;
              if (policy.proto) rule.ipproto = policy.proto === 'icmpv6' ? 'ipv6-icmp' : policy.proto;
              if (sport) rule.sport = sport;
              if (dport) rule.dport = dport;
              if (policy.tos !== null) rule.tos = policy.tos;
              out.push(rule as unknown as DesiredRule);
            }
          }
        }
      }
    }
  }
  return out;
}

function sortKeys<T extends Record<string, unknown>>(obj: T): T {
  return Object.fromEntries(Object.entries(obj).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) as T;
}
