import { describe, expect, it } from 'vitest';
import { exampleDesiredState, exampleFacts } from '../../../test/support/example-desired-state.js';
import type { KernelRoute, KernelRule, KernelState } from '../model/kernel-state.js';
import { diff } from './diff.js';
import { resolve } from './resolve.js';

const empty: KernelState = { rules: [], routes: [], nft: null, sysctls: {} };

function effective(mutate: (d: ReturnType<typeof exampleDesiredState>) => void = () => {}): KernelState {
  const desired = exampleDesiredState();
  mutate(desired);
  return resolve(desired, exampleFacts(), {}).effective;
}

function summary(changes: ReturnType<typeof diff>): string[] {
  return changes.map((c) => `${c.action} ${c.key}`);
}

describe('diff', () => {
  it('is empty between a state and itself', () => {
    expect(diff(effective(), effective())).toEqual([]);
  });

  it('creates everything from an empty kernel', () => {
    const want = effective();
    const changes = diff(want, empty);
    expect(changes.filter((c) => c.kind === 'rule')).toHaveLength(want.rules.length);
    expect(changes.filter((c) => c.kind === 'route')).toHaveLength(want.routes.length);
    expect(changes.filter((c) => c.kind === 'nft')).toHaveLength(1);
    expect(changes.filter((c) => c.kind === 'sysctl').every((c) => c.action === 'create')).toBe(true);
  });

  it('changing one weight yields one route update and nothing else', () => {
    const changes = diff(
      effective((d) => {
        d.routes.find((r) => r.id === 'balance/default')!.nexthops![1]!.weight = 3;
      }),
      effective(),
    );
    expect(summary(changes)).toEqual(['update route table 200 default']);
    const [change] = changes;
    expect(change?.kind === 'route' && change.action === 'update' && change.after.nexthops?.[1]?.weight).toBe(
      3,
    );
  });

  it('changing one policy yields that rule deleted and created, nothing else', () => {
    const changes = diff(
      effective((d) => {
        d.rules.find((r) => r.id === 'policy:web/isp2')!.dport = { start: 443, end: 443 };
      }),
      effective(),
    );
    expect(summary(changes)).toEqual([
      'create rule priority 10010 from 172.20.1.0/24 ipproto tcp dport 443 lookup 102 proto 252',
      'delete rule priority 10010 from 172.20.1.0/24 ipproto tcp dport 80 lookup 102 proto 252',
    ]);
  });

  const routeCases: {
    name: string;
    before: Partial<KernelRoute>;
    after: Partial<KernelRoute>;
    expected: string[];
  }[] = [
    {
      name: 'gateway change is an update',
      before: {},
      after: { gateway: '198.51.100.254' },
      expected: ['update'],
    },
    { name: 'type change is an update', before: {}, after: { type: 'blackhole' }, expected: ['update'] },
    {
      name: 'metric change is delete + create',
      before: {},
      after: { metric: 10 },
      expected: ['create', 'delete'],
    },
    {
      name: 'dst change is delete + create',
      before: {},
      after: { dst: '192.0.2.0/24' },
      expected: ['create', 'delete'],
    },
    { name: 'metric 0 equals no metric', before: {}, after: { metric: 0 }, expected: [] },
    { name: 'scope global equals no scope', before: {}, after: { scope: 'global' }, expected: [] },
  ];

  it.each(routeCases)('route: $name', ({ before, after, expected }) => {
    const base: KernelRoute = {
      table: 101,
      dst: '0.0.0.0/0',
      type: 'unicast',
      dev: 'eth1',
      gateway: '198.51.100.1',
      protocol: 252,
    };
    const want: KernelState = { ...empty, routes: [{ ...base, ...after }] };
    const have: KernelState = { ...empty, routes: [{ ...base, ...before }] };
    expect(diff(want, have).map((c) => c.action)).toEqual(expected);
  });

  it('nexthop order does not matter', () => {
    const route = (nexthops: KernelRoute['nexthops']): KernelRoute => ({
      table: 200,
      dst: '0.0.0.0/0',
      type: 'unicast',
      nexthops,
      protocol: 252,
    });
    const a = { dev: 'eth1', gateway: '198.51.100.1', weight: 8 };
    const b = { dev: 'ppp1', weight: 2 };
    expect(diff({ ...empty, routes: [route([a, b])] }, { ...empty, routes: [route([b, a])] })).toEqual([]);
  });

  it('treats fwmask 0xffffffff as no mask and from 0.0.0.0/0 as from all', () => {
    const rule: KernelRule = { priority: 1000, action: 'lookup', table: 101, fwmark: 0x100, protocol: 252 };
    const read: KernelRule = { ...rule, fwmask: 0xffffffff, from: '0.0.0.0/0' };
    expect(diff({ ...empty, rules: [rule] }, { ...empty, rules: [read] })).toEqual([]);
  });

  it('deletes a duplicate of a wanted rule', () => {
    const rule: KernelRule = { priority: 1000, action: 'lookup', table: 101, fwmark: 0x100, protocol: 252 };
    expect(summary(diff({ ...empty, rules: [rule] }, { ...empty, rules: [rule, rule] }))).toEqual([
      'delete rule priority 1000 from all fwmark 0x100 lookup 101 proto 252',
    ]);
  });

  it('nft: any difference is one replace of the whole table, with the rule differences listed', () => {
    const want = effective();
    const have: KernelState = {
      ...want,
      nft: [
        ...(want.nft ?? []).filter((r) => r.kind !== 'masquerade'),
        { kind: 'unknown', chain: 'postrouting', text: 'counter' },
      ],
    };
    const changes = diff(want, have);
    expect(changes).toHaveLength(1);
    const [change] = changes;
    expect(change?.kind).toBe('nft');
    expect(change?.kind === 'nft' && change.details).toEqual([
      '- postrouting: counter (not written by Uplink)',
      '+ postrouting: oif eth1 masquerade',
      '+ postrouting: oif ppp1 masquerade',
    ]);
  });

  it('nft: table present vs absent differs even when empty', () => {
    expect(diff({ ...empty, nft: [] }, empty).map((c) => c.action)).toEqual(['replace']);
    expect(diff(empty, { ...empty, nft: [] }).map((c) => c.action)).toEqual(['replace']);
  });

  it('sysctl: changed value is an update, extra current keys are left alone', () => {
    const want: KernelState = { ...empty, sysctls: { 'net.ipv4.conf.ppp1.rp_filter': '2' } };
    const have: KernelState = {
      ...empty,
      sysctls: { 'net.ipv4.conf.ppp1.rp_filter': '1', 'net.ipv4.conf.eth9.rp_filter': '1' },
    };
    expect(diff(want, have)).toEqual([
      { kind: 'sysctl', action: 'update', key: 'net.ipv4.conf.ppp1.rp_filter', before: '1', after: '2' },
    ]);
  });
});
