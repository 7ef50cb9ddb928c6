import { describe, expect, it } from 'vitest';
import { INTERFACES, route, rule, siteView, smallView } from '../../../test/support/sim-fixtures.js';
import type { KernelRule } from '../model/kernel-state.js';
import { buildView } from './routing-view.js';
import { type Packet, simulatePacket } from './simulate-packet.js';
import { formatTrace } from './trace.js';

const LAN = { iif: 'eth0', src: '172.20.1.5' } as const;

/** One rule at 100 → table 100 (isp1, eth1); everything else leaves by main's default (eth2). */
const selectorCases: Array<{
  name: string;
  rule: Omit<KernelRule, 'priority' | 'protocol' | 'action'>;
  packet: Packet;
  dev: 'eth1' | 'eth2';
}> = [
  {
    name: 'from: inside',
    rule: { from: '172.20.1.0/24', table: 100 },
    packet: { ...LAN, dst: '198.51.100.7' },
    dev: 'eth1',
  },
  {
    name: 'from: outside',
    rule: { from: '172.20.1.0/24', table: 100 },
    packet: { iif: 'eth3', src: '172.20.2.5', dst: '198.51.100.7' },
    dev: 'eth2',
  },
  {
    name: 'to: inside',
    rule: { to: '198.51.100.0/25', table: 100 },
    packet: { ...LAN, dst: '198.51.100.7' },
    dev: 'eth1',
  },
  {
    name: 'to: outside',
    rule: { to: '198.51.100.0/25', table: 100 },
    packet: { ...LAN, dst: '198.51.100.200' },
    dev: 'eth2',
  },
  {
    name: 'iif: same',
    rule: { iif: 'eth0', table: 100 },
    packet: { ...LAN, dst: '198.51.100.7' },
    dev: 'eth1',
  },
  {
    name: 'iif: other',
    rule: { iif: 'eth0', table: 100 },
    packet: { iif: 'eth3', src: '172.20.2.5', dst: '198.51.100.7' },
    dev: 'eth2',
  },
  {
    name: 'iif: local traffic is not from eth0',
    rule: { iif: 'eth0', table: 100 },
    packet: { dst: '198.51.100.7', proto: 'udp' },
    dev: 'eth2',
  },
  {
    name: 'iif lo: locally generated',
    rule: { iif: 'lo', table: 100 },
    packet: { dst: '198.51.100.7', proto: 'udp' },
    dev: 'eth1',
  },
  {
    name: 'iif lo: forwarded',
    rule: { iif: 'lo', table: 100 },
    packet: { ...LAN, dst: '198.51.100.7' },
    dev: 'eth2',
  },
  {
    name: 'iif: missing device (detached rule)',
    rule: { iif: 'eth9', table: 100 },
    packet: { ...LAN, dst: '198.51.100.7' },
    dev: 'eth2',
  },
  {
    name: 'oif: bound socket',
    rule: { oif: 'eth1', table: 100 },
    packet: { dst: '198.51.100.7', oif: 'eth1', proto: 'udp' },
    dev: 'eth1',
  },
  {
    name: 'oif: unbound socket',
    rule: { oif: 'eth1', table: 100 },
    packet: { dst: '198.51.100.7', proto: 'udp' },
    dev: 'eth2',
  },
  {
    name: 'oif: forwarded',
    rule: { oif: 'eth1', table: 100 },
    packet: { ...LAN, dst: '198.51.100.7' },
    dev: 'eth2',
  },
  {
    name: 'fwmark/mask: equal',
    rule: { fwmark: 0x100, fwmask: 0xff00, table: 100 },
    packet: { ...LAN, dst: '198.51.100.7', mark: 0x100 },
    dev: 'eth1',
  },
  {
    name: 'fwmark/mask: other bits ignored',
    rule: { fwmark: 0x100, fwmask: 0xff00, table: 100 },
    packet: { ...LAN, dst: '198.51.100.7', mark: 0x10107 },
    dev: 'eth1',
  },
  {
    name: 'fwmark/mask: different',
    rule: { fwmark: 0x100, fwmask: 0xff00, table: 100 },
    packet: { ...LAN, dst: '198.51.100.7', mark: 0x200 },
    dev: 'eth2',
  },
  {
    name: 'fwmark without mask: exact',
    rule: { fwmark: 0x100, table: 100 },
    packet: { ...LAN, dst: '198.51.100.7', mark: 0x101 },
    dev: 'eth2',
  },
  {
    name: 'fwmark 0 without mask matches every mark',
    rule: { fwmark: 0, table: 100 },
    packet: { ...LAN, dst: '198.51.100.7', mark: 0x200 },
    dev: 'eth1',
  },
  {
    name: 'fwmark 0/0xff00: unmarked',
    rule: { fwmark: 0, fwmask: 0xff00, table: 100 },
    packet: { ...LAN, dst: '198.51.100.7' },
    dev: 'eth1',
  },
  {
    name: 'uidrange: local uid inside',
    rule: { uidrange: { start: 108, end: 108 }, table: 100 },
    packet: { dst: '198.51.100.7', proto: 'udp', uid: 108 },
    dev: 'eth1',
  },
  {
    name: 'uidrange: local uid outside',
    rule: { uidrange: { start: 108, end: 108 }, table: 100 },
    packet: { dst: '198.51.100.7', proto: 'udp', uid: 1000 },
    dev: 'eth2',
  },
  {
    name: 'uidrange: forwarded carries uid 0, not the given uid',
    rule: { uidrange: { start: 108, end: 108 }, table: 100 },
    packet: { ...LAN, dst: '198.51.100.7', uid: 108 },
    dev: 'eth2',
  },
  {
    name: 'uidrange 0-0 matches forwarded packets',
    rule: { uidrange: { start: 0, end: 0 }, table: 100 },
    packet: { ...LAN, dst: '198.51.100.7' },
    dev: 'eth1',
  },
  {
    name: 'ipproto: tcp',
    rule: { ipproto: 'tcp', table: 100 },
    packet: { ...LAN, dst: '198.51.100.7', proto: 'tcp', dport: 80 },
    dev: 'eth1',
  },
  {
    name: 'ipproto: udp is not tcp',
    rule: { ipproto: 'tcp', table: 100 },
    packet: { ...LAN, dst: '198.51.100.7', proto: 'udp', dport: 80 },
    dev: 'eth2',
  },
  {
    name: 'sport range: inside',
    rule: { sport: { start: 1000, end: 2000 }, table: 100 },
    packet: { ...LAN, dst: '198.51.100.7', proto: 'udp', sport: 1500 },
    dev: 'eth1',
  },
  {
    name: 'sport range: outside',
    rule: { sport: { start: 1000, end: 2000 }, table: 100 },
    packet: { ...LAN, dst: '198.51.100.7', proto: 'udp', sport: 2001 },
    dev: 'eth2',
  },
  {
    name: 'sport: icmp has no ports',
    rule: { sport: { start: 1000, end: 2000 }, table: 100 },
    packet: { ...LAN, dst: '198.51.100.7', proto: 'icmp', sport: 1500 },
    dev: 'eth2',
  },
  {
    name: 'dport: equal',
    rule: { dport: { start: 25, end: 25 }, table: 100 },
    packet: { ...LAN, dst: '198.51.100.7', proto: 'tcp', dport: 25 },
    dev: 'eth1',
  },
  {
    name: 'dport: other',
    rule: { dport: { start: 25, end: 25 }, table: 100 },
    packet: { ...LAN, dst: '198.51.100.7', proto: 'tcp', dport: 443 },
    dev: 'eth2',
  },
  {
    name: 'tos: equal',
    rule: { tos: 0x10, table: 100 },
    packet: { ...LAN, dst: '198.51.100.7', tos: 0x10 },
    dev: 'eth1',
  },
  {
    name: 'tos: bits outside 0x1c ignored',
    rule: { tos: 0x10, table: 100 },
    packet: { ...LAN, dst: '198.51.100.7', tos: 0xb2 },
    dev: 'eth1',
  },
  {
    name: 'tos: different',
    rule: { tos: 0x10, table: 100 },
    packet: { ...LAN, dst: '198.51.100.7', tos: 0x08 },
    dev: 'eth2',
  },
];

describe('rule selectors', () => {
  it.each(selectorCases)('$name', ({ rule: fields, packet, dev }) => {
    const view = smallView({ rules: [rule(100, fields)] });
    const { verdict, trace } = simulatePacket(view, packet);
    expect(verdict.kind).toBe('forward');
    expect(verdict.dev).toBe(dev);
    const step = trace.find((s) => s.step === 'rule' && s.priority === 100);
    expect(step).toMatchObject({ matched: dev === 'eth1' });
  });

  it('names the failing selector and why', () => {
    const view = smallView({ rules: [rule(100, { fwmark: 0x100, fwmask: 0xff00, table: 100 })] });
    const { trace } = simulatePacket(view, { ...LAN, dst: '198.51.100.7', mark: 0x200 });
    const step = trace.find((s) => s.step === 'rule' && s.priority === 100);
    expect(step).toMatchObject({ selector: 'fwmark', matched: false });
    expect(step?.text).toContain('fwmark 0x100/0xff00: mark 0x200 & 0xff00 = 0x200 ≠ 0x100');
  });

  it('evaluates equal priorities in insertion order', () => {
    const view = smallView({
      rules: [rule(100, { table: 100 }), rule(100, { action: 'blackhole' })],
      routes: [route(100, '0.0.0.0/0', { gateway: '192.0.2.1', dev: 'eth1' })],
    });
    expect(simulatePacket(view, { ...LAN, dst: '198.51.100.7' }).verdict.dev).toBe('eth1');
    const reversed = smallView({ rules: [rule(100, { action: 'blackhole' }), rule(100, { table: 100 })] });
    expect(simulatePacket(reversed, { ...LAN, dst: '198.51.100.7' }).verdict.kind).toBe('blackhole');
  });
});

describe('tables and rule actions', () => {
  const cases: Array<{
    name: string;
    rules: KernelRule[];
    routes?: Parameters<typeof route>[];
    dst: string;
    expect: object;
  }> = [
    {
      name: 'suppress_prefixlength 0: main default suppressed, falls through to the provider',
      rules: [rule(900, { table: 254, suppressPrefixlength: 0 }), rule(1000, { table: 100 })],
      dst: '198.51.100.7',
      expect: { kind: 'forward', dev: 'eth1', table: 100, rulePriority: 1000 },
    },
    {
      name: 'suppress_prefixlength 0: LAN route in main wins',
      rules: [rule(900, { table: 254, suppressPrefixlength: 0 }), rule(1000, { table: 100 })],
      dst: '172.20.2.9',
      expect: { kind: 'forward', dev: 'eth3', table: 254, rulePriority: 900 },
    },
    {
      name: 'suppress_prefixlength 24 suppresses a /24 too',
      rules: [rule(900, { table: 254, suppressPrefixlength: 24 }), rule(1000, { table: 100 })],
      dst: '172.20.2.9',
      expect: { kind: 'forward', dev: 'eth1', table: 100 },
    },
    {
      name: 'suppress does not apply to a reject route',
      rules: [rule(900, { table: 150, suppressPrefixlength: 0 }), rule(1000, { table: 100 })],
      routes: [[150, '0.0.0.0/0', { type: 'unreachable' }]],
      dst: '198.51.100.7',
      expect: { kind: 'unreachable', errno: 'EHOSTUNREACH', table: 150 },
    },
    {
      name: 'lookup in a table that does not exist falls through',
      rules: [rule(1000, { table: 150 })],
      dst: '198.51.100.7',
      expect: { kind: 'forward', dev: 'eth2', table: 254 },
    },
    {
      name: 'lookup in a table without a matching route falls through',
      rules: [rule(1000, { table: 150 })],
      routes: [[150, '172.20.9.0/24', { gateway: '192.0.2.1', dev: 'eth1' }]],
      dst: '198.51.100.7',
      expect: { kind: 'forward', dev: 'eth2', table: 254 },
    },
    {
      name: 'throw route falls through to the next rule',
      rules: [rule(1000, { table: 150 })],
      routes: [
        [150, '198.51.100.0/24', { type: 'throw' }],
        [150, '0.0.0.0/0', { gateway: '192.0.2.1', dev: 'eth1' }],
      ],
      dst: '198.51.100.7',
      expect: { kind: 'forward', dev: 'eth2', table: 254 },
    },
    {
      name: 'unreachable route',
      rules: [rule(1000, { table: 150 })],
      routes: [[150, '198.51.100.0/24', { type: 'unreachable' }]],
      dst: '198.51.100.7',
      expect: { kind: 'unreachable', errno: 'EHOSTUNREACH' },
    },
    {
      name: 'blackhole route',
      rules: [rule(1000, { table: 150 })],
      routes: [[150, '198.51.100.0/24', { type: 'blackhole' }]],
      dst: '198.51.100.7',
      expect: { kind: 'blackhole', errno: 'EINVAL' },
    },
    {
      name: 'prohibit route',
      rules: [rule(1000, { table: 150 })],
      routes: [[150, '198.51.100.0/24', { type: 'prohibit' }]],
      dst: '198.51.100.7',
      expect: { kind: 'prohibit', errno: 'EACCES' },
    },
    {
      name: 'rule action blackhole',
      rules: [rule(1000, { action: 'blackhole' })],
      dst: '198.51.100.7',
      expect: { kind: 'blackhole', errno: 'EINVAL', rulePriority: 1000 },
    },
    {
      name: 'rule action unreachable',
      rules: [rule(1000, { action: 'unreachable' })],
      dst: '198.51.100.7',
      expect: { kind: 'unreachable', errno: 'ENETUNREACH' },
    },
    {
      name: 'rule action prohibit',
      rules: [rule(1000, { action: 'prohibit' })],
      dst: '198.51.100.7',
      expect: { kind: 'prohibit', errno: 'EACCES' },
    },
    {
      name: 'longest prefix wins over a lower metric',
      rules: [rule(1000, { table: 150 })],
      routes: [
        [150, '198.51.0.0/16', { gateway: '203.0.113.1', dev: 'eth2', metric: 0 }],
        [150, '198.51.100.0/24', { gateway: '192.0.2.1', dev: 'eth1', metric: 500 }],
      ],
      dst: '198.51.100.7',
      expect: { dev: 'eth1' },
    },
    {
      name: 'same prefix: lowest metric wins',
      rules: [rule(1000, { table: 150 })],
      routes: [
        [150, '0.0.0.0/0', { gateway: '192.0.2.1', dev: 'eth1', metric: 10 }],
        [150, '0.0.0.0/0', { gateway: '203.0.113.1', dev: 'eth2', metric: 5 }],
      ],
      dst: '198.51.100.7',
      expect: { dev: 'eth2', gateway: '203.0.113.1' },
    },
    {
      name: 'a route via a down interface does not exist',
      rules: [rule(1000, { table: 150 })],
      routes: [[150, '0.0.0.0/0', { dev: 'ppp1' }]],
      dst: '198.51.100.7',
      expect: { dev: 'eth2', table: 254 },
    },
  ];

  it.each(cases)('$name', ({ rules, routes, dst, expect: expected }) => {
    const view = smallView({ rules, routes: (routes ?? []).map((r) => route(...r)) });
    const { verdict } = simulatePacket(view, { ...LAN, dst });
    expect(verdict).toMatchObject(expected);
  });

  it('no route anywhere: Network is unreachable', () => {
    const view = buildView({ interfaces: INTERFACES, connectedRoutes: true });
    expect(simulatePacket(view, { ...LAN, dst: '198.51.100.7' }).verdict).toMatchObject({
      kind: 'no-route',
      errno: 'ENETUNREACH',
    });
  });

  it('traces the fall-through', () => {
    const view = smallView({
      rules: [rule(900, { table: 254, suppressPrefixlength: 0 }), rule(1000, { table: 150 })],
    });
    const { trace } = simulatePacket(view, { ...LAN, dst: '198.51.100.7' });
    const tables = trace
      .filter((s) => s.step === 'table' && s.depth === 0)
      .map((s) => (s.step === 'table' ? [s.table, s.outcome] : []));
    expect(tables).toEqual([
      [255, 'no-route'],
      [254, 'suppressed'],
      [150, 'no-table'],
      [254, 'route'],
    ]);
  });
});

describe('multipath', () => {
  const view = smallView({
    rules: [rule(1000, { table: 200 })],
    routes: [
      route(200, '0.0.0.0/0', {
        nexthops: [
          { dev: 'eth1', gateway: '192.0.2.1', weight: 8 },
          { dev: 'eth2', gateway: '203.0.113.1', weight: 2 },
        ],
      }),
    ],
  });
  // fib_rebalance: eth1 covers hashes 0 … round(0.8·2^31)−1.
  const boundary = Math.round(0.8 * 2 ** 31) - 1;

  it('lists every path with its weight when no hash is given', () => {
    const { verdict } = simulatePacket(view, { ...LAN, dst: '198.51.100.7' });
    expect(verdict.dev).toBeUndefined();
    expect(verdict.candidates).toEqual([
      { dev: 'eth1', gateway: '192.0.2.1', weight: 8 },
      { dev: 'eth2', gateway: '203.0.113.1', weight: 2 },
    ]);
  });

  it.each([
    { hash: 0, dev: 'eth1' },
    { hash: boundary, dev: 'eth1' },
    { hash: boundary + 1, dev: 'eth2' },
    { hash: 2 ** 31 - 1, dev: 'eth2' },
  ])('hash $hash picks $dev', ({ hash, dev }) => {
    expect(simulatePacket(view, { ...LAN, dst: '198.51.100.7' }, { multipathHash: hash }).verdict.dev).toBe(
      dev,
    );
  });

  it('gives each path its source for locally generated traffic', () => {
    const { verdict } = simulatePacket(view, { dst: '198.51.100.7', proto: 'udp' });
    expect(verdict.candidates?.map((c) => c.src)).toEqual(['192.0.2.10', '203.0.113.10']);
  });

  it('drops a nexthop whose interface is down', () => {
    const down = smallView({
      interfaces: INTERFACES.map((i) => (i.name === 'eth2' ? { ...i, up: false } : i)),
      rules: [rule(1000, { table: 200 })],
      routes: [
        route(200, '0.0.0.0/0', {
          nexthops: [
            { dev: 'eth1', gateway: '192.0.2.1', weight: 8 },
            { dev: 'eth2', gateway: '203.0.113.1', weight: 2 },
          ],
        }),
      ],
    });
    expect(simulatePacket(down, { ...LAN, dst: '198.51.100.7' }).verdict).toMatchObject({ dev: 'eth1' });
  });
});

describe('source selection (locally generated)', () => {
  const cases: Array<{
    name: string;
    view: ReturnType<typeof smallView>;
    packet: Packet;
    src: string;
    dev: string;
  }> = [
    {
      name: 'primary address of the output device',
      view: smallView(),
      packet: { dst: '198.51.100.7', proto: 'udp' },
      src: '203.0.113.10',
      dev: 'eth2',
    },
    {
      name: "the route's src wins",
      view: smallView({
        routes: [route(254, '198.51.100.0/24', { gateway: '203.0.113.1', dev: 'eth2', src: '172.20.1.1' })],
      }),
      packet: { dst: '198.51.100.7', proto: 'udp' },
      src: '172.20.1.1',
      dev: 'eth2',
    },
    {
      name: 'the address in the subnet of the gateway, not the first one',
      view: smallView({
        interfaces: INTERFACES.map((i) =>
          i.name === 'eth2'
            ? {
                ...i,
                addresses: [
                  { address: '192.0.2.99', prefixLength: 28 },
                  { address: '203.0.113.10', prefixLength: 24 },
                ],
              }
            : i,
        ),
      }),
      packet: { dst: '198.51.100.7', proto: 'udp' },
      src: '203.0.113.10',
      dev: 'eth2',
    },
    {
      name: 'secondary addresses are never chosen',
      view: smallView({
        interfaces: INTERFACES.map((i) =>
          i.name === 'eth2'
            ? {
                ...i,
                addresses: [
                  { address: '203.0.113.10', prefixLength: 24 },
                  { address: '203.0.113.11', prefixLength: 24 },
                ],
              }
            : i,
        ),
      }),
      packet: { dst: '198.51.100.7', proto: 'udp' },
      src: '203.0.113.10',
      dev: 'eth2',
    },
    {
      name: 'point-to-point: the local address, gateway matched against the peer',
      view: smallView({
        rules: [rule(1000, { table: 102 })],
        routes: [route(102, '0.0.0.0/0', { dev: 'ppp0' })],
      }),
      packet: { dst: '198.51.100.7', proto: 'udp' },
      src: '198.51.100.20',
      dev: 'ppp0',
    },
    {
      name: 'a device without addresses borrows the first global address',
      view: smallView({
        interfaces: [...INTERFACES, { name: 'tun0', up: true, addresses: [] }],
        rules: [rule(1000, { table: 102 })],
        routes: [route(102, '0.0.0.0/0', { dev: 'tun0' })],
      }),
      packet: { dst: '198.51.100.7', proto: 'udp' },
      src: '172.20.1.1',
      dev: 'tun0',
    },
    {
      name: 'a bound source is kept',
      view: smallView(),
      packet: { src: '192.0.2.10', dst: '198.51.100.7', proto: 'udp' },
      src: '192.0.2.10',
      dev: 'eth2',
    },
    {
      name: 'connect(): the second lookup with the chosen source may change the interface',
      view: smallView({ rules: [rule(2000, { from: '203.0.113.10/32', table: 100 })] }),
      packet: { dst: '198.51.100.7', proto: 'tcp', dport: 443 },
      src: '203.0.113.10',
      dev: 'eth1',
    },
    {
      name: 'unconnected UDP does one lookup',
      view: smallView({ rules: [rule(2000, { from: '203.0.113.10/32', table: 100 })] }),
      packet: { dst: '198.51.100.7', proto: 'udp', dport: 53 },
      src: '203.0.113.10',
      dev: 'eth2',
    },
  ];

  it.each(cases)('$name', ({ view, packet, src, dev }) => {
    const { verdict } = simulatePacket(view, packet);
    expect(verdict).toMatchObject({ kind: 'forward', origin: 'local-out', src, dev });
  });

  it('traces both connect() lookups', () => {
    const view = smallView({ rules: [rule(2000, { from: '203.0.113.10/32', table: 100 })] });
    const { trace } = simulatePacket(view, { dst: '198.51.100.7', proto: 'tcp', dport: 443 });
    expect(
      trace.filter((s) => s.step === 'lookup').map((s) => (s.step === 'lookup' ? s.purpose : '')),
    ).toEqual(['connect-first', 'connect-second']);
  });

  it('to one of our own addresses: local, via lo', () => {
    const { verdict } = simulatePacket(smallView(), { dst: '192.0.2.10', proto: 'udp' });
    expect(verdict).toMatchObject({ kind: 'local', dev: 'lo', src: '192.0.2.10' });
  });

  it('refuses a source that is not ours: Network is unreachable, as ip_route_output answers', () => {
    expect(simulatePacket(smallView(), { src: '198.51.100.99', dst: '198.51.100.7' }).verdict).toMatchObject({
      kind: 'invalid',
      errno: 'ENETUNREACH',
    });
  });

  it('a loopback source may not leave by a real interface (EINVAL), but reaches our addresses', () => {
    expect(simulatePacket(smallView(), { src: '127.0.0.1', dst: '198.51.100.7' }).verdict).toMatchObject({
      kind: 'invalid',
      errno: 'EINVAL',
    });
    expect(simulatePacket(smallView(), { src: '127.0.0.1', dst: '192.0.2.10' }).verdict.kind).toBe('local');
  });

  it('a multicast source is refused before the address check (EINVAL)', () => {
    expect(simulatePacket(smallView(), { src: '224.0.0.5', dst: '198.51.100.7' }).verdict).toMatchObject({
      kind: 'invalid',
      errno: 'EINVAL',
    });
  });

  it('the broadcast address of a connected subnet: sent as broadcast on that interface', () => {
    const { verdict } = simulatePacket(smallView(), { dst: '192.0.2.255', proto: 'udp' });
    expect(verdict).toMatchObject({ kind: 'broadcast', dev: 'eth1', src: '192.0.2.10', table: 255 });
    expect(verdict.reason).toBe("192.0.2.255 is the broadcast address of eth1's subnet");
    // A /32 point-to-point address has no broadcast address; the network address is no broadcast either.
    expect(simulatePacket(smallView(), { dst: '192.0.2.0', proto: 'udp' }).verdict.kind).toBe('forward');
  });

  it('a bound oif without a route: assumed on-link', () => {
    const view = buildView({ interfaces: INTERFACES, connectedRoutes: true });
    expect(simulatePacket(view, { dst: '198.51.100.7', oif: 'eth1', proto: 'udp' }).verdict).toMatchObject({
      kind: 'forward',
      dev: 'eth1',
      src: '192.0.2.10',
    });
  });
});

describe('input path checks', () => {
  it('delivers to a local address', () => {
    expect(
      simulatePacket(smallView(), { iif: 'eth1', src: '198.51.100.7', dst: '192.0.2.10' }).verdict,
    ).toMatchObject({
      kind: 'local',
    });
  });

  it('a subnet broadcast arriving is delivered (broadcast, dev lo)', () => {
    expect(simulatePacket(smallView(), { ...LAN, dst: '192.0.2.255' }).verdict).toMatchObject({
      kind: 'broadcast',
      dev: 'lo',
    });
  });

  it('a subnet broadcast address as source routes back as broadcast: martian (EINVAL)', () => {
    const view = smallView({ rules: [rule(100, { fwmark: 0x1, table: 100 })] });
    expect(
      simulatePacket(view, { iif: 'eth2', src: '192.0.2.255', dst: '172.20.1.10' }).verdict,
    ).toMatchObject({ kind: 'martian', errno: 'EINVAL' });
  });

  it('0.0.0.0/8 other than 0.0.0.0 is unicast since Linux 5.3; 0.0.0.0 is a martian source', () => {
    expect(
      simulatePacket(smallView(), { iif: 'eth2', src: '0.0.0.39', dst: '172.20.1.10' }).verdict,
    ).toMatchObject({ kind: 'forward', dev: 'eth0' });
    expect(simulatePacket(smallView(), { ...LAN, dst: '0.1.2.3' }).verdict).toMatchObject({
      kind: 'forward',
      dev: 'eth2',
    });
    expect(
      simulatePacket(smallView(), { iif: 'eth2', src: '0.0.0.0', dst: '172.20.1.10' }).verdict,
    ).toMatchObject({ kind: 'martian', errno: 'EINVAL' });
  });

  it('an address of a down interface is not local', () => {
    const view = smallView({
      interfaces: INTERFACES.map((i) => (i.name === 'eth3' ? { ...i, up: false } : i)),
    });
    expect(simulatePacket(view, { ...LAN, dst: '172.20.2.1' }).verdict).toMatchObject({
      kind: 'forward',
      dev: 'eth2',
    });
  });

  it('rp_filter strict: the route back leaves by another interface', () => {
    const view = smallView({
      interfaces: INTERFACES.map((i) => (i.name === 'eth1' ? { ...i, rpFilter: 1 as const } : i)),
    });
    const { verdict, trace } = simulatePacket(view, { iif: 'eth1', src: '198.51.100.7', dst: '172.20.1.10' });
    expect(verdict).toMatchObject({ kind: 'martian', errno: 'EXDEV' });
    expect(trace.some((s) => s.step === 'lookup' && s.purpose === 'reverse-path' && s.depth === 1)).toBe(
      true,
    );
  });

  it('rp_filter loose: any route back will do', () => {
    const view = smallView({
      interfaces: INTERFACES.map((i) => (i.name === 'eth1' ? { ...i, rpFilter: 2 as const } : i)),
    });
    expect(
      simulatePacket(view, { iif: 'eth1', src: '198.51.100.7', dst: '172.20.1.10' }).verdict,
    ).toMatchObject({
      kind: 'forward',
      dev: 'eth0',
    });
  });

  it('rp_filter strict with src_valid_mark: the mark steers the reverse lookup', () => {
    const view = smallView({
      interfaces: INTERFACES.map((i) =>
        i.name === 'eth1' ? { ...i, rpFilter: 1 as const, srcValidMark: true } : i,
      ),
      rules: [rule(1000, { fwmark: 0x100, fwmask: 0xff00, table: 100 })],
    });
    expect(
      simulatePacket(view, { iif: 'eth1', src: '198.51.100.7', dst: '172.20.1.10', mark: 0x100 }).verdict
        .kind,
    ).toBe('forward');
  });

  it('our own address as source is a martian', () => {
    expect(
      simulatePacket(smallView(), { iif: 'eth1', src: '172.20.1.1', dst: '172.20.2.10' }).verdict,
    ).toMatchObject({
      kind: 'martian',
      errno: 'EINVAL',
    });
  });

  it('ip_forward=0: no forwarding', () => {
    expect(
      simulatePacket(smallView({ forwarding: false }), { ...LAN, dst: '198.51.100.7' }).verdict,
    ).toMatchObject({
      kind: 'unreachable',
      errno: 'EHOSTUNREACH',
    });
  });

  it('unknown iif', () => {
    expect(
      simulatePacket(smallView(), { iif: 'eth9', src: '198.51.100.7', dst: '172.20.1.10' }).verdict,
    ).toMatchObject({
      kind: 'invalid',
      errno: 'ENODEV',
    });
  });
});

describe('netfilter marks and NAT (site layout of docs/decisions.md D2)', () => {
  const view = siteView();

  it('track-save sets the ct mark of a new connection arriving on the uplink', () => {
    const { verdict } = simulatePacket(view, {
      iif: 'ppp0',
      src: '203.0.113.50',
      dst: '198.51.100.20',
      proto: 'tcp',
      dport: 22,
    });
    expect(verdict).toMatchObject({ kind: 'local', ctMark: 0x200 });
  });

  it('track-save leaves an established connection alone', () => {
    const { verdict } = simulatePacket(view, {
      iif: 'ppp0',
      src: '203.0.113.50',
      dst: '198.51.100.20',
      proto: 'tcp',
      ctMark: 0,
    });
    expect(verdict.ctMark).toBe(0);
  });

  it('track-restore (prerouting): a LAN reply leaves by the uplink of its connection, not by policy', () => {
    const { verdict, trace } = simulatePacket(view, {
      iif: 'eth0',
      src: '172.20.1.10',
      dst: '203.0.113.50',
      proto: 'tcp',
      sport: 443,
      dport: 40000,
      ctMark: 0x200,
      direction: 'reply',
      replyNatSrc: '198.51.100.20',
    });
    expect(verdict).toMatchObject({
      kind: 'forward',
      dev: 'ppp0',
      mark: 0x200,
      markSet: true,
      src: '198.51.100.20',
      rulePriority: 1001,
    });
    expect(verdict.snat).toMatchObject({
      reason: 'conntrack-reply',
      from: '172.20.1.10',
      to: '198.51.100.20',
    });
    expect(trace.some((s) => s.step === 'nft' && s.applied && s.rule.kind === 'track-restore')).toBe(true);
  });

  it('track-restore keeps mark bits outside the mask', () => {
    const { verdict } = simulatePacket(view, {
      iif: 'eth0',
      src: '172.20.1.10',
      dst: '203.0.113.50',
      mark: 0x30007,
      ctMark: 0x100,
      direction: 'reply',
    });
    expect(verdict.mark).toBe(0x30107);
  });

  it('track-restore (output): a local reply is re-routed by the restored mark', () => {
    const noFrom = siteView({ rules: [] });
    // Without the from-rules the reply would follow the balance table; the restored mark decides.
    const stripped = {
      ...noFrom,
      rules: noFrom.rules.filter((r) => r.priority !== 2000 && r.priority !== 2001),
    };
    const { verdict, trace } = simulatePacket(
      stripped,
      {
        src: '198.51.100.20',
        dst: '203.0.113.50',
        proto: 'tcp',
        sport: 22,
        dport: 40000,
        ctMark: 0x200,
        direction: 'reply',
      },
      { multipathHash: 0 },
    );
    expect(verdict).toMatchObject({ kind: 'forward', dev: 'ppp0', src: '198.51.100.20', mark: 0x200 });
    expect(
      trace.filter((s) => s.step === 'lookup').map((s) => (s.step === 'lookup' ? s.purpose : '')),
    ).toEqual(['route', 'reroute']);
  });

  it('masquerade: a new LAN connection leaving isp1 gets its address', () => {
    const { verdict } = simulatePacket(view, { ...LAN, dst: '198.51.100.7', proto: 'tcp', dport: 443 });
    expect(verdict).toMatchObject({ dev: 'eth1', src: '192.0.2.10' });
    expect(verdict.snat).toMatchObject({ reason: 'masquerade', from: '172.20.1.5', to: '192.0.2.10' });
  });

  it('snat: a new connection leaving isp2 gets the fixed address', () => {
    const { verdict } = simulatePacket(view, {
      iif: 'eth0',
      src: '172.20.1.5',
      dst: '203.0.113.50',
      proto: 'udp',
      uid: 108,
      mark: 0x200,
    });
    expect(verdict).toMatchObject({ dev: 'ppp0', src: '198.51.100.20' });
    expect(verdict.snat).toMatchObject({ reason: 'snat', to: '198.51.100.20' });
  });

  it('NAT rules do not touch replies', () => {
    const { verdict } = simulatePacket(view, {
      src: '192.0.2.10',
      dst: '203.0.113.50',
      proto: 'tcp',
      ctMark: 0,
      direction: 'reply',
    });
    expect(verdict.snat).toBeUndefined();
  });

  it('uid 108 (local P2P daemon) leaves by isp2', () => {
    const { verdict } = simulatePacket(view, { dst: '203.0.113.50', proto: 'udp', uid: 108 });
    expect(verdict).toMatchObject({ dev: 'ppp0', src: '198.51.100.20', rulePriority: 10000 });
  });

  it('formats an operator explanation', () => {
    const { trace } = simulatePacket(view, { ...LAN, dst: '198.51.100.7', proto: 'tcp', dport: 25 });
    const text = formatTrace(trace);
    expect(text).toContain(
      '✗ 1000: from all fwmark 0x100/0xff00 lookup 101 — no: fwmark 0x100/0xff00: mark 0x0',
    );
    expect(text).toContain('✓ 10010: from 172.20.1.0/24 ipproto tcp dport 25 lookup 101 — matches');
    expect(text).toContain('→ table main: no route to 198.51.100.7, falling through');
    expect(text).toContain(
      '    ▸ source validation: reverse lookup of the source: from 198.51.100.7 to 172.20.1.5 iif eth1',
    );
    expect(text).toContain('masquerade — source 172.20.1.5 → 192.0.2.10');
  });

  it('without trace: same verdict, no steps', () => {
    const packet: Packet = { ...LAN, dst: '198.51.100.7', proto: 'tcp', dport: 25 };
    const fast = simulatePacket(view, packet, { trace: false });
    expect(fast.trace).toEqual([]);
    expect(fast.verdict).toEqual(simulatePacket(view, packet).verdict);
  });
});
