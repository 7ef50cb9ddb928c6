/**
 * A small but complete site for tests: two balanced uplinks (isp1 static on eth1, isp2 PPP on
 * ppp1, 8:2), a DHCP fallback (isp3 on eth2), track, a uid policy and a port policy, SNAT.
 * RFC 5737 addresses; LAN 172.20.1.0/24 on eth0.
 */
import { desiredStateHash } from '../../agent/src/model/content-hash.js';
import type { DesiredState, HealthSettings, Provider } from '../../agent/src/model/desired-state.js';
import type { Facts } from '../../agent/src/model/kernel-state.js';

const health: HealthSettings = {
  targets: [],
  method: 'icmp',
  intervalMs: 1000,
  timeoutMs: 500,
  failAfter: 3,
  recoverAfter: 3,
  minTargetsUp: 1,
  enabled: true,
};

function provider(
  p: Pick<Provider, 'name' | 'interface' | 'gateway' | 'table' | 'mark'> & Partial<Provider>,
): Provider {
  return { balance: null, fallback: null, track: true, snat: { kind: 'masquerade' }, health, ...p };
}

export function exampleDesiredState(): DesiredState {
  return withContentHash({
    version: 1,
    site: 'branch-1',
    hash: '0'.repeat(64),
    settings: { protocol: 252, markMask: 0xff00, balanceTable: 200, adoptTables: [], drift: 'report' },
    providers: [
      provider({
        name: 'isp1',
        interface: 'eth1',
        gateway: { kind: 'static', address: '198.51.100.1' },
        table: 101,
        mark: 0x100,
        balance: 8,
      }),
      provider({
        name: 'isp2',
        interface: 'ppp1',
        gateway: { kind: 'point-to-point' },
        table: 102,
        mark: 0x200,
        balance: 2,
      }),
      provider({
        name: 'isp3',
        interface: 'eth2',
        gateway: { kind: 'detect' },
        table: 103,
        mark: 0x300,
        fallback: 1,
      }),
    ],
    rules: [
      { id: 'main-specific', priority: 900, action: 'lookup', table: 254, suppressPrefixlength: 0 },
      {
        id: 'track/isp1',
        priority: 1000,
        action: 'lookup',
        table: 101,
        fwmark: 0x100,
        fwmask: 0xff00,
        requires: 'isp1',
      },
      {
        id: 'track/isp2',
        priority: 1001,
        action: 'lookup',
        table: 102,
        fwmark: 0x200,
        fwmask: 0xff00,
        requires: 'isp2',
      },
      {
        id: 'source/isp1',
        priority: 2000,
        action: 'lookup',
        table: 101,
        from: { kind: 'provider-host', provider: 'isp1' },
        requires: 'isp1',
      },
      {
        id: 'source/isp2',
        priority: 2001,
        action: 'lookup',
        table: 102,
        from: { kind: 'provider-host', provider: 'isp2' },
        requires: 'isp2',
      },
      {
        id: 'source/isp3',
        priority: 2002,
        action: 'lookup',
        table: 103,
        from: { kind: 'provider-host', provider: 'isp3' },
        requires: 'isp3',
      },
      {
        id: 'policy:p2p/isp2',
        priority: 10000,
        action: 'lookup',
        table: 102,
        uidrange: { start: 108, end: 108 },
        requires: 'isp2',
      },
      {
        id: 'policy:web/isp2',
        priority: 10010,
        action: 'lookup',
        table: 102,
        from: { kind: 'literal', cidr: '172.20.1.0/24' },
        ipproto: 'tcp',
        dport: { start: 80, end: 80 },
        requires: 'isp2',
      },
      { id: 'balance', priority: 30000, action: 'lookup', table: 200 },
      { id: 'fallback/isp3', priority: 30001, action: 'lookup', table: 103, requires: 'isp3' },
    ],
    routes: [
      {
        id: 'isp1/connected',
        table: 101,
        dst: { kind: 'provider-network', provider: 'isp1' },
        type: 'unicast',
        dev: 'eth1',
        scope: 'link',
        src: { kind: 'provider-address', provider: 'isp1' },
        requires: 'isp1',
      },
      {
        id: 'isp1/default',
        table: 101,
        dst: { kind: 'literal', cidr: '0.0.0.0/0' },
        type: 'unicast',
        dev: 'eth1',
        gateway: { kind: 'provider-gateway', provider: 'isp1' },
        requires: 'isp1',
        requiresUp: true,
      },
      {
        id: 'isp2/default',
        table: 102,
        dst: { kind: 'literal', cidr: '0.0.0.0/0' },
        type: 'unicast',
        dev: 'ppp1',
        gateway: { kind: 'provider-gateway', provider: 'isp2' },
        requires: 'isp2',
        requiresUp: true,
      },
      {
        id: 'isp3/default',
        table: 103,
        dst: { kind: 'literal', cidr: '0.0.0.0/0' },
        type: 'unicast',
        dev: 'eth2',
        gateway: { kind: 'provider-gateway', provider: 'isp3' },
        requires: 'isp3',
        requiresUp: true,
      },
      {
        id: 'balance/default',
        table: 200,
        dst: { kind: 'literal', cidr: '0.0.0.0/0' },
        type: 'unicast',
        nexthops: [
          {
            provider: 'isp1',
            dev: 'eth1',
            gateway: { kind: 'provider-gateway', provider: 'isp1' },
            weight: 8,
          },
          {
            provider: 'isp2',
            dev: 'ppp1',
            gateway: { kind: 'provider-gateway', provider: 'isp2' },
            weight: 2,
          },
        ],
      },
    ],
    nft: [
      { kind: 'track-save', provider: 'isp1', iif: 'eth1', mark: 0x100 },
      { kind: 'track-restore', chain: 'prerouting', provider: 'isp1', mark: 0x100 },
      { kind: 'track-restore', chain: 'output', provider: 'isp1', mark: 0x100 },
      { kind: 'masquerade', provider: 'isp1', oif: 'eth1' },
      { kind: 'masquerade', provider: 'isp2', oif: 'ppp1' },
    ],
    sysctls: { 'net.ipv4.conf.eth1.rp_filter': '2', 'net.ipv4.conf.ppp1.rp_filter': '2' },
  });
}

export function exampleFacts(): Facts {
  return {
    interfaces: {
      eth0: { exists: true, up: true, addresses: [{ address: '172.20.1.1', prefixLength: 24 }] },
      eth1: { exists: true, up: true, addresses: [{ address: '198.51.100.10', prefixLength: 24 }] },
      ppp1: {
        exists: true,
        up: true,
        addresses: [{ address: '203.0.113.5', prefixLength: 32, peer: '203.0.113.1' }],
      },
      eth2: {
        exists: true,
        up: true,
        addresses: [{ address: '192.0.2.50', prefixLength: 24 }],
        detectedGateway: '192.0.2.1',
      },
    },
  };
}

/**
 * `state` with the hash of its content, as the compiler stamps it: the agent refuses a
 * desired state whose hash does not match (D89), so a test that edits a state restamps it.
 */
export function withContentHash<T extends DesiredState>(state: T): T {
  return { ...state, hash: desiredStateHash(state) };
}
