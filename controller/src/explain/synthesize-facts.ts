/**
 * Facts for a router that is not there: `uplink explain` and `plan` simulate a site from
 * its spec alone, so every interface is up and every address comes from the spec. Where
 * the spec leaves an address to run time (DHCP gateway, PPP), a stand-in from the shared
 * address space 100.64.0.0/10 takes its place and a note says so: the answer is then
 * about which uplink, not about that address.
 */
import type { Facts, InterfaceFacts } from '#agent/model';
import { contains } from '../spec/addresses.js';
import type { ValidProvider, ValidSite } from '../spec/valid-site.js';

export interface SynthesizedFacts {
  readonly facts: Facts;
  /** Operator sentences: which addresses are stand-ins and what was assumed. */
  readonly notes: readonly string[];
  /** Providers whose address only the router knows (a stand-in took its place). */
  readonly standIns: readonly string[];
}

/** 100.64.0.0/10: one /30 per provider, by its position in the spec (gateway or peer .1, router .2). */
const STAND_IN_BASE = (100 << 24) | (64 << 16);

export function synthesizeFacts(site: ValidSite): SynthesizedFacts {
  const interfaces: Record<
    string,
    {
      up: boolean;
      addresses: InterfaceFacts['addresses'];
      gw?: string;
      addresses6?: { address: string; prefixLength: number }[];
    }
  > = {};
  const notes: string[] = [];
  const standIns: string[] = [];
  const iface = (name: string) => {
    interfaces[name] ??= { up: true, addresses: [] };
    return interfaces[name];
  };

  // LAN first: on a typical router the LAN ports come before the uplinks in ifindex order.
  for (const lan of site.lan) {
    const entry = iface(lan.interface);
    for (const subnet of lan.subnets) {
      const [network, length] = subnet.split('/') as [string, string];
      const prefixLength = Number(length);
      if (network.includes(':')) {
        // IPv6 LAN prefixes (D180): the router has `::1` in each.
        entry.addresses6 = [
          ...(entry.addresses6 ?? []),
          { address: `${network.replace(/::$/, '')}::1`, prefixLength },
        ];
        continue;
      }
      const address = prefixLength >= 31 ? network : offset(network, 1);
      entry.addresses = [...entry.addresses, { address, prefixLength }];
    }
  }

  site.providers.forEach((provider, index) => {
    const standIn = standInFor(index);
    const entry = iface(provider.interface);
    if (provider.ipv6?.address) entry.addresses6 = [...(entry.addresses6 ?? []), provider.ipv6.address];
    // An IPv6-only uplink (D165) has no IPv4 address to stand in for.
    if (provider.gateway.kind === 'none') return;
    const { address, gateway, note } = addressOf(provider, standIn);
    if (note !== undefined) notes.push(note);
    if (provider.address === null) standIns.push(provider.name);
    entry.addresses = [...entry.addresses, address];
    if (gateway !== undefined && provider.gateway.kind === 'detect') entry.gw = gateway;
  });

  const out: Record<string, InterfaceFacts> = {};
  for (const [name, entry] of Object.entries(interfaces)) {
    out[name] = {
      exists: true,
      up: entry.up,
      addresses: entry.addresses,
      ...(entry.gw === undefined ? {} : { detectedGateway: entry.gw }),
      ...(entry.addresses6 === undefined ? {} : { addresses6: entry.addresses6 }),
    };
  }
  return { facts: { interfaces: out }, notes, standIns };
}

interface StandIn {
  readonly gateway: string;
  readonly router: string;
}

function standInFor(index: number): StandIn {
  const base = (STAND_IN_BASE + index * 4) >>> 0;
  return { gateway: formatAddress(base + 1), router: formatAddress(base + 2) };
}

function addressOf(
  provider: ValidProvider,
  standIn: StandIn,
): { address: InterfaceFacts['addresses'][number]; gateway?: string; note?: string } {
  const { name, gateway } = provider;
  const given = provider.address;
  switch (gateway.kind) {
    case 'none':
      throw new Error(`${name} is IPv6-only: it has no IPv4 address`);
    case 'point-to-point':
      if (given !== null) return { address: { address: given.address, prefixLength: given.prefixLength } };
      return {
        address: { address: standIn.router, prefixLength: 32, peer: standIn.gateway },
        note: `${name} has a dynamic address; ${standIn.router} stands in for it (peer ${standIn.gateway})`,
      };
    case 'static': {
      if (given !== null) return { address: { address: given.address, prefixLength: given.prefixLength } };
      // Put the stand-in on the gateway's /31, so the gateway is on-link as on the real router.
      const router = offset(gateway.address, 0, 1);
      return {
        address: { address: router, prefixLength: 31 },
        note: `${name} has a dynamic address; ${router} stands in for it (on-link with its gateway ${gateway.address})`,
      };
    }
    case 'detect': {
      if (given === null) {
        return {
          address: { address: standIn.router, prefixLength: 30 },
          gateway: standIn.gateway,
          note: `${name} has a dynamic address and gateway; ${standIn.router} stands in for it, gateway ${standIn.gateway}`,
        };
      }
      const detected = guessGateway(given.address, given.prefixLength);
      return {
        address: { address: given.address, prefixLength: given.prefixLength },
        gateway: detected,
        note: `${name}'s gateway is detected on the router; ${detected} stands in for it`,
      };
    }
  }
}

/** The first host of the subnet that is not the router itself (the second one if it is). */
function guessGateway(address: string, prefixLength: number): string {
  const network = formatAddress(toInt(address) & mask(prefixLength));
  const first = prefixLength >= 31 ? network : offset(network, 1);
  if (first !== address) return first;
  return prefixLength >= 31 ? offset(address, 0, 1) : offset(network, 2);
}

/** `address + add`, or with `xor` its partner in a /31. */
function offset(address: string, add: number, xor = 0): string {
  return formatAddress(((toInt(address) + add) ^ xor) >>> 0);
}

function mask(prefixLength: number): number {
  return prefixLength === 0 ? 0 : (0xffffffff << (32 - prefixLength)) >>> 0;
}

function toInt(address: string): number {
  const [a, b, c, d] = address.split('.').map(Number) as [number, number, number, number];
  return ((a << 24) | (b << 16) | (c << 8) | d) >>> 0;
}

function formatAddress(value: number): string {
  const v = value >>> 0;
  return `${v >>> 24}.${(v >>> 16) & 255}.${(v >>> 8) & 255}.${v & 255}`;
}

/** A host address inside `subnet` for a client behind the router (the router has the first host). */
export function clientAddressIn(subnet: string): string {
  const [network, length] = subnet.split('/') as [string, string];
  const prefixLength = Number(length);
  if (prefixLength >= 31) return network;
  // .50 when the subnet is large enough, else the second host.
  const host = prefixLength <= 26 ? 50 : 2;
  const candidate = offset(network, host);
  return contains(subnet, candidate) ? candidate : network;
}
