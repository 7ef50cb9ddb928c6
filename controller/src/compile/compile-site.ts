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
  const tracked = providers.filter((p) => p.track);
  tracked.forEach((p, i) => {
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

  for (const policy of site.policies) rules.push(...policyRules(policy, providers, settings.balanceTable));

  const balanced = providers.filter((p) => p.balance !== null);
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
    rules.push({
      id: `fallback:${p.name}`,
      priority: bands.fallback[0] + i,
      action: 'lookup',
      table: p.table,
      requires: p.name,
    });
  });

  for (const p of providers) {
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

  for (const p of tracked) {
    nft.push({ kind: 'track-save', provider: p.name, iif: p.interface, mark: p.mark });
  }
  for (const chain of ['prerouting', 'output'] as const) {
    for (const p of tracked) nft.push({ kind: 'track-restore', chain, provider: p.name, mark: p.mark });
  }
  for (const p of providers) {
    if (p.snat.kind === 'masquerade') nft.push({ kind: 'masquerade', provider: p.name, oif: p.interface });
    else if (p.snat.kind === 'address')
      nft.push({ kind: 'snat', provider: p.name, oif: p.interface, address: p.snat.address });
  }

  const sysctls: Record<string, string> = {};
  if (site.lan.length > 0) sysctls['net.ipv4.ip_forward'] = '1';
  for (const p of providers) {
    sysctls[interfaceSysctlKey(p.interface, 'rp_filter')] = RP_FILTER[p.rpFilter];
  }
  Object.assign(sysctls, site.sysctls);

  const body: Omit<DesiredState, 'hash'> = {
    version: DESIRED_STATE_VERSION,
    site: site.name,
    settings: {
      protocol: settings.protocol,
      markMask: settings.markMask,
      balanceTable: balanced.length > 0 ? settings.balanceTable : null,
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
    })),
    rules,
    routes,
    nft,
    sysctls: sortKeys(sysctls),
  };
  return { ...body, hash: desiredStateHash(body) };
}

const RP_FILTER = { off: '0', strict: '1', loose: '2' } as const;

/** One policy → consecutive rules: per provider in `via` order, every selector combination. */
function policyRules(
  policy: ValidPolicy,
  providers: readonly ValidProvider[],
  balanceTable: number,
): DesiredRule[] {
  // `main` and `balance` look a table up like a provider does, without a provider to require.
  const table =
    policy.action === 'main' ? MAIN_TABLE : policy.action === 'balance' ? balanceTable : undefined;
  const axis = <T>(xs: readonly T[]): (T | undefined)[] => (xs.length > 0 ? [...xs] : [undefined]);
  const targets: (ValidProvider | undefined)[] =
    policy.action === 'route'
      ? policy.via.map((name) => providers.find((p) => p.name === name)!)
      : [undefined];
  const out: DesiredRule[] = [];
  let priority = policy.priority;
  for (const provider of targets) {
    for (const from of axis(policy.from)) {
      for (const to of axis(policy.to)) {
        for (const iif of axis(policy.iif)) {
          for (const dport of axis(policy.dport)) {
            for (const sport of axis(policy.sport)) {
              const rule: DesiredRule = {
                id: `policy:${policy.name}${provider ? `:${provider.name}` : ''}#${out.length}`,
                priority: priority++,
                action:
                  policy.action === 'route' || table !== undefined
                    ? 'lookup'
                    : (policy.action as 'blackhole' | 'unreachable' | 'prohibit'),
                ...(provider ? { table: provider.table, requires: provider.name } : {}),
                ...(table !== undefined ? { table } : {}),
                ...(from ? { from: { kind: 'literal' as const, cidr: from } } : {}),
                ...(to ? { to: { kind: 'literal' as const, cidr: to } } : {}),
                ...(iif ? { iif } : {}),
                ...(policy.mark ? { fwmark: policy.mark.value, fwmask: policy.mark.mask } : {}),
                ...(policy.uid ? { uidrange: policy.uid } : {}),
                ...(policy.proto ? { ipproto: policy.proto } : {}),
                ...(sport ? { sport } : {}),
                ...(dport ? { dport } : {}),
                ...(policy.tos !== null ? { tos: policy.tos } : {}),
              };
              out.push(rule);
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
