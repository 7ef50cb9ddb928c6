/**
 * DesiredState → a readable shell script of `ip` and `nft` commands, for review: what an
 * expert would have typed by hand. Symbolic values (a PPP link's current address, a DHCP
 * gateway) become shell variables read from the router at the top of the script.
 */
import {
  ADD_ORDER,
  compareNftRules,
  describeTable,
  renderNftTable,
  routeWords,
  ruleWords,
  toKernelNftRule,
} from '#agent/core';
import {
  type AddressRef,
  type DesiredRoute,
  type DesiredRule,
  type DesiredState,
  type NetworkRef,
  nptPrefixText,
  sysctlToolKey,
} from '#agent/model';

export function renderScript(state: DesiredState): string {
  const providers = new Map(state.providers.map((p) => [p.name, p]));
  const vars = new Map<string, string>();
  const variable = (provider: string, what: 'ADDR' | 'GW' | 'NET' | 'ADDR6' | 'GW6' | 'PD6'): string => {
    const p = providers.get(provider);
    if (!p) throw new Error(`unknown provider ${provider}`);
    const name = `${provider.toUpperCase().replaceAll('-', '_')}_${what}`;
    if (!vars.has(name)) {
      const dev = p.interface;
      vars.set(
        name,
        what === 'PD6'
          ? `$(uplink-agent delegated --interface ${dev} | head -n 1)  # the prefix delegated over ${dev} (DHCPv6-PD)`
          : what === 'ADDR6'
            ? `$(ip -6 -o addr show dev ${dev} scope global -tentative | awk '{split($4, a, "/"); print a[1]; exit}')  # current IPv6 address of ${dev}`
            : what === 'GW6'
              ? `$(ip -6 route show default dev ${dev} | awk '{print $3; exit}')  # IPv6 gateway: detect (the RA's)`
              : what === 'ADDR'
                ? `$(ip -4 -o addr show dev ${dev} | awk '{split($4, a, "/"); print a[1]; exit}')  # current address of ${dev}`
                : what === 'NET'
                  ? `$(ip -4 -o route show dev ${dev} scope link proto kernel | awk '{print $1; exit}')  # subnet of ${dev}`
                  : p.gateway.kind === 'static'
                    ? `${p.gateway.address}`
                    : p.gateway.kind === 'detect'
                      ? `$(ip -4 route show default dev ${dev} | awk '{print $3; exit}')  # gateway: detect (DHCP)`
                      : `$(ip -4 -o addr show dev ${dev} | awk '{for (i = 1; i < NF; i++) if ($i == "peer") {split($(i+1), a, "/"); print a[1]; exit}}')  # PPP peer of ${dev}`,
      );
    }
    return `"$${name}"`;
  };
  // IPv6 objects (D180) name the IPv6 half of a provider: its IPv6 address and gateway.
  const addr6 = (ref: AddressRef): string => {
    if (ref.kind === 'literal') return ref.address;
    const gateway = providers.get(ref.provider)?.ipv6?.gateway;
    if (ref.kind === 'provider-gateway')
      return gateway?.kind === 'static' ? gateway.address : variable(ref.provider, 'GW6');
    return variable(ref.provider, 'ADDR6');
  };
  const net6 = (ref: NetworkRef): string =>
    ref.kind === 'literal'
      ? ref.cidr === '::/0'
        ? 'default'
        : ref.cidr.replace(/\/128$/, '')
      : ref.kind === 'provider-delegated'
        ? variable(ref.provider, 'PD6')
        : variable(ref.provider, 'ADDR6');
  const addr = (ref: AddressRef): string => {
    if (ref.kind === 'literal') return ref.address;
    if (ref.kind === 'provider-gateway') {
      const p = providers.get(ref.provider);
      if (p?.gateway.kind === 'static') return p.gateway.address;
      return variable(ref.provider, 'GW');
    }
    return variable(ref.provider, 'ADDR');
  };
  const net = (ref: NetworkRef): string =>
    ref.kind === 'literal'
      ? ref.cidr === '0.0.0.0/0'
        ? 'default'
        : ref.cidr.replace(/\/32$/, '')
      : ref.kind === 'provider-host'
        ? variable(ref.provider, 'ADDR')
        : variable(ref.provider, 'NET');
  const p = state.settings.protocol;

  const body: string[] = [];
  const sysctls = Object.entries(state.sysctls);
  if (sysctls.length > 0) {
    body.push('', '# Kernel settings');
    // sysctl(8) spells a dot inside an interface name as '/' (net.ipv4.conf.enp1s0/100.rp_filter).
    for (const [key, value] of sysctls) body.push(`sysctl -qw ${sysctlToolKey(key)}=${value}`);
  }

  const tables = [...new Set(state.routes.map((r) => r.table))];
  body.push('', '# Routing tables');
  for (const table of tables) {
    const owner = state.providers.find((pr) => pr.table === table);
    body.push(
      `# table ${table}: ${owner ? `provider ${owner.name} (${owner.interface})` : 'balanced default route'}`,
    );
    for (const route of state.routes.filter((r) => r.table === table)) {
      body.push(
        route.family === 'inet6'
          ? `ip -6 ${routeLine(route, p, net6, addr6).slice(3)}`
          : routeLine(route, p, net, addr),
      );
    }
  }

  body.push('', '# Policy rules, in priority order');
  for (const rule of [...state.rules].sort((a, b) => a.priority - b.priority)) {
    body.push(
      rule.family === 'inet6'
        ? `ip -6 rule add ${ruleSelectors(rule, net6)} protocol ${p}  # ${rule.id}`
        : `ip rule add ${ruleSelectors(rule, net)} protocol ${p}  # ${rule.id}`,
    );
  }

  if (state.nft.length > 0) {
    body.push(
      '',
      `# Netfilter: table inet uplink, replaced in one transaction (mark mask 0x${state.settings.markMask.toString(16)})`,
    );
    body.push("nft -f - <<'NFT'");
    // In the order the agent writes them (its canonical order: restores before saves).
    const nft = state.nft.flatMap((rule) =>
      rule.kind !== 'npt'
        ? [toKernelNftRule(rule)]
        : typeof rule.from === 'string' && typeof rule.to === 'string'
          ? [{ kind: rule.kind, oif: rule.oif, from: rule.from, to: rule.to }]
          : [],
    );
    body.push(renderNftTable(nft.sort(compareNftRules), state.settings.markMask).trimEnd());
    body.push('NFT');
    for (const rule of state.nft) {
      if (rule.kind !== 'npt' || (typeof rule.from === 'string' && typeof rule.to === 'string')) continue;
      body.push(
        `# and, once the prefix is delegated (the agent adds it): postrouting oif ${rule.oif} NPTv6 ${nptPrefixText(rule.from)} → ${nptPrefixText(rule.to)}`,
      );
    }
  }

  const head = [
    '#!/bin/sh',
    `# Uplink desired state for site ${state.site}`,
    `# content hash ${state.hash}`,
    '# A review copy: on a managed router the agent applies this itself (one ip -batch,',
    '# one nft transaction, ownership checks, commit-confirmed). Do not run it there.',
    'set -e',
  ];
  if (vars.size > 0) {
    head.push('', '# Values only the router knows, read when the script runs');
    for (const [name, value] of vars) head.push(`${name}=${value}`);
  }
  return `${[...head, ...body].join('\n')}\n`;
}

function routeLine(
  input: DesiredRoute,
  protocol: number,
  net: (r: NetworkRef) => string,
  addr: (r: AddressRef) => string,
): string {
  // A one-way "multipath" route is a plain route to the kernel; show it as one.
  const only = input.nexthops?.length === 1 ? input.nexthops[0]! : undefined;
  const route: DesiredRoute = only
    ? { ...input, nexthops: undefined, dev: only.dev, ...(only.gateway ? { gateway: only.gateway } : {}) }
    : input;
  const words = routeWords<NetworkRef | AddressRef>(
    { ...route, protocol },
    {
      order: ['gateway', 'dev', 'src', 'scope', 'metric', 'table', 'protocol', 'nexthops'],
      dst: (ref) => net(ref as NetworkRef),
      address: (ref) => addr(ref as AddressRef),
      table: String,
      protocolWord: 'proto',
      omitGlobalScope: false,
      omitZeroMetric: false,
      nexthop: (hop) => `\\\n    ${hop.join(' ')}`,
    },
  );
  const note = route.requiresUp
    ? `  # ${route.id}; removed while ${route.requires} is down`
    : `  # ${route.id}`;
  return `ip route replace ${words.join(' ')}${note}`;
}

function ruleSelectors(rule: DesiredRule, net: (r: NetworkRef) => string): string {
  return ruleWords(rule, {
    order: ADD_ORDER,
    priority: 'keyword',
    fromAll: false,
    tos: 'hex',
    zeroTos: true,
    fwmark: 'given',
    protocol: 'none',
    table: (table) => describeTable(table ?? 254),
    address: net,
  }).join(' ');
}
