/**
 * DesiredState → a readable shell script of `ip` and `nft` commands, for review: what an
 * expert would have typed by hand. Symbolic values (a PPP link's current address, a DHCP
 * gateway) become shell variables read from the router at the top of the script.
 */
import { compareNftRules, renderNftTable, toKernelNftRule } from '#agent/core';
import type { AddressRef, DesiredRoute, DesiredRule, DesiredState, NetworkRef } from '#agent/model';

export function renderScript(state: DesiredState): string {
  const providers = new Map(state.providers.map((p) => [p.name, p]));
  const vars = new Map<string, string>();
  const variable = (provider: string, what: 'ADDR' | 'GW' | 'NET'): string => {
    const p = providers.get(provider);
    if (!p) throw new Error(`unknown provider ${provider}`);
    const name = `${provider.toUpperCase().replaceAll('-', '_')}_${what}`;
    if (!vars.has(name)) {
      const dev = p.interface;
      vars.set(
        name,
        what === 'ADDR'
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
    for (const [key, value] of sysctls) body.push(`sysctl -qw ${key}=${value}`);
  }

  const tables = [...new Set(state.routes.map((r) => r.table))];
  body.push('', '# Routing tables');
  for (const table of tables) {
    const owner = state.providers.find((pr) => pr.table === table);
    body.push(
      `# table ${table}: ${owner ? `provider ${owner.name} (${owner.interface})` : 'balanced default route'}`,
    );
    for (const route of state.routes.filter((r) => r.table === table))
      body.push(routeLine(route, p, net, addr));
  }

  body.push('', '# Policy rules, in priority order');
  for (const rule of [...state.rules].sort((a, b) => a.priority - b.priority)) {
    body.push(`ip rule add ${ruleSelectors(rule, net)} protocol ${p}  # ${rule.id}`);
  }

  if (state.nft.length > 0) {
    body.push(
      '',
      `# Netfilter: table inet uplink, replaced in one transaction (mark mask 0x${state.settings.markMask.toString(16)})`,
    );
    body.push("nft -f - <<'NFT'");
    // In the order the agent writes them (its canonical order: restores before saves).
    const nft = state.nft.map(toKernelNftRule).sort(compareNftRules);
    body.push(renderNftTable(nft, state.settings.markMask).trimEnd());
    body.push('NFT');
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
  const parts = ['ip route replace'];
  if (route.type !== 'unicast') parts.push(route.type);
  parts.push(net(route.dst));
  if (route.gateway) parts.push('via', addr(route.gateway));
  if (route.dev) parts.push('dev', route.dev);
  if (route.src) parts.push('src', addr(route.src));
  if (route.scope) parts.push('scope', route.scope);
  if (route.metric !== undefined) parts.push('metric', String(route.metric));
  parts.push('table', String(route.table), 'proto', String(protocol));
  for (const nh of route.nexthops ?? []) {
    parts.push(
      `\\\n    nexthop${nh.gateway ? ` via ${addr(nh.gateway)}` : ''} dev ${nh.dev} weight ${nh.weight}`,
    );
  }
  const note = route.requiresUp
    ? `  # ${route.id}; removed while ${route.requires} is down`
    : `  # ${route.id}`;
  return parts.join(' ') + note;
}

function ruleSelectors(rule: DesiredRule, net: (r: NetworkRef) => string): string {
  const parts = [`priority ${rule.priority}`];
  if (rule.from) parts.push('from', net(rule.from));
  if (rule.to) parts.push('to', net(rule.to));
  if (rule.iif) parts.push('iif', rule.iif);
  if (rule.oif) parts.push('oif', rule.oif);
  if (rule.fwmark !== undefined) {
    parts.push(
      'fwmark',
      `0x${rule.fwmark.toString(16)}${rule.fwmask !== undefined ? `/0x${rule.fwmask.toString(16)}` : ''}`,
    );
  }
  if (rule.uidrange) parts.push('uidrange', `${rule.uidrange.start}-${rule.uidrange.end}`);
  if (rule.ipproto) parts.push('ipproto', rule.ipproto);
  if (rule.sport) parts.push('sport', range(rule.sport));
  if (rule.dport) parts.push('dport', range(rule.dport));
  if (rule.tos !== undefined) parts.push('tos', `0x${rule.tos.toString(16)}`);
  if (rule.action === 'lookup')
    parts.push('lookup', rule.table === 254 ? 'main' : rule.table === 253 ? 'default' : String(rule.table));
  else parts.push(rule.action);
  if (rule.suppressPrefixlength !== undefined)
    parts.push('suppress_prefixlength', String(rule.suppressPrefixlength));
  return parts.join(' ');
}

function range(r: { start: number; end: number }): string {
  return r.start === r.end ? String(r.start) : `${r.start}-${r.end}`;
}
