/**
 * IPv6 kernel objects through the pure core (D180): `ip -6 -j` listings as iproute2 6.1 and
 * nftables 1.0.6 print them (recorded in a namespace on kernel 6.18), the batch lines written
 * for them, and the canonical forms that make a read-back compare equal to what was applied.
 */
import { describe, expect, it } from 'vitest';
import { canonicalizeRoute, routeIdentity } from './canonicalize-state.js';
import { parseIpFacts, parseIpRoutes, parseIpRules } from './parse-ip-json.js';
import { parseNftTable } from './parse-nft-json.js';
import { RenderError, renderIpBatchLine } from './render-ip-batch.js';
import { renderNftTable } from './render-nft.js';

const RULES6 = JSON.stringify([
  { priority: 0, src: 'all', table: '255', protocol: '2' },
  { priority: 900, src: 'all', table: '254', suppress_prefixlen: 0, protocol: '252' },
  { priority: 1000, src: 'all', fwmark: '0x100', fwmask: '0xff00', table: '101', protocol: '252' },
  { priority: 2000, src: '2001:db8:1::', srclen: 48, table: '101', protocol: '252' },
  { priority: 2000, src: '2001:db8:ff1::2', table: '101', protocol: '252' },
  { priority: 32766, src: 'all', table: '254', protocol: '2' },
]);

const ROUTES6 = JSON.stringify([
  {
    type: '1',
    dst: 'default',
    gateway: 'fe80::1',
    dev: 'upa',
    table: '101',
    protocol: '252',
    scope: '0',
    metric: 1024,
    flags: [],
    pref: 'medium',
  },
  {
    type: '1',
    dst: 'default',
    table: '200',
    protocol: '252',
    scope: '0',
    metric: 1024,
    flags: [],
    pref: 'medium',
    nexthops: [
      { gateway: '2001:db8:ff01::1', dev: 'upa', weight: 3, flags: [] },
      { gateway: 'fe80::1', dev: 'upb', weight: 1, flags: [] },
    ],
  },
  { type: '2', dst: '2001:db8:ff01::2', dev: 'upa', table: '255', protocol: '2', scope: '0', metric: 0 },
  { type: '5', dst: 'ff00::/8', dev: 'upa', table: '255', protocol: '2', scope: '0', metric: 256 },
]);

describe('IPv6 rules and routes', () => {
  it('parses ip -6 -j rule show into inet6 rules', () => {
    const rules = parseIpRules(RULES6, { family: 'inet6' });
    expect(rules.filter((r) => r.protocol === 252)).toEqual([
      {
        family: 'inet6',
        priority: 900,
        action: 'lookup',
        table: 254,
        suppressPrefixlength: 0,
        protocol: 252,
      },
      {
        family: 'inet6',
        priority: 1000,
        action: 'lookup',
        table: 101,
        fwmark: 0x100,
        fwmask: 0xff00,
        protocol: 252,
      },
      {
        family: 'inet6',
        priority: 2000,
        action: 'lookup',
        table: 101,
        from: '2001:db8:1::/48',
        protocol: 252,
      },
      {
        family: 'inet6',
        priority: 2000,
        action: 'lookup',
        table: 101,
        from: '2001:db8:ff1::2/128',
        protocol: 252,
      },
    ]);
  });

  it('parses ip -6 -j route show table all, leaving out table local; the read-back equals the canonical form', () => {
    const routes = parseIpRoutes(ROUTES6, { family: 'inet6' });
    expect(routes).toEqual([
      {
        family: 'inet6',
        table: 101,
        dst: '::/0',
        type: 'unicast',
        protocol: 252,
        gateway: 'fe80::1',
        dev: 'upa',
        metric: 1024,
      },
      {
        family: 'inet6',
        table: 200,
        dst: '::/0',
        type: 'unicast',
        protocol: 252,
        metric: 1024,
        nexthops: [
          { dev: 'upa', weight: 3, gateway: '2001:db8:ff01::1' },
          { dev: 'upb', weight: 1, gateway: 'fe80::1' },
        ],
      },
    ]);
    const written = canonicalizeRoute({
      family: 'inet6',
      table: 101,
      dst: '::/0',
      type: 'unicast',
      protocol: 252,
      gateway: 'fe80::1',
      dev: 'upa',
    });
    expect(written).toEqual(canonicalizeRoute(routes[0]!));
    expect(routeIdentity(written)).not.toBe(routeIdentity({ table: 101, dst: '0.0.0.0/0' }));
  });

  it('an IPv4 listing skips IPv6 routes and the other way round', () => {
    const skipped: string[] = [];
    const one = JSON.stringify([{ ...JSON.parse(ROUTES6)[0], dst: '2001:db8::/32' }]);
    expect(parseIpRoutes(one, { onSkip: (_e, r) => skipped.push(r) })).toEqual([]);
    expect(
      parseIpRoutes(JSON.stringify([{ dst: '192.0.2.0/24', dev: 'upa' }]), {
        family: 'inet6',
        onSkip: (_e, r) => skipped.push(r),
      }),
    ).toEqual([]);
    expect(skipped).toEqual(['not an IPv4 route', 'not an IPv6 route']);
  });

  it('renders ip -6 batch lines, refusing an IPv4 address in an IPv6 object', () => {
    expect(
      renderIpBatchLine({
        op: 'rule-add',
        rule: {
          family: 'inet6',
          priority: 2000,
          action: 'lookup',
          table: 101,
          from: '2001:db8:1::/48',
          protocol: 252,
        },
      }),
    ).toBe('rule add priority 2000 from 2001:db8:1::/48 lookup 101 protocol 252');
    expect(
      renderIpBatchLine({
        op: 'route-replace',
        route: {
          family: 'inet6',
          table: 200,
          dst: '::/0',
          type: 'unicast',
          protocol: 252,
          metric: 1024,
          nexthops: [
            { dev: 'upa', weight: 3, gateway: '2001:db8:ff01::1' },
            { dev: 'upb', weight: 1, gateway: 'fe80::1' },
          ],
        },
      }),
    ).toBe(
      'route replace ::/0 metric 1024 table 200 proto 252 nexthop via 2001:db8:ff01::1 dev upa weight 3 nexthop via fe80::1 dev upb weight 1',
    );
    expect(() =>
      renderIpBatchLine({
        op: 'rule-add',
        rule: {
          family: 'inet6',
          priority: 2000,
          action: 'lookup',
          table: 101,
          from: '198.51.100.0/24',
          protocol: 252,
        },
      }),
    ).toThrow(RenderError);
    expect(() =>
      renderIpBatchLine({
        op: 'route-replace',
        route: {
          family: 'inet6',
          table: 101,
          dst: '2001:DB8::/32',
          type: 'unicast',
          dev: 'upa',
          protocol: 252,
        },
      }),
    ).toThrow(/write 2001:db8:: instead of "2001:DB8::"/);
  });

  it('reads global IPv6 addresses past DAD and the RA default route as facts', () => {
    const addr = JSON.stringify([
      {
        ifname: 'isp2',
        flags: ['BROADCAST', 'UP', 'LOWER_UP'],
        operstate: 'UP',
        addr_info: [
          { family: 'inet', local: '198.51.100.10', prefixlen: 29 },
          { family: 'inet6', local: '2001:db8:ff2::2', prefixlen: 64, scope: 'global' },
          { family: 'inet6', local: '2001:db8:ff2::99', prefixlen: 64, scope: 'global', tentative: true },
          { family: 'inet6', local: 'fe80::1234', prefixlen: 64, scope: 'link' },
        ],
      },
    ]);
    const main6 = JSON.stringify([
      { dst: 'default', gateway: 'fe80::1', dev: 'isp2', protocol: 'ra', metric: 1024 },
      { dst: '2001:db8:ff2::/64', dev: 'isp2', protocol: 'kernel', metric: 256 },
    ]);
    expect(parseIpFacts(addr, '[]', main6).interfaces.isp2).toEqual({
      exists: true,
      up: true,
      addresses: [{ address: '198.51.100.10', prefixLength: 29 }],
      addresses6: [{ address: '2001:db8:ff2::2', prefixLength: 64 }],
      detectedGateway6: 'fe80::1',
    });
  });
});

describe('IPv6 in table inet uplink', () => {
  it('renders NPTv6 and IPv6 track rules, and reads back what nft stores (nfproto folded into ip6 saddr)', () => {
    const text = renderNftTable(
      [
        { kind: 'track-save', iif: 'isp1', mark: 0x100, family: 'ipv6' },
        { kind: 'npt', oif: 'isp2', from: '2001:db8:1::/48', to: '2001:db8:2::/48' },
      ],
      0xff00,
    );
    expect(text).toContain('meta nfproto ipv6 iifname "isp1" ct state new');
    expect(text).toContain(
      'meta nfproto ipv6 oifname "isp2" ip6 saddr 2001:db8:1::/48 snat ip6 prefix to 2001:db8:2::/48 comment "uplink:npt"',
    );
    const stored = {
      nftables: [
        { table: { family: 'inet', name: 'uplink', handle: 1 } },
        {
          chain: {
            family: 'inet',
            table: 'uplink',
            name: 'postrouting',
            handle: 3,
            type: 'nat',
            hook: 'postrouting',
            prio: 100,
            policy: 'accept',
          },
        },
        {
          rule: {
            family: 'inet',
            table: 'uplink',
            chain: 'postrouting',
            handle: 9,
            comment: 'uplink:npt',
            expr: [
              { match: { op: '==', left: { meta: { key: 'oifname' } }, right: 'isp2' } },
              {
                match: {
                  op: '==',
                  left: { payload: { protocol: 'ip6', field: 'saddr' } },
                  right: { prefix: { addr: '2001:db8:1::', len: 48 } },
                },
              },
              {
                snat: {
                  family: 'ip6',
                  addr: { prefix: { addr: '2001:db8:2::', len: 48 } },
                  flags: 'netmap',
                  type_flags: 'prefix',
                },
              },
            ],
          },
        },
      ],
    };
    expect(parseNftTable(stored, { markMask: 0xff00 })).toEqual([
      { kind: 'npt', oif: 'isp2', from: '2001:db8:1::/48', to: '2001:db8:2::/48' },
    ]);
  });
});
