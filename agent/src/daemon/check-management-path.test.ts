import { describe, expect, it } from 'vitest';
import { exampleDesiredState, exampleFacts } from '../../../test/support/example-desired-state.js';
import { resolve } from '../core/resolve.js';
import { scopeFor } from '../engine/read-current.js';
import type { Facts, KernelRoute, KernelRule, KernelState } from '../model/kernel-state.js';
import { checkManagementPath, type SshConnection } from './check-management-path.js';

// The controller reaches the router on isp1's address from a network no interface is on.
const connection: SshConnection = {
  clientIp: '10.9.9.9',
  clientPort: 40000,
  serverIp: '198.51.100.10',
  serverPort: 22,
};

function setup() {
  const desired = exampleDesiredState();
  const facts = exampleFacts();
  const { effective } = resolve(desired, facts, {});
  const scope = scopeFor(desired, undefined);
  return { desired, facts, effective, scope };
}

function withoutDefault(state: KernelState, table: number): KernelState {
  return { ...state, routes: state.routes.filter((r) => !(r.table === table && r.dst === '0.0.0.0/0')) };
}

describe('management-path guard', () => {
  it('an unchanged state keeps the path', () => {
    const { facts, effective, scope } = setup();
    const check = checkManagementPath({
      connection,
      facts,
      current: effective,
      scope,
      effective,
      markMask: 0xff00,
    });
    expect(check.current).toMatchObject({ kind: 'forward', dev: 'eth1' });
    expect(check.unchanged).toBe(true);
  });

  it('refuses a state that loses the route back, naming the rule that leads there', () => {
    const { facts, effective, scope } = setup();
    const check = checkManagementPath({
      connection,
      facts,
      current: effective,
      scope,
      effective: withoutDefault(effective, 101),
      markMask: 0xff00,
    });
    expect(check.unchanged).toBe(false);
    expect(check.message).toBe(
      'rule 30000 `from all lookup 200` would send replies to the controller 10.9.9.9 out the multipath route over eth1, ppp1 instead of eth1; apply with allowManagementChange to do it anyway',
    );
  });

  it('lets through a repair of a path that is broken now (drift in the current kernel)', () => {
    const { facts, effective, scope } = setup();
    const check = checkManagementPath({
      connection,
      facts,
      current: [101, 102, 103, 200].reduce(withoutDefault, effective),
      scope,
      effective,
      markMask: 0xff00,
    });
    expect(check.current.kind).not.toBe('forward');
    expect(check.next).toMatchObject({ kind: 'forward', dev: 'eth1' });
    expect(check.unchanged).toBe(true);
    expect(check.message).toBeUndefined();
  });
});

describe('management-path guard, a controller reached over IPv6', () => {
  // mgmt0 is on the management network; the controller's network is routed there by a
  // foreign route in main; wan1 is the uplink with the IPv6 default (link-local gateway).
  const v6connection: SshConnection = {
    clientIp: '2001:db8:c0::5',
    clientPort: 40000,
    serverIp: '2001:db8:e0::2',
    serverPort: 22,
  };
  const facts: Facts = {
    interfaces: {
      mgmt0: {
        exists: true,
        up: true,
        addresses: [{ address: '192.0.2.130', prefixLength: 26 }],
        addresses6: [{ address: '2001:db8:e0::2', prefixLength: 64 }],
      },
      wan1: {
        exists: true,
        up: true,
        addresses: [{ address: '198.51.100.34', prefixLength: 30 }],
        addresses6: [{ address: '2001:db8:ffa1::2', prefixLength: 64 }],
      },
    },
  };
  const rule6 = (priority: number, table: number, protocol: number): KernelRule => ({
    priority,
    family: 'inet6',
    action: 'lookup',
    table,
    protocol,
  });
  const route6 = (
    table: number,
    dst: string,
    dev: string,
    gateway: string,
    protocol: number,
  ): KernelRoute => ({
    family: 'inet6',
    table,
    dst,
    type: 'unicast',
    dev,
    gateway,
    protocol,
  });
  const current: KernelState = {
    rules: [rule6(0, 255, 2), rule6(32766, 254, 2)],
    routes: [
      route6(254, '2001:db8:c0::/48', 'mgmt0', '2001:db8:e0::1', 4),
      route6(254, '::/0', 'wan1', 'fe80::1', 4),
    ],
    nft: null,
    sysctls: {},
  };
  const scope = { protocols: [189], tables: [101], adoptTables: [], sysctls: [] };
  const ownTable = route6(101, '::/0', 'wan1', 'fe80::1', 189);

  it('sees where the replies leave today, and keeps a state that does not touch them', () => {
    const keeps: KernelState = {
      rules: [rule6(30000, 101, 189)],
      routes: [ownTable],
      nft: null,
      sysctls: {},
    };
    // A rule for the LAN only would keep it; a catch-all into a table with only a default does not.
    const lanOnly = { ...keeps, rules: [{ ...rule6(30000, 101, 189), from: '2001:db8:a1::/48' }] };
    const check = checkManagementPath({
      connection: v6connection,
      facts,
      current,
      scope,
      effective: lanOnly,
      markMask: 0xff00,
    });
    expect(check.current).toMatchObject({ kind: 'forward', dev: 'mgmt0', src: '2001:db8:e0::2' });
    expect(check.unchanged).toBe(true);
  });

  it('refuses a catch-all that sends the replies out the uplink, naming the rule', () => {
    const cuts: KernelState = { rules: [rule6(30000, 101, 189)], routes: [ownTable], nft: null, sysctls: {} };
    const check = checkManagementPath({
      connection: v6connection,
      facts,
      current,
      scope,
      effective: cuts,
      markMask: 0xff00,
    });
    expect(check.controller).toBe('2001:db8:c0::5');
    expect(check.next).toMatchObject({ kind: 'forward', dev: 'wan1' });
    expect(check.unchanged).toBe(false);
    expect(check.message).toBe(
      'rule 30000 `from all lookup 101` would send replies to the controller 2001:db8:c0::5 out wan1 instead of mgmt0; apply with allowManagementChange to do it anyway',
    );
  });
});
