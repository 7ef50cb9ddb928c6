import { describe, expect, it } from 'vitest';
import { route, rule } from '../../../test/support/sim-fixtures.js';
import type { Facts, KernelState } from '../model/kernel-state.js';
import { compileView } from './compile-view.js';
import { buildViewFromState, DEFAULT_RULES, withDefaultRules } from './routing-view.js';
import { simulatePacket } from './simulate-packet.js';

describe('withDefaultRules', () => {
  it('adds the kernel defaults once and orders by priority, ties in insertion order', () => {
    const a = rule(1000, { table: 101 });
    const b = rule(1000, { table: 102 });
    const rules = withDefaultRules([b, rule(32766, { table: 254, protocol: 2 } as never), a]);
    expect(rules.map((r) => [r.priority, r.table])).toEqual([
      [0, 255],
      [1000, 102],
      [1000, 101],
      [32766, 254],
      [32767, 253],
    ]);
    expect(withDefaultRules([])).toEqual(DEFAULT_RULES);
  });
});

describe('buildViewFromState', () => {
  const facts: Facts = {
    interfaces: {
      eth0: { exists: true, up: true, addresses: [{ address: '172.20.1.1', prefixLength: 24 }] },
      eth1: { exists: true, up: true, addresses: [{ address: '192.0.2.10', prefixLength: 24 }] },
      ppp1: { exists: false, up: false, addresses: [] },
    },
  };
  const state: KernelState = {
    rules: [rule(900, { table: 254, suppressPrefixlength: 0 }), rule(1000, { table: 101 })],
    routes: [route(101, '0.0.0.0/0', { gateway: '192.0.2.1', dev: 'eth1' })],
    nft: [{ kind: 'masquerade', oif: 'eth1' }],
    sysctls: { 'net.ipv4.conf.eth1.rp_filter': '2' },
  };

  it('derives connected routes, local addresses and rp_filter', () => {
    const view = buildViewFromState(state, facts, { sysctls: { 'net.ipv4.conf.all.rp_filter': '1' } });
    expect(view.routes).toContainEqual(
      expect.objectContaining({ table: 254, dst: '172.20.1.0/24', dev: 'eth0', src: '172.20.1.1' }),
    );
    expect(view.interfaces.find((i) => i.name === 'eth1')?.rpFilter).toBe(2);
    expect(view.interfaces.find((i) => i.name === 'eth0')?.rpFilter).toBe(1);
    expect(view.interfaces.some((i) => i.name === 'ppp1')).toBe(false);
    expect(view.rules[0]).toMatchObject({ priority: 0, table: 255 });
    const { verdict } = simulatePacket(view, { iif: 'eth0', src: '172.20.1.5', dst: '198.51.100.7' });
    expect(verdict).toMatchObject({ kind: 'forward', dev: 'eth1', src: '192.0.2.10' });
  });

  it('reports objects the kernel could not hold', () => {
    const view = buildViewFromState(
      { ...state, routes: [...state.routes, route(102, '0.0.0.0/0', { dev: 'ppp1' })] },
      facts,
    );
    expect(compileView(view).warnings).toContainEqual(expect.stringContaining('nexthop ppp1 is missing'));
  });
});
