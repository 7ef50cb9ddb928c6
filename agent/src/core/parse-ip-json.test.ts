// biome-ignore lint/style/noRestrictedImports: tests read recorded fixtures; the code under test stays pure.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { KernelRoute, KernelRule } from '../model/kernel-state.js';
import { IpJsonError, parseIpFacts, parseIpRoutes, parseIpRules } from './parse-ip-json.js';

const fixture = (name: string) =>
  readFileSync(new URL(`./fixtures/iproute2-6.1/${name}`, import.meta.url), 'utf8');

/** What the fixture namespace holds (see test/lab/record-fixtures.sh), in kernel order. */
const EXPECTED_RULES: KernelRule[] = [
  { priority: 0, action: 'lookup', table: 255, protocol: 2 },
  { priority: 900, action: 'lookup', table: 254, suppressPrefixlength: 0, protocol: 252 },
  { priority: 1000, action: 'lookup', table: 101, fwmark: 0x100, fwmask: 0xff00, protocol: 252 },
  { priority: 2000, action: 'lookup', table: 101, from: '198.51.100.2/32', protocol: 252 },
  { priority: 4002, action: 'lookup', table: 7, fwmark: 7, protocol: 0 },
  { priority: 5000, action: 'lookup', table: 150, from: '10.1.0.0/16', protocol: 0 },
  {
    priority: 10000,
    action: 'lookup',
    table: 102,
    from: '172.20.1.0/24',
    to: '192.0.2.128/25',
    iif: 'lan0',
    protocol: 252,
  },
  { priority: 10001, action: 'lookup', table: 101, oif: 'isp1', protocol: 252 },
  { priority: 10002, action: 'lookup', table: 102, uidrange: { start: 108, end: 108 }, protocol: 252 },
  {
    priority: 10003,
    action: 'lookup',
    table: 101,
    ipproto: 'tcp',
    dport: { start: 25, end: 25 },
    protocol: 252,
  },
  {
    priority: 10004,
    action: 'lookup',
    table: 101,
    ipproto: 'udp',
    sport: { start: 1000, end: 2000 },
    dport: { start: 53, end: 53 },
    protocol: 252,
  },
  { priority: 10005, action: 'lookup', table: 101, tos: 0x10, protocol: 252 },
  { priority: 10006, action: 'blackhole', from: '10.9.0.0/16', protocol: 252 },
  { priority: 10007, action: 'unreachable', from: '10.8.0.0/16', protocol: 252 },
  { priority: 10008, action: 'prohibit', from: '10.7.0.0/16', protocol: 252 },
  { priority: 10009, action: 'lookup', table: 101, ipproto: 'icmp', protocol: 252 },
  { priority: 10010, action: 'lookup', table: 102, fwmark: 5, protocol: 252 },
  {
    priority: 10011,
    action: 'lookup',
    table: 102,
    to: '203.0.113.0/24',
    ipproto: 'tcp',
    dport: { start: 8000, end: 8080 },
    protocol: 252,
  },
  { priority: 30000, action: 'lookup', table: 200, protocol: 252 },
  { priority: 32766, action: 'lookup', table: 254, protocol: 2 },
  { priority: 32767, action: 'lookup', table: 253, protocol: 2 },
];

const EXPECTED_ROUTES: KernelRoute[] = [
  { table: 101, dst: '0.0.0.0/0', type: 'unicast', gateway: '198.51.100.1', dev: 'isp1', protocol: 252 },
  { table: 101, dst: '10.60.0.0/16', type: 'blackhole', protocol: 252 },
  { table: 101, dst: '10.61.0.0/16', type: 'unreachable', protocol: 252 },
  { table: 101, dst: '10.62.0.0/16', type: 'prohibit', protocol: 252 },
  { table: 101, dst: '10.63.0.0/16', type: 'throw', protocol: 252 },
  { table: 101, dst: '203.0.113.7/32', type: 'unicast', gateway: '198.51.100.1', dev: 'isp1', protocol: 252 },
  {
    table: 102,
    dst: '0.0.0.0/0',
    type: 'unicast',
    gateway: '192.0.2.1',
    dev: 'isp2',
    src: '192.0.2.2',
    protocol: 252,
  },
  {
    table: 102,
    dst: '10.50.0.0/16',
    type: 'unicast',
    dev: 'isp2',
    scope: 'link',
    metric: 100,
    protocol: 252,
  },
  { table: 102, dst: '10.70.0.0/16', type: 'unicast', gateway: '192.0.2.4', dev: 'isp2', protocol: 3 },
  { table: 102, dst: '10.71.0.0/16', type: 'unicast', gateway: '192.0.2.4', dev: 'isp2', protocol: 4 },
  {
    table: 200,
    dst: '0.0.0.0/0',
    type: 'unicast',
    protocol: 252,
    nexthops: [
      { gateway: '198.51.100.1', dev: 'isp1', weight: 8 },
      { gateway: '192.0.2.1', dev: 'isp2', weight: 2 },
    ],
  },
  {
    table: 201,
    dst: '0.0.0.0/0',
    type: 'unicast',
    protocol: 252,
    nexthops: [
      { dev: 'isp1', weight: 1 },
      { dev: 'ppp0', weight: 3 },
    ],
  },
  {
    table: 254,
    dst: '0.0.0.0/0',
    type: 'unicast',
    gateway: '192.0.2.1',
    dev: 'isp2',
    metric: 100,
    protocol: 16,
  },
  {
    table: 254,
    dst: '100.64.0.1/32',
    type: 'unicast',
    dev: 'ppp0',
    scope: 'link',
    src: '100.64.0.2',
    protocol: 2,
  },
  {
    table: 254,
    dst: '172.20.1.0/24',
    type: 'unicast',
    dev: 'lan0',
    scope: 'link',
    src: '172.20.1.1',
    protocol: 2,
  },
  {
    table: 254,
    dst: '192.0.2.0/29',
    type: 'unicast',
    dev: 'isp2',
    scope: 'link',
    src: '192.0.2.2',
    protocol: 2,
  },
  {
    table: 254,
    dst: '198.51.100.0/29',
    type: 'unicast',
    dev: 'isp1',
    scope: 'link',
    src: '198.51.100.2',
    protocol: 2,
  },
];

describe('parseIpRules', () => {
  it('parses every selector and action from real `ip -4 -N -j -d rule show` output', () => {
    const skipped: string[] = [];
    const rules = parseIpRules(fixture('rule-show.json'), { onSkip: (_e, reason) => skipped.push(reason) });
    expect(rules).toEqual(EXPECTED_RULES);
    // not/goto, l3mdev and a protocol the model has no name for are foreign by construction.
    expect(skipped).toEqual([
      'rule has "not", which Uplink does not model',
      'rule has "l3mdev", which Uplink does not model',
      'rule ipproto "ipproto-47"',
    ]);
  });

  it('reads the symbolic output (without -N) the same way', () => {
    expect(parseIpRules(fixture('rule-show-names.json'))).toEqual(EXPECTED_RULES);
  });

  it('accepts already-parsed JSON and empty output', () => {
    expect(parseIpRules(JSON.parse(fixture('rule-show.json')))).toEqual(EXPECTED_RULES);
    expect(parseIpRules('')).toEqual([]);
    expect(parseIpRules('[]')).toEqual([]);
  });

  it.each([
    ['not JSON', '{', /not JSON/],
    ['not an array', '{"priority": 1}', /expected a JSON array/],
    ['an entry that is not an object', '[1]', /entry 0: not an object/],
    ['priority missing', '[{"src":"all","table":"254","protocol":"2"}]', /entry 0: priority/],
    [
      'bad source address',
      '[{"priority":1,"src":"10.0.0.300","table":"254"}]',
      /src: "10.0.0.300" is not an IPv4/,
    ],
    [
      'unknown protocol name',
      '[{"priority":1,"table":"254","protocol":"frobnicate"}]',
      /protocol "frobnicate"/,
    ],
    ['table name from rt_tables', '[{"priority":1,"table":"isp1"}]', /run ip with -N/],
    ['bad fwmark', '[{"priority":1,"table":"254","fwmark":"0xzz"}]', /fwmark/],
  ])('rejects %s with a clear error', (_name, text, message) => {
    expect(() => parseIpRules(text)).toThrow(IpJsonError);
    expect(() => parseIpRules(text)).toThrow(message);
  });
});

describe('parseIpRoutes', () => {
  it('parses real `ip -4 -N -j -d route show table all` output, without table local', () => {
    expect(parseIpRoutes(fixture('route-show-table-all.json'))).toEqual(EXPECTED_ROUTES);
  });

  it('reads the symbolic output (without -N) the same way', () => {
    expect(parseIpRoutes(fixture('route-show-table-all-names.json'))).toEqual(EXPECTED_ROUTES);
  });

  it('skips what the model cannot hold instead of failing', () => {
    const skipped: string[] = [];
    const routes = parseIpRoutes(
      JSON.stringify([
        { type: 'multicast', dst: '224.0.0.0/4', dev: 'isp1', table: 'main', protocol: 'boot' },
        { type: 'unicast', dst: 'fe80::/64', dev: 'isp1', table: 'main', protocol: 'kernel' },
        { type: 'unicast', dst: '10.0.0.0/8', nhid: 5, table: 'main', protocol: 'static' },
        { type: 'unicast', dst: '10.1.0.0/16', dev: 'wg+x', table: 'main', protocol: 'static' },
      ]),
      { onSkip: (_e, reason) => skipped.push(reason) },
    );
    expect(routes).toEqual([]);
    expect(skipped).toHaveLength(4);
  });

  it.each([
    ['not JSON', 'nope', /not JSON/],
    ['dst missing', '[{"type":"1","table":"254","protocol":"2"}]', /dst/],
    ['bad dst', '[{"type":"1","dst":"10.0.0.0/40","table":"254"}]', /not an IPv4 prefix/],
    ['bad gateway', '[{"type":"1","dst":"default","gateway":"x","dev":"a","table":"254"}]', /gateway/],
    [
      'nexthops not a list',
      '[{"type":"1","dst":"default","table":"254","nexthops":{}}]',
      /nexthops is not an array/,
    ],
    ['metric not a number', '[{"type":"1","dst":"default","dev":"a","table":"254","metric":"1"}]', /metric/],
  ])('rejects %s with a clear error', (_name, text, message) => {
    expect(() => parseIpRoutes(text)).toThrow(IpJsonError);
    expect(() => parseIpRoutes(text)).toThrow(message);
  });
});

describe('parseIpFacts', () => {
  const facts = parseIpFacts(fixture('addr-show.json'), fixture('route-show-main.json'));

  it.each([
    [
      'isp1',
      true,
      [
        { address: '198.51.100.2', prefixLength: 29 },
        { address: '198.51.100.3', prefixLength: 29 },
      ],
    ],
    ['isp2', true, [{ address: '192.0.2.2', prefixLength: 29 }]],
    ['ppp0', false, [{ address: '100.64.0.2', prefixLength: 32, peer: '100.64.0.1' }]],
    ['lan0', true, [{ address: '172.20.1.1', prefixLength: 24 }]],
    ['spare', false, []],
    ['lo', true, [{ address: '127.0.0.1', prefixLength: 8 }]],
  ])('%s: up=%s with its IPv4 addresses, primary first', (name, up, addresses) => {
    expect(facts.interfaces[name]).toMatchObject({ exists: true, up, addresses });
  });

  it('detects the gateway of a default route in main on that interface (any protocol)', () => {
    expect(facts.interfaces.isp2?.detectedGateway).toBe('192.0.2.1');
    expect(facts.interfaces.isp1?.detectedGateway).toBeUndefined();
    expect(facts.interfaces.ppp0?.detectedGateway).toBeUndefined();
  });

  it('prefers the lowest metric and reads multipath defaults', () => {
    const routes = JSON.stringify([
      { dst: 'default', gateway: '192.0.2.9', dev: 'isp2', metric: 200 },
      { dst: 'default', gateway: '192.0.2.1', dev: 'isp2', metric: 100 },
      { dst: 'default', nexthops: [{ gateway: '198.51.100.1', dev: 'isp1', weight: 1 }] },
    ]);
    const result = parseIpFacts(fixture('addr-show.json'), routes);
    expect(result.interfaces.isp2?.detectedGateway).toBe('192.0.2.1');
    expect(result.interfaces.isp1?.detectedGateway).toBe('198.51.100.1');
  });

  it('rejects malformed addr output', () => {
    expect(() => parseIpFacts('[{"flags":[]}]', '[]')).toThrow(/ifname/);
    expect(() =>
      parseIpFacts('[{"ifname":"a","addr_info":[{"family":"inet","local":"x","prefixlen":8}]}]', '[]'),
    ).toThrow(/local/);
  });
});
