/**
 * How a site of a fleet repository becomes a lab topology: one uplink per provider, named and
 * addressed as the spec says. What only a real ISP would decide — the address of a DHCP
 * uplink (`gateway: detect`) or of a PPP/tunnel link (`point-to-point`) — is made up from
 * 10.100.<n>.0/30 and 10.101.<n>.0/30, which exist only inside the lab's namespaces.
 */
import type { ValidSite } from '../../controller/src/spec/valid-site.js';
import type { SiteLanOptions, SiteUplinkOptions } from './site-topology.js';

export interface SiteLabPlan {
  readonly uplinks: readonly SiteUplinkOptions[];
  readonly lan?: SiteLanOptions;
  readonly moreLans?: readonly SiteLanOptions[];
  /** IPv6 hosts on the internet's lo (a web host and the IPv6 probe targets), for dual-stack sites. */
  readonly internetHosts6?: readonly string[];
  /** Addresses on the internet namespace's lo: the usual web hosts plus every probe target. */
  readonly internetHosts: readonly string[];
  /** TCP probe targets that need a listener: `address:port`. */
  readonly tcpTargets: readonly { readonly address: string; readonly port: number }[];
}

const DEFAULT_INTERNET_HOSTS = ['203.0.113.10', '203.0.113.80'];

export function planSiteLab(site: ValidSite): SiteLabPlan {
  let invented = 0;
  const uplinks: SiteUplinkOptions[] = site.providers.map((p, i) => withIpv6(p, i + 1, uplinkFor(p)));
  function uplinkFor(p: ValidSite['providers'][number]): SiteUplinkOptions {
    const n = ++invented;
    if (p.gateway.kind === 'point-to-point') {
      return {
        name: p.interface,
        kind: 'point-to-point',
        address: p.address?.address ?? `10.101.${n}.2`,
        gateway: `10.101.${n}.1`,
      };
    }
    if (p.gateway.kind === 'static') {
      const address = p.address ?? { address: hostNear(p.gateway.address), prefixLength: 30 };
      return {
        name: p.interface,
        kind: 'subnet',
        address: `${address.address}/${address.prefixLength}`,
        gateway: p.gateway.address,
      };
    }
    // `detect`: a DHCP-style default route in main tells the agent the gateway.
    const address = p.address ?? { address: `10.100.${n}.2`, prefixLength: 30 };
    return {
      name: p.interface,
      kind: 'dhcp',
      address: `${address.address}/${address.prefixLength}`,
      gateway: firstHost(address.address, address.prefixLength),
      dhcpMetric: 100 + n,
    };
  }
  // One lab LAN per LAN interface of the spec; `br-*` names (without a VLAN dot) are bridges.
  const lans: SiteLanOptions[] = site.lan
    .filter((l) => l.subnets.length > 0)
    .map((l) => ({
      routerIf: l.interface,
      bridge: /^br-[^.]+$/.test(l.interface),
      // IPv4 subnets first: the first one is the LAN host's default route (IPv6 ones get `::1`/`::10`).
      subnets: [...l.subnets]
        .sort((a, b) => Number(a.includes(':')) - Number(b.includes(':')))
        .map((cidr) => {
          const [ip, prefix] = cidr.split('/') as [string, string];
          if (ip.includes(':')) return { router: `${ip}1/${prefix}`, host: `${ip}10/${prefix}` };
          const network = (toInt(ip) & maskOf(Number(prefix))) >>> 0;
          // The host is .10, or the last host of a smaller subnet (a /29 DMZ: .6).
          const host = Math.min(10, 2 ** (32 - Number(prefix)) - 2);
          return { router: `${toIp(network + 1)}/${prefix}`, host: `${toIp(network + host)}/${prefix}` };
        }),
    }));
  const [lan, ...moreLans] = lans;
  const targets = site.providers.flatMap((p) => (p.health.enabled ? p.health.targets : []));
  const targets6 = site.providers.flatMap((p) => (p.health.enabled ? (p.ipv6?.healthTargets ?? []) : []));
  const internetHosts = [...new Set([...DEFAULT_INTERNET_HOSTS, ...targets])];
  const tcpTargets = site.providers.flatMap((p) =>
    p.health.enabled && p.health.method === 'tcp'
      ? p.health.targets.map((address) => ({ address, port: p.health.tcpPort ?? 443 }))
      : [],
  );
  return {
    uplinks,
    ...(targets6.length === 0 ? {} : { internetHosts6: [...new Set(['2001:db8:99::10', ...targets6])] }),
    ...(lan === undefined ? {} : { lan }),
    ...(moreLans.length === 0 ? {} : { moreLans }),
    internetHosts,
    tcpTargets,
  };
}

/**
 * A provider's IPv6 half in the lab: its static address, or for `learned` one made up in a
 * per-uplink subnet (the lab adds it as SLAAC would); `detect` gets a stand-in RA route.
 */
function withIpv6(
  p: ValidSite['providers'][number],
  n: number,
  uplink: SiteUplinkOptions,
): SiteUplinkOptions {
  if (p.ipv6 === undefined) return uplink;
  const address = p.ipv6.address ?? { address: `2001:db8:fe${n.toString(16)}::2`, prefixLength: 64 };
  const gateway =
    p.ipv6.gateway.kind === 'static' ? p.ipv6.gateway.address : `2001:db8:fe${n.toString(16)}::1`;
  return {
    ...uplink,
    ipv6: {
      address: `${address.address}/${address.prefixLength}`,
      gateway,
      prefixes: p.ipv6.prefixes,
      ra: p.ipv6.gateway.kind === 'detect',
    },
  };
}

function toInt(ip: string): number {
  return ip.split('.').reduce((acc, octet) => ((acc << 8) | Number(octet)) >>> 0, 0);
}

function toIp(value: number): string {
  return [24, 16, 8, 0].map((shift) => (value >>> shift) & 0xff).join('.');
}

function maskOf(bits: number): number {
  return bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
}

function firstHost(ip: string, prefix: number): string {
  return toIp(((toInt(ip) & maskOf(prefix)) >>> 0) + 1);
}

/** The other host of the /30 holding `gateway`. */
function hostNear(gateway: string): string {
  const value = toInt(gateway);
  const base = (value & maskOf(30)) >>> 0;
  return toIp(value === base + 1 ? base + 2 : base + 1);
}
