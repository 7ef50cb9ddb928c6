/**
 * Example routers for the simulator's tests and bench. RFC 5737 uplinks, 172.20.x LANs:
 * eth0 LAN 172.20.1.1/24, eth3 LAN 172.20.2.1/24, eth1 isp1 192.0.2.10/24 (gw .1),
 * ppp0 isp2 198.51.100.20 peer 198.51.100.1, eth2 isp3 203.0.113.10/24 (gw .1).
 */
import type { KernelNftRule, KernelRoute, KernelRule } from '../../agent/src/model/kernel-state.js';
import {
  buildView,
  type RoutingView,
  type ViewInterface,
  type ViewParts,
} from '../../agent/src/sim/routing-view.js';

export const UPLINK = 252;

export const INTERFACES: readonly ViewInterface[] = [
  { name: 'eth0', up: true, addresses: [{ address: '172.20.1.1', prefixLength: 24 }] },
  { name: 'eth1', up: true, addresses: [{ address: '192.0.2.10', prefixLength: 24 }] },
  {
    name: 'ppp0',
    up: true,
    addresses: [{ address: '198.51.100.20', prefixLength: 32, peer: '198.51.100.1' }],
  },
  { name: 'eth2', up: true, addresses: [{ address: '203.0.113.10', prefixLength: 24 }] },
  { name: 'eth3', up: true, addresses: [{ address: '172.20.2.1', prefixLength: 24 }] },
];

export function rule(
  priority: number,
  fields: Omit<KernelRule, 'priority' | 'protocol' | 'action'> & { action?: KernelRule['action'] },
): KernelRule {
  return { priority, action: 'lookup', protocol: UPLINK, ...fields };
}

export function route(
  table: number,
  dst: string,
  fields: Omit<KernelRoute, 'table' | 'dst' | 'protocol' | 'type'> & { type?: KernelRoute['type'] } = {},
): KernelRoute {
  return { table, dst, type: 'unicast', protocol: UPLINK, ...fields };
}

/** main: connected routes + default via isp3 (eth2); table 100: default via isp1 (eth1). */
export function smallView(parts: ViewParts = {}): RoutingView {
  return buildView({
    interfaces: INTERFACES,
    connectedRoutes: true,
    ...parts,
    routes: [
      route(254, '0.0.0.0/0', { gateway: '203.0.113.1', dev: 'eth2' }),
      route(100, '0.0.0.0/0', { gateway: '192.0.2.1', dev: 'eth1' }),
      ...(parts.routes ?? []),
    ],
  });
}

export const TRACK_NFT: readonly KernelNftRule[] = [
  { kind: 'track-save', iif: 'eth1', mark: 0x100 },
  { kind: 'track-save', iif: 'ppp0', mark: 0x200 },
  { kind: 'track-restore', chain: 'prerouting', mark: 0x100 },
  { kind: 'track-restore', chain: 'prerouting', mark: 0x200 },
  { kind: 'track-restore', chain: 'output', mark: 0x100 },
  { kind: 'track-restore', chain: 'output', mark: 0x200 },
  { kind: 'masquerade', oif: 'eth1' },
  { kind: 'snat', oif: 'ppp0', address: '198.51.100.20' },
];

/** The docs/decisions.md D2 layout for isp1 (eth1, table 101) and isp2 (ppp0, table 102), balanced 8:2. */
export function siteView(parts: ViewParts = {}): RoutingView {
  return buildView({
    interfaces: INTERFACES.filter((i) => i.name !== 'eth2'),
    connectedRoutes: true,
    nft: TRACK_NFT,
    ...parts,
    rules: [
      rule(900, { table: 254, suppressPrefixlength: 0 }),
      rule(1000, { fwmark: 0x100, fwmask: 0xff00, table: 101 }),
      rule(1001, { fwmark: 0x200, fwmask: 0xff00, table: 102 }),
      rule(2000, { from: '192.0.2.10/32', table: 101 }),
      rule(2001, { from: '198.51.100.20/32', table: 102 }),
      rule(10000, { uidrange: { start: 108, end: 108 }, table: 102 }),
      rule(10010, { from: '172.20.1.0/24', ipproto: 'tcp', dport: { start: 25, end: 25 }, table: 101 }),
      rule(10020, { from: '172.20.1.0/24', table: 101 }),
      rule(30000, { table: 200 }),
      ...(parts.rules ?? []),
    ],
    routes: [
      route(101, '0.0.0.0/0', { gateway: '192.0.2.1', dev: 'eth1' }),
      route(102, '0.0.0.0/0', { dev: 'ppp0' }),
      route(200, '0.0.0.0/0', {
        nexthops: [
          { dev: 'eth1', gateway: '192.0.2.1', weight: 8 },
          { dev: 'ppp0', weight: 2 },
        ],
      }),
      ...(parts.routes ?? []),
    ],
  });
}
