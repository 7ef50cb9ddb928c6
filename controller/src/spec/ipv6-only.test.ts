/**
 * IPv6-only uplinks (`ipv4: false`, D165): an LTE modem on a mobile network that gives IPv6
 * only (NAT64 upstream) beside a dual-stack fibre line. The site compiles no IPv4 object for
 * the modem, its IPv6 half gets the full layout, the agent's schema accepts the state, and
 * every IPv4 key written (or inherited) for it is an error at its `file:line:col`.
 */
import { describe, expect, it } from 'vitest';
import { resolve } from '#agent/core';
import { receivedDesiredState, requiredRevision } from '#agent/model';
import { compileSite } from '../compile/compile-site.js';
import { formatDiagnostic } from './diagnostic.js';
import { loadFleet } from './load-fleet.js';

const KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEaBhMD+z0lxDQfAW10VyG7qYY4PRXHcvAYGlNrX3ReB';
const FLEET = 'rollout:\n  waves:\n    - name: all\n';

/** Lines 9–17 the fibre line (dual-stack), 18–25 the IPv6-only modem. */
function site(edit: (text: string) => string = (t) => t, extra = ''): string {
  const text = `name: s1
management:
  address: 192.0.2.10
  hostKey: ${KEY}
lan:
  - interface: br-lan
    subnets: [172.20.1.0/24, 2001:db8:1:1::/64, 2001:db8:2:1::/64]
providers:
  - name: fibre
    interface: enp1s0.100
    address: 198.51.100.2/30
    gateway: 198.51.100.1
    balance: 1
    ipv6:
      address: 2001:db8:ff01::2/64
      gateway: fe80::1
      prefixes: [2001:db8:1::/48]
  - name: lte
    interface: wwan0
    ipv4: false
    fallback: true
    ipv6:
      address: learned
      gateway: detect
      prefixes: [2001:db8:2::/48]
`;
  return edit(text) + extra;
}

function load(files: Record<string, string>) {
  return loadFleet(new Map(Object.entries({ 'fleet.yaml': FLEET, ...files })));
}

function diagnostics(text: string, groups: Record<string, string> = {}): string[] {
  return load({ 'sites/s1.yaml': text, ...groups }).diagnostics.map(formatDiagnostic);
}

function compile(text: string) {
  const result = load({ 'sites/s1.yaml': text });
  expect(result.diagnostics.map(formatDiagnostic)).toEqual([]);
  return compileSite(result.fleet!.sites[0]!);
}

describe('an IPv6-only uplink', () => {
  it('compiles no IPv4 object for it and the full IPv6 layout', () => {
    const state = compileSite(load({ 'sites/s1.yaml': site() }).fleet!.sites[0]!);
    const lte = state.providers.find((p) => p.name === 'lte')!;
    expect(lte.gateway).toEqual({ kind: 'none' });
    expect(lte.snat).toEqual({ kind: 'none' });
    const ipv4Of = (id: string) => id.includes('lte') && !id.includes('ipv6') && !id.includes('prefix');
    expect(state.rules.filter((r) => r.family === undefined && ipv4Of(r.id))).toEqual([]);
    expect(state.routes.filter((r) => r.family === undefined && ipv4Of(r.id))).toEqual([]);
    expect(state.nft.filter((r) => r.provider === 'lte' && !('family' in r) && r.kind !== 'npt')).toEqual([]);
    expect(Object.keys(state.sysctls).filter((k) => k.startsWith('net.ipv4.conf.wwan0'))).toEqual([]);
    expect(state.rules.filter((r) => r.family === 'inet6' && r.id.includes('lte')).map((r) => r.id)).toEqual([
      'track:lte:ipv6',
      'source:lte:ipv6',
      'source:lte:prefix#0',
      'fallback:lte:ipv6',
    ]);
    expect(state.routes.map((r) => r.id)).toContain('provider:lte:default:ipv6');
    // Its prefix is translated onto the fibre's when its hosts fail over, and back.
    expect(state.nft.filter((r) => r.kind === 'npt').map((r) => `${r.provider}:${r.from}`)).toEqual([
      'fibre:2001:db8:2::/48',
      'lte:2001:db8:1::/48',
    ]);
    expect(receivedDesiredState.safeParse(JSON.parse(JSON.stringify(state))).success).toBe(true);
    expect(requiredRevision(state).revision).toBe(4);
  });

  it('keeps the priorities of the other uplinks (the index among all providers)', () => {
    const withModem = compile(site());
    const without = compile(site((t) => t.split('  - name: lte')[0]!));
    const fibre = (s: typeof withModem) =>
      s.rules.filter((r) => r.id.includes('fibre')).map((r) => `${r.id}@${r.priority}`);
    expect(fibre(withModem)).toEqual(fibre(without));
  });

  it('routes an unaddressed policy through it over IPv6 only; an IPv4 one is an error', () => {
    const state = compile(
      site((t) => t, 'policies:\n  - name: dns\n    proto: udp\n    dport: 53\n    via: [lte]\n'),
    );
    const dns = state.rules.filter((r) => r.id.startsWith('policy:dns'));
    expect(dns.map((r) => `${r.id} ${r.family ?? 'inet'}`)).toEqual(['policy:dns:lte:ipv6#0 inet6']);
    expect(
      diagnostics(site((t) => t, 'policies:\n  - name: cams\n    from: 172.20.1.64/26\n    via: [lte]\n')),
    ).toEqual([
      'sites/s1.yaml:28:11: error: policies cams: IPv4 addresses, but lte is IPv6-only (ipv4: false); route it via fibre',
    ]);
    expect(
      diagnostics(site((t) => t, 'policies:\n  - name: ping\n    proto: icmp\n    via: [lte]\n')),
    ).toEqual([
      'sites/s1.yaml:29:10: error: policies ping: matches IPv4 packets only, but lte is IPv6-only (ipv4: false); route it via fibre',
    ]);
  });

  it('the agent leaves its IPv4 half out of availability and keeps its IPv6 half', () => {
    const state = compile(site());
    const interfaces = {
      'br-lan': { exists: true, up: true, addresses: [{ address: '172.20.1.1', prefixLength: 24 }] },
      'enp1s0.100': {
        exists: true,
        up: true,
        addresses: [{ address: '198.51.100.2', prefixLength: 30 }],
        addresses6: [{ address: '2001:db8:ff01::2', prefixLength: 64 }],
      },
      wwan0: {
        exists: true,
        up: true,
        addresses: [],
        addresses6: [{ address: '2001:db8:2:ff::5', prefixLength: 64 }],
        detectedGateway6: 'fe80::9',
      },
    };
    const result = resolve(state, { interfaces }, {});
    expect(result.unavailable).toEqual([]);
    expect(result.unavailable6).toEqual([]);
    const lteRoutes = result.effective.routes.filter((r) => r.dev === 'wwan0');
    expect(lteRoutes.map((r) => `${r.family ?? 'inet'} ${r.dst} ${r.gateway}`)).toEqual([
      'inet6 ::/0 fe80::9',
    ]);
  });

  it.each([
    [
      'an IPv4 gateway',
      (t: string) => t.replace('    ipv4: false\n', '    ipv4: false\n    gateway: detect\n'),
      'sites/s1.yaml:21:14: error: providers lte: an IPv6-only uplink (ipv4: false) has no IPv4 gateway; remove gateway',
    ],
    [
      'an IPv4 address',
      (t: string) => t.replace('    ipv4: false\n', '    ipv4: false\n    address: 10.64.0.2/30\n'),
      'sites/s1.yaml:21:14: error: providers lte: an IPv6-only uplink (ipv4: false) has no IPv4 address; remove address',
    ],
    [
      'an SNAT address',
      (t: string) => t.replace('    ipv4: false\n', '    ipv4: false\n    snat: 198.51.100.9\n'),
      'sites/s1.yaml:21:11: error: providers lte: an IPv6-only uplink (ipv4: false) has no IPv4 snat; remove snat',
    ],
    [
      'IPv4 probe targets',
      (t: string) =>
        t.replace('    ipv4: false\n', '    ipv4: false\n    health: { targets: [192.0.2.53] }\n'),
      'sites/s1.yaml:21:13: error: providers lte: an IPv6-only uplink (ipv4: false) has no IPv4 health.targets; IPv6 probe targets go under ipv6: health: targets:',
    ],
    [
      'no ipv6 block',
      (t: string) =>
        t.replace(
          / {4}ipv6:\n {6}address: learned\n {6}gateway: detect\n {6}prefixes: \[2001:db8:2::\/48\]\n/,
          '',
        ),
      'sites/s1.yaml:20:11: error: providers lte: ipv4: false leaves the uplink no address family; add an ipv6: block (e.g. gateway: detect) or remove ipv4: false',
    ],
  ])('refuses %s', (_what, edit, expected) => {
    expect(diagnostics(site(edit))).toEqual([expected]);
  });

  it('a missing IPv4 gateway on a dual-stack uplink suggests ipv4: false', () => {
    expect(diagnostics(site((t) => t.replace('    gateway: 198.51.100.1\n', '')))).toContain(
      'sites/s1.yaml:9:5: error: providers fibre: gateway is required; write an address (198.51.100.1), detect (DHCP) or point-to-point (PPP), or ipv4: false for an IPv6-only uplink',
    );
  });

  it('names the group a gateway is inherited from, and gateway: null drops it', () => {
    const group = 'name: cellular\nproviders:\n  - name: lte\n    interface: wwan0\n    gateway: detect\n';
    const inherited = site((t) => `${t.replace('name: s1\n', 'name: s1\nextends: [cellular]\n')}`);
    expect(diagnostics(inherited, { 'groups/cellular.yaml': group })).toEqual([
      'groups/cellular.yaml:5:14: error: site s1: providers lte: an IPv6-only uplink (ipv4: false) has no IPv4 gateway; gateway is inherited from groups/cellular.yaml; write gateway: null here',
    ]);
    const dropped = inherited.replace('    ipv4: false\n', '    ipv4: false\n    gateway: null\n');
    expect(diagnostics(dropped, { 'groups/cellular.yaml': group })).toEqual([]);
  });
});

describe('proto: icmpv6', () => {
  it('is an IPv6 rule with ipproto ipv6-icmp, never an IPv4 one', () => {
    const state = compile(
      site((t) => t, 'policies:\n  - name: ping6\n    proto: icmpv6\n    via: [lte, fibre]\n'),
    );
    const rules = state.rules.filter((r) => r.id.startsWith('policy:ping6'));
    expect(rules.map((r) => `${r.id} ${r.family ?? 'inet'} ${r.ipproto}`)).toEqual([
      'policy:ping6:lte:ipv6#0 inet6 ipv6-icmp',
      'policy:ping6:fibre:ipv6#1 inet6 ipv6-icmp',
    ]);
    expect(receivedDesiredState.safeParse(JSON.parse(JSON.stringify(state))).success).toBe(true);
  });

  it.each([
    [
      'with IPv4 addresses',
      'policies:\n  - name: ping6\n    proto: icmpv6\n    to: 192.0.2.0/24\n    via: [fibre]\n',
      'sites/s1.yaml:29:9: error: policies ping6: proto icmpv6 is ICMP for IPv6 and matches no IPv4 packet; list IPv6 addresses only, or use proto: icmp for IPv4',
    ],
    [
      'with ports',
      'policies:\n  - name: ping6\n    proto: icmpv6\n    dport: 7\n    via: [fibre]\n',
      'sites/s1.yaml:29:12: error: policies ping6: ports need a protocol; add proto: tcp or proto: udp',
    ],
  ])('refuses it %s', (_what, extra, expected) => {
    expect(diagnostics(site((t) => t, extra))).toEqual([expected]);
  });

  it('refuses it where no provider carries IPv6', () => {
    const v4only = site((t) =>
      t
        .split('  - name: lte')[0]!
        .replace(/ {4}ipv6:\n(?: {6}.*\n)+/, '')
        .replace(', 2001:db8:1:1::/64, 2001:db8:2:1::/64', ''),
    );
    expect(diagnostics(v4only, {}).length).toBe(0);
    expect(diagnostics(`${v4only}policies:\n  - name: ping6\n    proto: icmpv6\n    via: [fibre]\n`)).toEqual(
      [
        'sites/s1.yaml:16:12: error: policies ping6: proto icmpv6 matches IPv6 packets, but no provider has ipv6:; add an ipv6: block to the providers that carry IPv6, or use proto: icmp',
      ],
    );
  });
});
