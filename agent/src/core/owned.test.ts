import { describe, expect, it } from 'vitest';
import { exampleDesiredState } from '../../../test/support/example-desired-state.js';
import type { KernelRoute, KernelRule, KernelState } from '../model/kernel-state.js';
import { mergeOwnershipScopes, owned, ownershipScope } from './owned.js';

const ours: KernelRule = {
  priority: 2000,
  action: 'lookup',
  table: 101,
  from: '198.51.100.10/32',
  protocol: 252,
};
const foreignRule: KernelRule = { priority: 5000, action: 'lookup', table: 50, protocol: 4 };
const route = (table: number, protocol: number, dst = '0.0.0.0/0'): KernelRoute => ({
  table,
  dst,
  type: 'unicast',
  dev: 'eth1',
  gateway: '198.51.100.1',
  protocol,
});

const kernel: KernelState = {
  rules: [ours, foreignRule, { priority: 32766, action: 'lookup', table: 254, protocol: 2 }],
  routes: [
    route(101, 252),
    route(101, 3, '192.0.2.0/24'),
    route(254, 3),
    route(254, 252, '198.51.100.0/24'),
    route(60, 252),
  ],
  nft: [{ kind: 'masquerade', oif: 'eth1' }],
  sysctls: { 'net.ipv4.conf.eth1.rp_filter': '1', 'net.ipv4.ip_forward': '1' },
};

describe('owned', () => {
  it('keeps tagged rules, tagged routes in Uplink tables, the nft table and desired sysctls', () => {
    const state = owned(kernel, ownershipScope(exampleDesiredState()));
    expect(state.rules).toEqual([ours]);
    expect(state.routes).toEqual([route(101, 252)]);
    expect(state.nft).toEqual(kernel.nft);
    expect(state.sysctls).toEqual({ 'net.ipv4.conf.eth1.rp_filter': '1' });
  });

  it('owns every route of an adopted table', () => {
    const desired = exampleDesiredState();
    desired.settings.adoptTables = [101];
    expect(owned(kernel, ownershipScope(desired)).routes).toEqual([
      route(101, 252),
      route(101, 3, '192.0.2.0/24'),
    ]);
  });

  it('a merged scope keeps the tables of the state being left', () => {
    const previous = { ...ownershipScope(exampleDesiredState()), tables: [60] };
    const state = owned(kernel, mergeOwnershipScopes(ownershipScope(exampleDesiredState()), previous));
    expect(state.routes).toEqual([route(60, 252), route(101, 252)]);
  });
});
