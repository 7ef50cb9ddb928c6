import { describe, expect, it } from 'vitest';
import type { KernelNftRule, KernelRoute, KernelRule } from '../model/kernel-state.js';
import { buildView, type ViewInterface } from './routing-view.js';
import { simulatePacket } from './simulate-packet.js';
import { formatTrace } from './trace.js';

/** A dual-stack router: lan0 numbered from both ISPs' prefixes, wan1 (ISP1, link-local gateway), wan2 (ISP2). */
const INTERFACES: ViewInterface[] = [
  {
    name: 'lan0',
    up: true,
    addresses: [{ address: '172.20.50.1', prefixLength: 24 }],
    addresses6: [
      { address: '2001:db8:a1:1::1', prefixLength: 64 },
      { address: '2001:db8:b2:1::1', prefixLength: 64 },
    ],
  },
  {
    name: 'wan1',
    up: true,
    addresses: [{ address: '198.51.100.34', prefixLength: 30 }],
    addresses6: [{ address: '2001:db8:ffa1::2', prefixLength: 64 }],
  },
  {
    name: 'wan2',
    up: true,
    addresses: [{ address: '192.0.2.66', prefixLength: 30 }],
    addresses6: [{ address: '2001:db8:ffb2::5', prefixLength: 64 }],
  },
];

const r6 = (
  priority: number,
  fields: Omit<KernelRule, 'priority' | 'protocol' | 'action' | 'family'>,
): KernelRule => ({
  priority,
  family: 'inet6',
  action: 'lookup',
  protocol: 189,
  ...fields,
});

const route6 = (
  fields: Omit<KernelRoute, 'family' | 'protocol' | 'type'> & { type?: KernelRoute['type'] },
): KernelRoute => ({
  family: 'inet6',
  type: 'unicast',
  protocol: 189,
  metric: 1024,
  ...fields,
});

const ISP1_DEFAULT = route6({ table: 101, dst: '::/0', gateway: 'fe80::1', dev: 'wan1' });
const ISP2_DEFAULT = route6({ table: 102, dst: '::/0', gateway: 'fe80::2', dev: 'wan2' });
const BALANCED = route6({
  table: 200,
  dst: '::/0',
  nexthops: [
    { dev: 'wan1', gateway: 'fe80::1', weight: 1 },
    { dev: 'wan2', gateway: 'fe80::2', weight: 3 },
  ],
});

const RULES: KernelRule[] = [
  r6(100, { fwmark: 0x100, fwmask: 0xff00, table: 101 }),
  r6(101, { fwmark: 0x200, fwmask: 0xff00, table: 102 }),
  r6(1000, { table: 254, suppressPrefixlength: 0 }),
  r6(2000, { from: '2001:db8:a1::/48', table: 101 }),
  r6(2001, { from: '2001:db8:b2::/48', table: 102 }),
  r6(3000, { to: '2001:db8:cafe::/48', table: 102 }),
  r6(3001, { to: '2001:db8:dead::/48', action: 'prohibit' } as never),
  r6(9000, { table: 200 }),
];

const NPT: KernelNftRule[] = [
  { kind: 'npt', oif: 'wan2', from: '2001:db8:a1::/48', to: '2001:db8:b2::/48' },
  { kind: 'npt', oif: 'wan1', from: '2001:db8:b2::/48', to: '2001:db8:a1::/48' },
];

function view(routes: KernelRoute[] = [ISP1_DEFAULT, ISP2_DEFAULT, BALANCED], nft: KernelNftRule[] = NPT) {
  return buildView({
    interfaces: INTERFACES,
    rules: [
      ...RULES.map((r) =>
        r.priority === 3001 ? { ...r, action: 'prohibit' as const, table: undefined } : r,
      ),
      // IPv4 objects beside them: never consulted for an IPv6 packet.
      { priority: 100, action: 'lookup', table: 101, fwmark: 0x100, fwmask: 0xff00, protocol: 189 },
    ],
    routes: [
      ...routes,
      { table: 101, dst: '0.0.0.0/0', type: 'unicast', gateway: '198.51.100.33', dev: 'wan1', protocol: 189 },
    ],
    nft,
    connectedRoutes: true,
  });
}

const LAN1 = { iif: 'lan0', src: '2001:db8:a1:1::10' } as const;
const LAN2 = { iif: 'lan0', src: '2001:db8:b2:1::10' } as const;

describe('simulatePacket: IPv6', () => {
  it('a LAN host numbered from ISP1 leaves by ISP1 (link-local gateway with its device)', () => {
    const { verdict, trace } = simulatePacket(view(), {
      ...LAN1,
      dst: '2001:db8:99::10',
      proto: 'tcp',
      dport: 443,
    });
    expect(verdict).toMatchObject({
      kind: 'forward',
      dev: 'wan1',
      gateway: 'fe80::1',
      table: 101,
      rulePriority: 2000,
    });
    expect(verdict.snat).toBeUndefined();
    expect(formatTrace(trace)).toContain('from 2001:db8:a1::/48 lookup 101');
  });

  it('main wins for a connected prefix (suppress_prefixlength 0 lets only more specific routes through)', () => {
    const { verdict } = simulatePacket(view(), { ...LAN1, dst: '2001:db8:b2:1::99' });
    expect(verdict).toMatchObject({ kind: 'forward', dev: 'lan0', table: 254, rulePriority: 1000 });
    expect(verdict.gateway).toBeUndefined();
  });

  it('ISP1 down (its table empty): ISP1-numbered traffic falls to the balanced table', () => {
    const v = view([ISP2_DEFAULT, { ...BALANCED, nexthops: [BALANCED.nexthops![1]!] }]);
    const { verdict } = simulatePacket(v, { ...LAN1, dst: '2001:db8:99::10', proto: 'tcp', dport: 443 });
    expect(verdict).toMatchObject({ kind: 'forward', dev: 'wan2', table: 200 });
    // NPTv6 onto ISP2's prefix, host bits kept.
    expect(verdict.snat).toMatchObject({ reason: 'npt', from: '2001:db8:a1:1::10', to: '2001:db8:b2:1::10' });
    expect(verdict.src).toBe('2001:db8:b2:1::10');
  });

  it('NPTv6 applies to a new connection only, and not to a source outside the prefix', () => {
    const v = view([ISP2_DEFAULT, { ...BALANCED, nexthops: [BALANCED.nexthops![1]!] }]);
    const established = simulatePacket(v, { ...LAN1, dst: '2001:db8:99::10', ctState: 'established' });
    expect(established.verdict.snat).toBeUndefined();
    const own = simulatePacket(v, { ...LAN2, dst: '2001:db8:99::10' });
    expect(own.verdict).toMatchObject({ dev: 'wan2', src: '2001:db8:b2:1::10' });
    expect(own.verdict.snat).toBeUndefined();
  });

  it('multipath: candidates without a hash, a weighted pick with one', () => {
    const host = { iif: 'lan0', src: '2001:db8:c3::1', dst: '2001:db8:99::10' };
    const open = simulatePacket(view(), host).verdict;
    expect(open.dev).toBeUndefined();
    expect(open.candidates?.map((c) => [c.dev, c.gateway, c.weight])).toEqual([
      ['wan1', 'fe80::1', 1],
      ['wan2', 'fe80::2', 3],
    ]);
    // Upper bounds: 2^31/4 - 1 for wan1, 2^31 - 1 for wan2.
    expect(simulatePacket(view(), host, { multipathHash: 2 ** 29 - 1 }).verdict.dev).toBe('wan1');
    expect(simulatePacket(view(), host, { multipathHash: 2 ** 29 }).verdict.dev).toBe('wan2');
  });

  it('locally generated: the source is the outgoing interface address (RFC 6724 scoring)', () => {
    const { verdict, trace } = simulatePacket(view(), { dst: '2001:db8:cafe::1', proto: 'udp', dport: 53 });
    expect(verdict).toMatchObject({
      kind: 'forward',
      dev: 'wan2',
      table: 102,
      rulePriority: 3000,
      src: '2001:db8:ffb2::5',
    });
    expect(formatTrace(trace)).toContain('source 2001:db8:ffb2::5');
    // Multipath candidates carry each path's source.
    const mp = simulatePacket(view(), { dst: '2001:db8:99::10' }).verdict;
    expect(mp.candidates?.map((c) => c.src)).toEqual(['2001:db8:ffa1::2', '2001:db8:ffb2::5']);
  });

  it('longest common prefix picks among one interface’s addresses', () => {
    const v = view([route6({ table: 254, dst: '2001:db8:b2:9::/64', dev: 'lan0' })]);
    expect(simulatePacket(v, { dst: '2001:db8:b2:9::1' }).verdict.src).toBe('2001:db8:b2:1::1');
    const w = view([route6({ table: 254, dst: '2001:db8:a1:9::/64', dev: 'lan0' })]);
    expect(simulatePacket(w, { dst: '2001:db8:a1:9::1' }).verdict.src).toBe('2001:db8:a1:1::1');
  });

  it('a bound source takes its from-rule; the route src wins over selection', () => {
    const bound = simulatePacket(view(), { src: '2001:db8:b2:1::1', dst: '2001:db8:99::10' }).verdict;
    expect(bound).toMatchObject({ dev: 'wan2', table: 102, rulePriority: 2001 });
    const v = view([{ ...ISP1_DEFAULT, table: 254, dst: '2001:db8:77::/48', src: '2001:db8:a1:1::1' }]);
    expect(simulatePacket(v, { dst: '2001:db8:77::1' }).verdict.src).toBe('2001:db8:a1:1::1');
  });

  it('an unbound TCP socket keeps its first route (no second lookup with the chosen source)', () => {
    // Without a source the from-rules do not match: the balanced table decides.
    const { verdict } = simulatePacket(
      view(),
      { dst: '2001:db8:99::10', proto: 'tcp', dport: 443 },
      { multipathHash: 0 },
    );
    expect(verdict).toMatchObject({ dev: 'wan1', table: 200, src: '2001:db8:ffa1::2' });
  });

  it('marks: fwmark rules and the IPv6 twins of the track rules only', () => {
    const nft: KernelNftRule[] = [
      { kind: 'track-restore', chain: 'output', mark: 0x100 },
      { kind: 'track-restore', chain: 'output', mark: 0x200, family: 'ipv6' },
    ];
    const v = view(undefined, nft);
    const { verdict, trace } = simulatePacket(v, { dst: '2001:db8:99::10', ctMark: 0x200, uid: 1000 });
    expect(verdict).toMatchObject({ mark: 0x200, markSet: true, dev: 'wan2', table: 102, rulePriority: 101 });
    expect(formatTrace(trace)).toContain('re-route');
    // ct mark 0x100: only the IPv4 rule would restore it, so an IPv6 packet keeps mark 0.
    const other = simulatePacket(
      v,
      { dst: '2001:db8:99::10', ctMark: 0x100 },
      { multipathHash: 2 ** 30 },
    ).verdict;
    expect(other).toMatchObject({ mark: 0, markSet: false, table: 200, dev: 'wan2' });
    // Prerouting track-save of the IPv6 twin on the uplink, for a new connection.
    const save: KernelNftRule[] = [
      { kind: 'track-save', iif: 'wan1', mark: 0x100 },
      { kind: 'track-save', iif: 'wan1', mark: 0x100, family: 'ipv6' },
    ];
    const inbound = simulatePacket(view(undefined, save), {
      iif: 'wan1',
      src: '2001:db8:99::10',
      dst: '2001:db8:a1:1::10',
    });
    expect(inbound.verdict).toMatchObject({ kind: 'forward', dev: 'lan0', ctMark: 0x100 });
    const only4 = simulatePacket(view(undefined, [save[0]!]), {
      iif: 'wan1',
      src: '2001:db8:99::10',
      dst: '2001:db8:a1:1::10',
    });
    expect(only4.verdict.ctMark).toBe(0);
    // A mark given on arrival chooses the table by the fwmark rule.
    expect(simulatePacket(view(), { ...LAN1, dst: '2001:db8:99::10', mark: 0x200 }).verdict).toMatchObject({
      dev: 'wan2',
      rulePriority: 101,
    });
  });

  it('local delivery, rejects and no route', () => {
    expect(simulatePacket(view(), { ...LAN1, dst: '2001:db8:ffa1::2' }).verdict).toMatchObject({
      kind: 'local',
      dev: 'lo',
      table: 255,
    });
    expect(
      simulatePacket(view(), { iif: 'lan0', src: '2001:db8:c3::1', dst: '2001:db8:dead::1' }).verdict,
    ).toMatchObject({
      kind: 'prohibit',
      errno: 'EACCES',
    });
    const unreachable = view([route6({ table: 200, dst: '::/0', type: 'unreachable' })]);
    expect(
      simulatePacket(unreachable, { iif: 'lan0', src: '2001:db8:c3::1', dst: '2001:db8:99::1' }).verdict,
    ).toMatchObject({
      kind: 'unreachable',
      errno: 'EHOSTUNREACH',
    });
    expect(
      simulatePacket(view([]), { iif: 'lan0', src: '2001:db8:c3::1', dst: '2001:db8:99::1' }).verdict,
    ).toMatchObject({
      kind: 'no-route',
      errno: 'ENETUNREACH',
    });
  });

  it('a nexthop via a down interface does not exist', () => {
    const down = buildView({
      interfaces: INTERFACES.map((i) => (i.name === 'wan1' ? { ...i, up: false } : i)),
      rules: RULES.filter((r) => r.priority !== 3001),
      routes: [ISP1_DEFAULT, ISP2_DEFAULT, BALANCED],
      connectedRoutes: true,
    });
    const { verdict } = simulatePacket(down, { ...LAN1, dst: '2001:db8:99::10' });
    expect(verdict).toMatchObject({ dev: 'wan2', table: 200 });
    expect(verdict.candidates).toBeUndefined();
  });

  it('refuses what it does not simulate, and mixed families', () => {
    expect(simulatePacket(view(), { dst: 'fe80::1' }).verdict.kind).toBe('invalid');
    expect(simulatePacket(view(), { dst: 'ff02::1' }).verdict.kind).toBe('invalid');
    expect(simulatePacket(view(), { src: '198.51.100.34', dst: '2001:db8::1' }).verdict.reason).toContain(
      'one family',
    );
    expect(simulatePacket(view(), { src: '2001:db8:a1:1::1', dst: '192.0.2.1' }).verdict.reason).toContain(
      'one family',
    );
  });

  it('IPv4 packets ignore the IPv6 objects', () => {
    const withSix = simulatePacket(view(), {
      iif: 'lan0',
      src: '172.20.50.9',
      dst: '203.0.113.1',
      mark: 0x100,
    });
    const without = simulatePacket(
      buildView({
        interfaces: INTERFACES.map(({ addresses6: _, ...i }) => i),
        rules: [
          { priority: 100, action: 'lookup', table: 101, fwmark: 0x100, fwmask: 0xff00, protocol: 189 },
        ],
        routes: [
          {
            table: 101,
            dst: '0.0.0.0/0',
            type: 'unicast',
            gateway: '198.51.100.33',
            dev: 'wan1',
            protocol: 189,
          },
        ],
        nft: NPT,
        connectedRoutes: true,
      }),
      { iif: 'lan0', src: '172.20.50.9', dst: '203.0.113.1', mark: 0x100 },
    );
    expect(withSix).toEqual(without);
    expect(withSix.verdict).toMatchObject({ dev: 'wan1', table: 101 });
  });

  it('a bound device without a source is strict: only its nexthops, else the next rule, else no route', () => {
    // Table 102 (mark 0x200) has only wan2: bound to wan1 the lookup falls through to the balanced table.
    const bound = simulatePacket(view(), { dst: '2001:db8:99::10', mark: 0x200, oif: 'wan1' }).verdict;
    expect(bound).toMatchObject({
      kind: 'forward',
      dev: 'wan1',
      gateway: 'fe80::1',
      table: 200,
      src: '2001:db8:ffa1::2',
    });
    // Nothing via lan0 to the internet: Network is unreachable (no on-link guess as in IPv4).
    expect(simulatePacket(view(), { dst: '2001:db8:99::10', oif: 'lan0' }).verdict).toMatchObject({
      kind: 'no-route',
      errno: 'ENETUNREACH',
    });
    // With a source the device is only a preference: the fwmark rule's table still decides.
    const sourced = simulatePacket(view(), {
      src: '2001:db8:a1:1::1',
      dst: '2001:db8:99::10',
      mark: 0x200,
      oif: 'wan1',
    });
    expect(sourced.verdict).toMatchObject({ dev: 'wan2', table: 102 });
  });
});
