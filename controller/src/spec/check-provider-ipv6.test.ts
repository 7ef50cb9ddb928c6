/**
 * Dual-stack specs (D180): a valid dual-stack site, and table-driven invalid ones with the
 * exact `FILE:LINE:COL: severity: message` loadFleet reports.
 */
import { describe, expect, it } from 'vitest';
import { receivedDesiredState, requiredRevision } from '#agent/model';
import { compileSite } from '../compile/compile-site.js';
import { formatDiagnostic } from './diagnostic.js';
import { loadFleet } from './load-fleet.js';

const KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEaBhMD+z0lxDQfAW10VyG7qYY4PRXHcvAYGlNrX3ReB';
const FLEET = 'rollout:\n  waves:\n    - name: all\n';

/** Lines 1–25 fixed; `isp1` (lines 9–17) and `isp2` (18–25) carry IPv6. */
function site(edit: (text: string) => string = (t) => t, extra = ''): string {
  const text = `name: s1
management:
  address: 192.0.2.10
  hostKey: ${KEY}
lan:
  - interface: lan0
    subnets: [172.20.1.0/24, 2001:db8:1:1::/64]
providers:
  - name: isp1
    interface: wan1
    address: 198.51.100.2/30
    gateway: 198.51.100.1
    balance: 1
    ipv6:
      address: 2001:db8:ff01::2/64
      gateway: fe80::1
      prefixes: [2001:db8:1::/48]
  - name: isp2
    interface: wan2
    gateway: detect
    fallback: true
    ipv6:
      address: learned
      gateway: detect
      prefixes: [2001:db8:2::/48]
`;
  return edit(text) + extra;
}

function diagnostics(text: string): string[] {
  const files = new Map([
    ['fleet.yaml', FLEET],
    ['sites/s1.yaml', text],
  ]);
  return loadFleet(files).diagnostics.map(formatDiagnostic);
}

function compile(text: string) {
  const result = loadFleet(
    new Map([
      ['fleet.yaml', FLEET],
      ['sites/s1.yaml', text],
    ]),
  );
  expect(result.diagnostics.map(formatDiagnostic)).toEqual([]);
  return compileSite(result.fleet!.sites[0]!);
}

describe('dual-stack validation', () => {
  it('a dual-stack site is valid', () => {
    expect(diagnostics(site())).toEqual([]);
  });

  it.each([
    {
      name: 'an IPv4 address under ipv6',
      edit: (t: string) => t.replace('address: 2001:db8:ff01::2/64', 'address: 198.51.100.6/30'),
      expected: [
        'sites/s1.yaml:15:16: error: providers isp1: ipv6.address "198.51.100.6" is IPv4; write an IPv6 address, e.g. 2001:db8::1, or learned (SLAAC/DHCPv6)',
      ],
    },
    {
      name: 'a global gateway outside the address subnet',
      edit: (t: string) => t.replace('gateway: fe80::1', 'gateway: 2001:db8:ff02::1'),
      expected: [
        "sites/s1.yaml:16:16: error: providers isp1: ipv6.gateway 2001:db8:ff02::1 is not a neighbour inside 2001:db8:ff01::/64 (the subnet of address 2001:db8:ff01::2/64); write the ISP router's address there or its link-local address",
      ],
    },
    {
      name: 'a link-local gateway on another interface',
      edit: (t: string) => t.replace('gateway: fe80::1', 'gateway: fe80::1%wan2'),
      expected: [
        "sites/s1.yaml:16:16: error: providers isp1: ipv6.gateway fe80::1%wan2 names interface wan2, but the provider's interface is wan1; write fe80::1 (or fe80::1%wan1)",
      ],
    },
    {
      name: 'no gateway',
      edit: (t: string) => t.replace('      gateway: fe80::1\n', ''),
      expected: [
        "sites/s1.yaml:15:7: error: providers isp1: ipv6: gateway is required; write an address (2001:db8:ff01::1 or fe80::1) or detect (the router advertisement's)",
      ],
    },
    {
      name: 'a prefix with host bits',
      edit: (t: string) => t.replace('prefixes: [2001:db8:1::/48]', 'prefixes: [2001:db8:1::5/48]'),
      expected: [
        'sites/s1.yaml:17:18: error: providers isp1: ipv6.prefixes "2001:db8:1::5/48" has host bits set; write 2001:db8:1::/48',
      ],
    },
    {
      name: 'a link-local prefix',
      edit: (t: string) => t.replace('prefixes: [2001:db8:1::/48]', 'prefixes: [fe80::/64]'),
      expected: [
        'sites/s1.yaml:17:18: error: providers isp1: ipv6.prefixes fe80::/64 is link-local; routed prefixes are global (e.g. 2001:db8:1::/48)',
      ],
    },
    {
      name: 'a prefix of two ISPs',
      edit: (t: string) => t.replace('prefixes: [2001:db8:2::/48]', 'prefixes: [2001:db8:1:8000::/49]'),
      expected: [
        "sites/s1.yaml:17:17: error: providers isp1: NPTv6 maps isp2's 2001:db8:1:8000::/49 onto a prefix of the same length, and isp1's (2001:db8:1::/48) are not /49; list a /49 of isp1's, or write ipv6.npt: false",
        'sites/s1.yaml:25:17: error: providers isp2: ipv6.prefixes 2001:db8:1:8000::/49 overlaps 2001:db8:1::/48, routed by provider isp1; a prefix comes from one ISP',
        "sites/s1.yaml:25:17: error: providers isp2: NPTv6 maps isp1's 2001:db8:1::/48 onto a prefix of the same length, and isp2's (2001:db8:1:8000::/49) are not /48; list a /48 of isp2's, or write ipv6.npt: false",
      ],
    },
    {
      name: 'NPTv6 without a same-length prefix',
      edit: (t: string) => t.replace('prefixes: [2001:db8:2::/48]', 'prefixes: [2001:db8:2::/56]'),
      expected: [
        "sites/s1.yaml:17:17: error: providers isp1: NPTv6 maps isp2's 2001:db8:2::/56 onto a prefix of the same length, and isp1's (2001:db8:1::/48) are not /56; list a /56 of isp1's, or write ipv6.npt: false",
        "sites/s1.yaml:25:17: error: providers isp2: NPTv6 maps isp1's 2001:db8:1::/48 onto a prefix of the same length, and isp2's (2001:db8:2::/56) are not /48; list a /48 of isp2's, or write ipv6.npt: false",
      ],
    },
    {
      name: 'a policy mixing families',
      edit: (t: string) => t,
      extra:
        'policies:\n  - name: mixed\n    from: 172.20.1.0/24\n    to: 2001:db8:99::/48\n    via: [isp1]\n',
      expected: [
        'sites/s1.yaml:29:9: error: policies mixed: from and to are of different families (IPv4 and IPv6); a rule matches one family, so list addresses of the same family in both (or split the policy in two)',
      ],
    },
    {
      name: 'proto icmp with IPv6 addresses',
      edit: (t: string) => t,
      extra: 'policies:\n  - name: ping6\n    to: 2001:db8:99::/48\n    proto: icmp\n    via: [isp1]\n',
      expected: [
        'sites/s1.yaml:28:9: error: policies ping6: proto icmp is ICMPv4 and matches no IPv6 packet; list IPv4 addresses only, or leave proto out for IPv6',
      ],
    },
    {
      name: 'an IPv6 policy via an IPv4-only provider',
      edit: (t: string) =>
        t.replace(
          / {4}ipv6:\n {6}address: learned\n {6}gateway: detect\n {6}prefixes: \[2001:db8:2::\/48\]\n/,
          '',
        ),
      extra: 'policies:\n  - name: v6\n    to: 2001:db8:99::/48\n    via: [isp2]\n',
      expected: [
        'sites/s1.yaml:24:9: error: policies v6: IPv6 addresses, but none of via (isp2) has ipv6:; route it via isp1',
      ],
    },
  ])('$name', ({ edit, extra, expected }) => {
    expect(diagnostics(site(edit, extra ?? ''))).toEqual(expected);
  });
});

describe('dual-stack compile', () => {
  it('lays the IPv6 rules out in the same bands, and both tables hold both defaults', () => {
    const state = compile(
      site(
        (t) => t,
        'policies:\n  - name: mail\n    proto: tcp\n    dport: 25\n    via: [isp1]\n  - name: v6-portal\n    to: 2001:db8:99::/48\n    via: [isp2]\n',
      ),
    );
    expect(receivedDesiredState.safeParse(state).success).toBe(true);
    const v6 = state.rules.filter((r) => r.family === 'inet6').map((r) => [r.id, r.priority]);
    expect(v6).toEqual([
      ['main-specific-routes:ipv6', 900],
      ['track:isp1:ipv6', 1000],
      ['track:isp2:ipv6', 1001],
      ['source:isp1:ipv6', 2000],
      ['source:isp1:prefix#0', 2000],
      ['source:isp2:ipv6', 2001],
      ['source:isp2:prefix#0', 2001],
      ['policy:mail:isp1:ipv6#0', 10000],
      ['policy:v6-portal:isp2:ipv6#0', 10010],
      ['balance:ipv6', 30000],
      ['fallback:isp2:ipv6', 30001],
    ]);
    // The IPv4-only policy has no IPv6 rule; the one without addresses has both.
    expect(state.rules.filter((r) => r.id.startsWith('policy:mail:isp1#')).length).toBe(1);
    expect(state.rules.some((r) => r.id.startsWith('policy:v6-portal:isp2#'))).toBe(false);
    const defaults = state.routes.filter((r) => r.id.startsWith('provider:isp1:'));
    expect(defaults.map((r) => [r.family ?? 'inet', r.table, r.dst])).toEqual([
      ['inet', 100, { kind: 'literal', cidr: '0.0.0.0/0' }],
      ['inet6', 100, { kind: 'literal', cidr: '::/0' }],
    ]);
    expect(state.nft.filter((r) => r.kind === 'npt')).toEqual([
      { kind: 'npt', provider: 'isp1', oif: 'wan1', from: '2001:db8:2::/48', to: '2001:db8:1::/48' },
      { kind: 'npt', provider: 'isp2', oif: 'wan2', from: '2001:db8:1::/48', to: '2001:db8:2::/48' },
    ]);
    expect(state.sysctls['net.ipv6.conf.all.forwarding']).toBe('1');
    expect(state.sysctls['net.ipv6.conf.wan2.accept_ra']).toBe('2');
    expect(state.sysctls['net.ipv6.conf.wan1.accept_ra']).toBeUndefined();
    expect(requiredRevision(state)).toEqual({ revision: 4, features: ['IPv6 (dual-stack providers)'] });
  });

  it('npt: false leaves the prefixes unmapped onto that uplink', () => {
    const state = compile(
      site((t) => t.replace('prefixes: [2001:db8:2::/48]', 'prefixes: [2001:db8:2::/48]\n      npt: false')),
    );
    expect(state.nft.filter((r) => r.kind === 'npt').map((r) => r.provider)).toEqual(['isp1']);
  });

  it('proto icmp without addresses is IPv4 only (ICMPv4 never matches an IPv6 packet)', () => {
    const state = compile(site((t) => t, 'policies:\n  - name: ping\n    proto: icmp\n    via: [isp2]\n'));
    expect(state.rules.filter((r) => r.id.startsWith('policy:ping')).map((r) => r.family ?? 'inet')).toEqual([
      'inet',
    ]);
  });

  it('an IPv4-only site compiles as before (no IPv6 object, revision 1)', () => {
    const state = compile(
      site((t) => t.replace(/ {4}ipv6:\n( {6}.*\n){3}/g, '').replace(', 2001:db8:1:1::/64', '')),
    );
    expect(state.rules.some((r) => r.family !== undefined)).toBe(false);
    expect(state.providers.some((p) => p.ipv6 !== undefined)).toBe(false);
    expect(requiredRevision(state).revision).toBe(1);
  });
});

describe('delegated prefixes (DHCPv6-PD, D155)', () => {
  const delegated = (entry: string, isp2 = '2001:db8:2::/56') =>
    site((t) =>
      t
        .replace('prefixes: [2001:db8:1::/48]', `prefixes: [${entry}]`)
        .replace('prefixes: [2001:db8:2::/48]', `prefixes: [${isp2}]`),
    );

  it('delegated/56 validates and compiles to a source rule and NPTv6 both ways', () => {
    const state = compile(delegated('delegated/56'));
    expect(state.providers[0]!.ipv6).toMatchObject({
      prefixes: [],
      delegated: { length: 56 },
      npt: [{ from: '2001:db8:2::/56', to: { delegated: 'isp1', length: 56 } }],
    });
    expect(state.rules.find((r) => r.id === 'source:isp1:delegated')).toEqual({
      id: 'source:isp1:delegated',
      family: 'inet6',
      priority: 2000,
      action: 'lookup',
      table: state.providers[0]!.table,
      from: { kind: 'provider-delegated', provider: 'isp1' },
      requires: 'isp1',
    });
    expect(state.nft.filter((r) => r.kind === 'npt')).toEqual([
      {
        kind: 'npt',
        provider: 'isp1',
        oif: 'wan1',
        from: '2001:db8:2::/56',
        to: { delegated: 'isp1', length: 56 },
      },
      {
        kind: 'npt',
        provider: 'isp2',
        oif: 'wan2',
        from: { delegated: 'isp1', length: 56 },
        to: '2001:db8:2::/56',
      },
    ]);
    expect(requiredRevision(state).revision).toBe(4);
    expect(receivedDesiredState.safeParse(state).success).toBe(true);
  });

  it('delegated beside a static prefix, and without NPTv6, needs no length', () => {
    const text = delegated('2001:db8:1::/48, delegated', '2001:db8:2::/48').replace(
      '      prefixes: [2001:db8:2::/48]\n',
      '      prefixes: [2001:db8:2::/48]\n      npt: false\n',
    );
    const state = compile(
      text.replace(
        '      prefixes: [2001:db8:1::/48, delegated]\n',
        '      prefixes: [2001:db8:1::/48, delegated]\n      npt: false\n',
      ),
    );
    expect(state.providers[0]!.ipv6).toMatchObject({
      prefixes: ['2001:db8:1::/48'],
      delegated: { length: null },
    });
    expect(state.nft.filter((r) => r.kind === 'npt')).toEqual([]);
  });

  it.each([
    {
      name: 'a misspelt length',
      entry: 'delegated/65',
      expected: [
        'sites/s1.yaml:17:18: error: providers isp1: ipv6.prefixes delegated/65: write delegated (any length) or delegated/LEN with the length the ISP delegates, /1–/64 (e.g. delegated/56)',
      ],
    },
    {
      name: 'delegated twice',
      entry: 'delegated/56, delegated/56',
      expected: [
        'sites/s1.yaml:17:32: error: providers isp1: ipv6.prefixes lists delegated twice; list it once',
      ],
    },
    {
      name: 'no length while NPTv6 needs one',
      entry: 'delegated',
      expected: [
        "sites/s1.yaml:17:17: error: providers isp1: ipv6.prefixes delegated has no length, so NPTv6 cannot map isp2's 2001:db8:2::/56 onto it; write delegated/56 if that is what the ISP delegates, or write ipv6.npt: false",
        'sites/s1.yaml:17:17: error: providers isp1: ipv6.prefixes delegated has no length, so NPTv6 onto isp2 cannot be checked or mapped; write delegated/LEN with the length the ISP delegates (e.g. delegated/56), or write ipv6.npt: false on isp2',
      ],
    },
    {
      name: 'a delegated length the other uplink has no prefix of',
      entry: 'delegated/60',
      expected: [
        "sites/s1.yaml:17:17: error: providers isp1: NPTv6 maps isp2's 2001:db8:2::/56 onto a prefix of the same length, and isp1's (delegated/60) are not /56; list a /56 of isp1's, or write ipv6.npt: false",
        "sites/s1.yaml:25:17: error: providers isp2: NPTv6 maps isp1's delegated/60 onto a prefix of the same length, and isp2's (2001:db8:2::/56) are not /60; list a /60 of isp2's, or write ipv6.npt: false",
      ],
    },
  ])('$name', ({ entry, expected }) => {
    expect(diagnostics(delegated(entry))).toEqual(expected);
  });
});
