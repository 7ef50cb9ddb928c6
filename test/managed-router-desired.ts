/** A desired state for the ManagedRouter lab (test/lab/managed-router.ts): one uplink, isp1. */
import type { DesiredState, HealthSettings } from '../agent/src/model/desired-state.js';
import { withContentHash } from './support/example-desired-state.js';

/** Health checking off (no targets); also the drift lab's (test/agent-drift-lab.ts). */
export const HEALTH_OFF: HealthSettings = {
  targets: [],
  method: 'icmp',
  intervalMs: 1000,
  timeoutMs: 500,
  failAfter: 3,
  recoverAfter: 3,
  minTargetsUp: 1,
  enabled: false,
};

export interface ManagedRouterDesiredOptions {
  /**
   * The router's own traffic too: rule source/isp1 (2000, from isp1's address) and a
   * track-restore in the output chain. Default false.
   */
  readonly localTraffic?: boolean;
  /** net.ipv4.conf.isp1.rp_filter; a bench flips it so that every apply changes something. */
  readonly rpFilter?: '0' | '2';
}

/** One uplink with track and SNAT; management stays on main's connected route (rule 900). */
export function managedRouterDesired(site: string, options: ManagedRouterDesiredOptions = {}): DesiredState {
  const local = options.localTraffic ?? false;
  return withContentHash({
    version: 1,
    site,
    hash: '',
    settings: { protocol: 252, markMask: 0xff00, balanceTable: null, adoptTables: [], drift: 'report' },
    providers: [
      {
        name: 'isp1',
        interface: 'isp1',
        gateway: { kind: 'static', address: '198.51.100.1' },
        table: 101,
        mark: 0x100,
        balance: null,
        fallback: null,
        track: true,
        snat: { kind: 'masquerade' },
        health: HEALTH_OFF,
      },
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
      ...(local
        ? [
            {
              id: 'source/isp1',
              priority: 2000,
              action: 'lookup' as const,
              table: 101,
              from: { kind: 'provider-host' as const, provider: 'isp1' },
              requires: 'isp1',
            },
          ]
        : []),
      { id: 'default/isp1', priority: 30000, action: 'lookup', table: 101, requires: 'isp1' },
    ],
    routes: [
      {
        id: 'isp1/default',
        table: 101,
        dst: { kind: 'literal', cidr: '0.0.0.0/0' },
        type: 'unicast',
        dev: 'isp1',
        gateway: { kind: 'provider-gateway', provider: 'isp1' },
        requires: 'isp1',
        requiresUp: true,
      },
    ],
    nft: [
      { kind: 'track-save', provider: 'isp1', iif: 'isp1', mark: 0x100 },
      { kind: 'track-restore', chain: 'prerouting', provider: 'isp1', mark: 0x100 },
      ...(local
        ? [{ kind: 'track-restore' as const, chain: 'output' as const, provider: 'isp1', mark: 0x100 }]
        : []),
      { kind: 'masquerade', provider: 'isp1', oif: 'isp1' },
    ],
    sysctls: { 'net.ipv4.conf.isp1.rp_filter': options.rpFilter ?? '2' },
  });
}
