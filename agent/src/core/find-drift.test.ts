import { describe, expect, it } from 'vitest';
import { exampleDesiredState, exampleFacts } from '../../../test/support/example-desired-state.js';
import type { KernelState } from '../model/kernel-state.js';
import { type DriftInput, findDrift, overlaps, stampFirstSeen } from './find-drift.js';
import { ownershipScope } from './owned.js';
import { resolve } from './resolve.js';

/** The kernel exactly as Uplink would leave it, plus the kernel's own default rules. */
function inSync(): KernelState {
  const { effective } = resolve(exampleDesiredState(), exampleFacts(), {});
  return {
    ...effective,
    rules: [
      { priority: 0, action: 'lookup', table: 255, protocol: 2 },
      ...effective.rules,
      { priority: 32766, action: 'lookup', table: 254, protocol: 2 },
    ],
  };
}

function input(current: KernelState, health: DriftInput['health'] = {}): DriftInput {
  const desired = exampleDesiredState();
  return { desired, facts: exampleFacts(), health, current, scope: ownershipScope(desired) };
}

describe('findDrift', () => {
  it('finds nothing when the kernel holds the effective state', () => {
    expect(findDrift(input(inSync()))).toEqual({ items: [], shadowed: [] });
  });

  it('failover is not drift: a down provider without its default route is in sync', () => {
    const { effective } = resolve(exampleDesiredState(), exampleFacts(), { isp2: 'down' });
    expect(findDrift(input(effective, { isp2: 'down' })).items).toEqual([]);
    // …but the same kernel checked against "all up" is drift.
    expect(findDrift(input(effective)).items.map((i) => `${i.kind} ${i.object}`)).toEqual([
      'missing route table 102 default',
      'changed route table 200 default',
    ]);
  });

  it.each<[string, (k: KernelState) => KernelState, unknown[]]>([
    [
      'a deleted rule',
      (k) => ({ ...k, rules: k.rules.filter((r) => r.priority !== 2001) }),
      [
        {
          object: 'rule priority 2001 from 203.0.113.5/32 lookup 102 proto 252',
          kind: 'missing',
          expected: 'priority 2001 from 203.0.113.5/32 lookup 102 proto 252',
          found: null,
        },
      ],
    ],
    [
      'a rule edited in place',
      (k) => ({ ...k, rules: k.rules.map((r) => (r.priority === 2001 ? { ...r, table: 101 } : r)) }),
      [
        {
          object: 'rule priority 2001',
          kind: 'changed',
          expected: 'priority 2001 from 203.0.113.5/32 lookup 102 proto 252',
          found: 'priority 2001 from 203.0.113.5/32 lookup 101 proto 252',
        },
      ],
    ],
    [
      'a changed route',
      (k) => ({
        ...k,
        routes: k.routes.map((r) =>
          r.table === 101 && r.dst === '0.0.0.0/0' ? { ...r, gateway: '198.51.100.99' } : r,
        ),
      }),
      [
        {
          object: 'route table 101 default',
          kind: 'changed',
          expected: 'default via 198.51.100.1 dev eth1 proto 252',
          found: 'default via 198.51.100.99 dev eth1 proto 252',
        },
      ],
    ],
    [
      'an extra owned route',
      (k) => ({
        ...k,
        routes: [...k.routes, { table: 101, dst: '192.0.2.0/24', type: 'blackhole', protocol: 252 }],
      }),
      [
        {
          object: 'route table 101 192.0.2.0/24',
          kind: 'unexpected',
          expected: null,
          found: 'blackhole 192.0.2.0/24 proto 252',
        },
      ],
    ],
    [
      'a flushed nft table',
      (k) => ({ ...k, nft: [] }),
      [
        'missing nft prerouting: iif eth1 ct state new → ct mark 0x100',
        'missing nft prerouting: ct mark 0x100 → meta mark',
        'missing nft output: ct mark 0x100 → meta mark',
        'missing nft postrouting: oif eth1 masquerade',
        'missing nft postrouting: oif ppp1 masquerade',
      ],
    ],
    [
      'a deleted nft table',
      (k) => ({ ...k, nft: null }),
      [
        {
          object: 'nft table inet uplink',
          kind: 'missing',
          expected: 'table inet uplink with 5 rule(s)',
          found: null,
        },
      ],
    ],
    [
      'a changed sysctl',
      (k) => ({ ...k, sysctls: { ...k.sysctls, 'net.ipv4.conf.eth1.rp_filter': '1' } }),
      [
        {
          object: 'sysctl net.ipv4.conf.eth1.rp_filter',
          kind: 'changed',
          expected: 'net.ipv4.conf.eth1.rp_filter = 2',
          found: 'net.ipv4.conf.eth1.rp_filter = 1',
        },
      ],
    ],
  ])('%s', (_name, tamper, expected) => {
    const { items, shadowed } = findDrift(input(tamper(inSync())));
    expect(shadowed).toEqual([]);
    if (typeof expected[0] === 'string') {
      expect(items.map((i) => `${i.kind} ${i.object}`).sort()).toEqual([...(expected as string[])].sort());
    } else expect(items).toEqual(expected);
  });

  it('a foreign rule at one of our priorities is shadowing, not owned drift', () => {
    const k = inSync();
    const { items, shadowed } = findDrift(
      input({ ...k, rules: [...k.rules, { priority: 2000, action: 'lookup', table: 50, protocol: 4 }] }),
    );
    expect(items).toEqual([]);
    expect(shadowed).toEqual([
      {
        object: 'foreign rule priority 2000 from all lookup 50 proto 4',
        kind: 'shadowed',
        expected:
          "only Uplink's rule at priority 2000: priority 2000 from 198.51.100.10/32 lookup 101 proto 252",
        found:
          "a rule not written by Uplink at Uplink's priority 2000: priority 2000 from all lookup 50 proto 4",
      },
    ]);
  });

  it('a foreign catch-all before our rules shadows them; one that matches none of our traffic does not', () => {
    const k = inSync();
    const { shadowed } = findDrift(
      input({
        ...k,
        rules: [
          ...k.rules,
          { priority: 500, action: 'lookup', table: 50, protocol: 4 },
          // A mark none of our rules uses, for a uid none of them picks: no packet of ours.
          {
            priority: 600,
            action: 'lookup',
            table: 51,
            fwmark: 0x400,
            fwmask: 0xff00,
            uidrange: { start: 5, end: 5 },
            from: '192.0.2.128/25',
            protocol: 4,
          },
          // After every rule of ours that picks traffic (only catch-alls follow): the site's business.
          { priority: 20000, action: 'lookup', table: 53, protocol: 4 },
          // After all of ours except main's default: nothing of ours to shadow.
          { priority: 32000, action: 'lookup', table: 52, protocol: 4 },
        ],
      }),
    );
    expect(shadowed.map((s) => [s.object, s.expected])).toEqual([
      [
        'foreign rule priority 500 from all lookup 50 proto 4',
        "packets reach Uplink's rule priority 1000 from all fwmark 0x100/0xff00 lookup 101 proto 252 (and 6 more of Uplink's rules)",
      ],
    ]);
  });

  it("a rule for every packet into main, while main holds a DHCP client's default route, shadows even our catch-alls", () => {
    const k = inSync();
    const dhcpDefault = {
      table: 254,
      dst: '0.0.0.0/0',
      type: 'unicast' as const,
      dev: 'eth2',
      gateway: '192.0.2.33',
      metric: 100,
      protocol: 16,
    };
    const rules = [...k.rules, { priority: 20000, action: 'lookup' as const, table: 254, protocol: 4 }];
    // Without a default route in main the rule takes nothing our catch-alls would: the site's business.
    expect(findDrift(input({ ...k, rules })).shadowed).toEqual([]);
    const { shadowed } = findDrift(input({ ...k, rules, routes: [...k.routes, dhcpDefault] }));
    expect(shadowed.map((s) => [s.object, s.found])).toEqual([
      [
        'foreign rule priority 20000 from all lookup main proto 4',
        'priority 20000 from all lookup main proto 4 is evaluated first and table main holds a default route (default via 192.0.2.33 dev eth2 proto 16 metric 100): it takes every packet',
      ],
    ]);
    expect(shadowed[0]!.expected).toMatch(/^packets reach Uplink's rule priority 30000 from all lookup 200/);
  });

  it('a foreign rule capturing our mark is shadowing', () => {
    const k = inSync();
    const { shadowed } = findDrift(
      input({
        ...k,
        rules: [...k.rules, { priority: 700, action: 'lookup', table: 60, fwmark: 0x200, protocol: 3 }],
      }),
    );
    expect(shadowed.map((s) => s.expected)).toEqual([
      "packets reach Uplink's rule priority 1001 from all fwmark 0x200/0xff00 lookup 102 proto 252 (and 5 more of Uplink's rules)",
    ]);
  });

  it('a foreign route in a provider table is shadowing', () => {
    const k = inSync();
    const { items, shadowed } = findDrift(
      input({
        ...k,
        routes: [
          ...k.routes,
          { table: 101, dst: '192.0.2.0/24', type: 'unicast', dev: 'eth1', protocol: 3, scope: 'link' },
        ],
      }),
    );
    expect(items).toEqual([]);
    expect(shadowed).toEqual([
      {
        object: 'foreign route table 101 192.0.2.0/24',
        kind: 'shadowed',
        expected: "only Uplink's routes in table 101",
        found: 'a route not written by Uplink: 192.0.2.0/24 dev eth1 proto 3 scope link',
      },
    ]);
  });
});

describe('overlaps', () => {
  const base = { priority: 1, action: 'lookup' as const, table: 1, protocol: 4 };
  it.each([
    [{ from: '10.0.0.0/8' }, { from: '10.1.0.0/16' }, true],
    [{ from: '10.0.0.0/8' }, { from: '192.0.2.0/24' }, false],
    [{ fwmark: 0x100, fwmask: 0xff00 }, { fwmark: 0x1100, fwmask: 0xffff }, false],
    [{ fwmark: 0x100, fwmask: 0xff00 }, { fwmark: 0x10100 }, true],
    [{ dport: { start: 80, end: 80 } }, { dport: { start: 1, end: 79 } }, false],
    [{ iif: 'eth0' }, { iif: 'eth1' }, false],
    [{ iif: 'eth0' }, { to: '192.0.2.0/24' }, true],
  ])('%j vs %j → %s', (a, b, expected) => {
    expect(overlaps({ ...base, ...a }, { ...base, ...b })).toBe(expected);
  });
});

describe('stampFirstSeen', () => {
  it('keeps firstSeen while the same object drifts the same way', () => {
    const finding = {
      object: 'route table 101 default',
      kind: 'missing' as const,
      expected: 'x',
      found: null,
    };
    const first = stampFirstSeen([finding], [], 1000);
    const second = stampFirstSeen([{ ...finding, expected: 'y' }], first, 2000);
    expect(second[0]!.firstSeen).toBe(1000);
    const changedKind = stampFirstSeen([{ ...finding, kind: 'changed' }], second, 3000);
    expect(changedKind[0]!.firstSeen).toBe(3000);
  });
});
