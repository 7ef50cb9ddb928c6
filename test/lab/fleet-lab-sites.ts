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
  /** Addresses on the internet namespace's lo: the usual web hosts plus every probe target. */
  readonly internetHosts: readonly string[];
  /** TCP probe targets that need a listener: `address:port`. */
  readonly tcpTargets: readonly { readonly address: string; readonly port: number }[];
}

const DEFAULT_INTERNET_HOSTS = ['203.0.113.10', '203.0.113.80'];

export function planSiteLab(site: ValidSite): SiteLabPlan {
  let invented = 0;
  const uplinks: SiteUplinkOptions[] = site.providers.map((p) => {
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
  });
  // One lab LAN per LAN interface of the spec; `br-*` names (without a VLAN dot) are bridges.
  const lans: SiteLanOptions[] = site.lan
    .filter((l) => l.subnets.length > 0)
    .map((l) => ({
      routerIf: l.interface,
      bridge: /^br-[^.]+$/.test(l.interface),
      subnets: l.subnets.map((cidr) => {
        const [ip, prefix] = cidr.split('/') as [string, string];
        const network = (toInt(ip) & maskOf(Number(prefix))) >>> 0;
        return { router: `${toIp(network + 1)}/${prefix}`, host: `${toIp(network + 10)}/${prefix}` };
      }),
    }));
  const [lan, ...moreLans] = lans;
  const targets = site.providers.flatMap((p) => (p.health.enabled ? p.health.targets : []));
  const internetHosts = [...new Set([...DEFAULT_INTERNET_HOSTS, ...targets])];
  const tcpTargets = site.providers.flatMap((p) =>
    p.health.enabled && p.health.method === 'tcp'
      ? p.health.targets.map((address) => ({ address, port: p.health.tcpPort ?? 443 }))
      : [],
  );
  return {
    uplinks,
    ...(lan === undefined ? {} : { lan }),
    ...(moreLans.length === 0 ? {} : { moreLans }),
    internetHosts,
    tcpTargets,
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
