import { describe, expect, it } from 'vitest';
import { exampleDesiredState, exampleFacts } from '../../../test/support/example-desired-state.js';
import type { DesiredState } from '../model/desired-state.js';
import type { Facts, KernelRoute } from '../model/kernel-state.js';
import { resolve } from './resolve.js';

function route(effective: { routes: readonly KernelRoute[] }, table: number, dst = '0.0.0.0/0') {
  return effective.routes.find((r) => r.table === table && r.dst === dst);
}

function withInterface(name: string, change: Facts['interfaces'][string] | undefined): Facts {
  const facts = exampleFacts();
  if (change === undefined) delete facts.interfaces[name];
  else facts.interfaces[name] = change;
  return facts;
}

describe('resolve', () => {
  it('resolves every reference when all providers are available and up', () => {
    const { effective, unavailable, problems } = resolve(exampleDesiredState(), exampleFacts(), {});
    expect(unavailable).toEqual([]);
    expect(problems).toEqual([]);
    expect(route(effective, 101)).toEqual({
      table: 101,
      dst: '0.0.0.0/0',
      type: 'unicast',
      dev: 'eth1',
      gateway: '198.51.100.1',
      protocol: 252,
    });
    // provider-network → the connected network in canonical form, src → the address.
    expect(route(effective, 101, '198.51.100.0/24')).toMatchObject({ src: '198.51.100.10', scope: 'link' });
    // point-to-point: the peer is the gateway.
    expect(route(effective, 102)).toMatchObject({ dev: 'ppp1', gateway: '203.0.113.1' });
    // detect: the DHCP gateway.
    expect(route(effective, 103)).toMatchObject({ dev: 'eth2', gateway: '192.0.2.1' });
    expect(route(effective, 200)?.nexthops).toEqual([
      { dev: 'eth1', gateway: '198.51.100.1', weight: 8 },
      { dev: 'ppp1', gateway: '203.0.113.1', weight: 2 },
    ]);
    expect(effective.rules.find((r) => r.priority === 2001)).toMatchObject({
      from: '203.0.113.5/32',
      table: 102,
    });
    expect(effective.rules.every((r) => r.protocol === 252)).toBe(true);
    expect(effective.routes.every((r) => r.protocol === 252)).toBe(true);
    expect(effective.nft).toHaveLength(5);
    expect(effective.nft?.some((r) => 'provider' in r)).toBe(false);
    expect(effective.sysctls).toEqual({
      'net.ipv4.conf.eth1.rp_filter': '2',
      'net.ipv4.conf.ppp1.rp_filter': '2',
    });
  });

  const unavailableCases: { name: string; facts: Facts; provider: string; reason: string }[] = [
    {
      name: 'missing interface',
      facts: withInterface('ppp1', undefined),
      provider: 'isp2',
      reason: 'interface ppp1 does not exist',
    },
    {
      name: 'interface without IPv4 address',
      facts: withInterface('ppp1', { exists: true, up: true, addresses: [] }),
      provider: 'isp2',
      reason: 'interface ppp1 has no IPv4 address',
    },
    {
      name: 'detect without a detected gateway',
      facts: withInterface('eth2', {
        exists: true,
        up: true,
        addresses: [{ address: '192.0.2.50', prefixLength: 24 }],
      }),
      provider: 'isp3',
      reason: 'no gateway detected on eth2',
    },
    {
      name: 'interface administratively down',
      facts: withInterface('eth1', {
        exists: true,
        up: false,
        addresses: [{ address: '198.51.100.10', prefixLength: 24 }],
      }),
      provider: 'isp1',
      reason: 'interface eth1 is down',
    },
  ];

  it.each(unavailableCases)(
    '$name → provider unavailable, its objects dropped',
    ({ facts, provider, reason }) => {
      const desired = exampleDesiredState();
      const { effective, unavailable } = resolve(desired, facts, {});
      expect(unavailable).toEqual([{ provider, reason }]);
      const p = desired.providers.find((x) => x.name === provider)!;
      // No rule or route that requires it, and nothing into its table.
      expect(effective.rules.filter((r) => r.table === p.table)).toEqual([]);
      expect(effective.routes.filter((r) => r.table === p.table)).toEqual([]);
      // Its nexthop has left the balanced route.
      const balance = route(effective, 200);
      expect(JSON.stringify(balance ?? {})).not.toContain(`"${p.interface}"`);
      // Its nft rules are gone, the others stay.
      const nftInterfaces = (effective.nft ?? []).map((r) =>
        'oif' in r ? r.oif : 'iif' in r ? r.iif : undefined,
      );
      expect(nftInterfaces).not.toContain(p.interface);
      // Rules of the other providers are untouched.
      expect(effective.rules.find((r) => r.priority === 900)).toBeDefined();
    },
  );

  it('drops a sysctl of an interface that does not exist', () => {
    const { effective } = resolve(exampleDesiredState(), withInterface('ppp1', undefined), {});
    expect(effective.sysctls).toEqual({ 'net.ipv4.conf.eth1.rp_filter': '2' });
  });

  it('point-to-point without a peer routes by device only', () => {
    const facts = withInterface('ppp1', {
      exists: true,
      up: true,
      addresses: [{ address: '203.0.113.5', prefixLength: 32 }],
    });
    const { effective, unavailable } = resolve(exampleDesiredState(), facts, {});
    expect(unavailable).toEqual([]);
    expect(route(effective, 102)).toEqual({
      table: 102,
      dst: '0.0.0.0/0',
      type: 'unicast',
      dev: 'ppp1',
      scope: 'link',
      protocol: 252,
    });
    expect(route(effective, 200)?.nexthops).toContainEqual({ dev: 'ppp1', weight: 2 });
  });

  it('a down provider loses its default route and leaves the multipath route, keeps its rules', () => {
    const { effective: up } = resolve(exampleDesiredState(), exampleFacts(), {});
    const { effective: down, unavailable } = resolve(exampleDesiredState(), exampleFacts(), { isp2: 'down' });
    expect(unavailable).toEqual([]);
    expect(route(down, 102)).toBeUndefined();
    expect(down.rules).toEqual(up.rules);
    expect(down.nft).toEqual(up.nft);
    // One nexthop left: the kernel stores a plain route, weight dropped.
    expect(route(down, 200)).toEqual({
      table: 200,
      dst: '0.0.0.0/0',
      type: 'unicast',
      dev: 'eth1',
      gateway: '198.51.100.1',
      protocol: 252,
    });
  });

  it('drops the multipath route when no nexthop is left', () => {
    const { effective } = resolve(exampleDesiredState(), exampleFacts(), { isp1: 'down', isp2: 'down' });
    expect(route(effective, 200)).toBeUndefined();
    expect(route(effective, 103)).toBeDefined();
  });

  it('a PPP readdress moves the from-rule and the gateway', () => {
    const facts = withInterface('ppp1', {
      exists: true,
      up: true,
      addresses: [{ address: '203.0.113.77', prefixLength: 32, peer: '203.0.113.254' }],
    });
    const { effective: before } = resolve(exampleDesiredState(), exampleFacts(), {});
    const { effective: after } = resolve(exampleDesiredState(), facts, {});
    expect(before.rules.find((r) => r.priority === 2001)?.from).toBe('203.0.113.5/32');
    expect(after.rules.find((r) => r.priority === 2001)?.from).toBe('203.0.113.77/32');
    expect(route(after, 102)?.gateway).toBe('203.0.113.254');
  });

  it('is deterministic: input order does not change the output', () => {
    const desired = exampleDesiredState();
    const shuffled: DesiredState = {
      ...desired,
      rules: [...desired.rules].reverse(),
      routes: [...desired.routes].reverse(),
      nft: [...desired.nft].reverse(),
      sysctls: Object.fromEntries(Object.entries(desired.sysctls).reverse()),
    };
    const nexthopsReversed: DesiredState = {
      ...shuffled,
      routes: shuffled.routes.map((r) => (r.nexthops ? { ...r, nexthops: [...r.nexthops].reverse() } : r)),
    };
    const a = resolve(desired, exampleFacts(), {}).effective;
    const b = resolve(nexthopsReversed, exampleFacts(), {}).effective;
    expect(JSON.stringify(b)).toBe(JSON.stringify(a));
  });

  it('nft: none desired → no table; all providers unavailable → empty table', () => {
    const none = resolve({ ...exampleDesiredState(), nft: [] }, exampleFacts(), {});
    expect(none.effective.nft).toBeNull();
    const facts = exampleFacts();
    delete facts.interfaces.eth1;
    delete facts.interfaces.ppp1;
    expect(resolve(exampleDesiredState(), facts, {}).effective.nft).toEqual([]);
  });

  it('reports references to undeclared providers as problems', () => {
    const desired = exampleDesiredState();
    desired.rules.push({ id: 'typo', priority: 10020, action: 'lookup', table: 102, requires: 'isp9' });
    const { problems, effective } = resolve(desired, exampleFacts(), {});
    expect(problems).toEqual(['rule typo: provider isp9 is not declared']);
    expect(effective.rules.find((r) => r.priority === 10020)).toBeUndefined();
  });

  it('computes the connected network with host bits cleared', () => {
    const facts = withInterface('eth1', {
      exists: true,
      up: true,
      addresses: [{ address: '198.51.100.130', prefixLength: 25 }],
    });
    const { effective } = resolve(exampleDesiredState(), facts, {});
    expect(route(effective, 101, '198.51.100.128/25')).toBeDefined();
  });

  describe('health', () => {
    const withTargets = (targets: string[], enabled = true): DesiredState => {
      const desired = exampleDesiredState();
      desired.providers = desired.providers.map((p) =>
        p.name === 'isp1' ? { ...p, health: { ...p.health, targets, enabled } } : p,
      );
      return desired;
    };

    it('fallback takes over when no balanced provider is up', () => {
      const { effective, lastResort } = resolve(exampleDesiredState(), exampleFacts(), {
        isp1: 'down',
        isp2: 'down',
      });
      expect(lastResort).toBe(false);
      expect(route(effective, 200)).toBeUndefined();
      expect(route(effective, 101)).toBeUndefined();
      expect(route(effective, 103)).toMatchObject({ dev: 'eth2', gateway: '192.0.2.1' });
      expect(effective.rules.find((r) => r.priority === 30001)).toMatchObject({ table: 103 });
    });

    it('a down fallback loses its default route too', () => {
      const { effective } = resolve(exampleDesiredState(), exampleFacts(), { isp1: 'down', isp3: 'down' });
      expect(route(effective, 103)).toBeUndefined();
      expect(route(effective, 200)).toMatchObject({ dev: 'ppp1' });
    });

    it('last resort: every available provider down → all kept as if up', () => {
      const up = resolve(exampleDesiredState(), exampleFacts(), {});
      const allDown = resolve(exampleDesiredState(), exampleFacts(), {
        isp1: 'down',
        isp2: 'down',
        isp3: 'down',
      });
      expect(up.lastResort).toBe(false);
      expect(allDown.lastResort).toBe(true);
      expect(allDown.effective).toEqual(up.effective);
    });

    it('last resort counts available providers only', () => {
      const facts = withInterface('eth2', undefined);
      const r = resolve(exampleDesiredState(), facts, { isp1: 'down', isp2: 'down' });
      expect(r.lastResort).toBe(true);
      expect(route(r.effective, 200)?.nexthops).toHaveLength(2);
      // One of them up: no last resort, the down one is out.
      const one = resolve(exampleDesiredState(), facts, { isp1: 'down' });
      expect(one.lastResort).toBe(false);
      expect(route(one.effective, 101)).toBeUndefined();
    });

    it('probe targets get a /32 in the table of a down provider, the gateway none; up: none', () => {
      const desired = withTargets(['203.0.113.9', '198.51.100.1']);
      const { effective: up } = resolve(desired, exampleFacts(), {});
      expect(up.routes.filter((r) => r.table === 101 && r.dst.endsWith('/32'))).toEqual([]);
      const { effective: down } = resolve(desired, exampleFacts(), { isp1: 'down' });
      expect(route(down, 101)).toBeUndefined();
      expect(route(down, 101, '203.0.113.9/32')).toEqual({
        table: 101,
        dst: '203.0.113.9/32',
        type: 'unicast',
        dev: 'eth1',
        gateway: '198.51.100.1',
        protocol: 252,
      });
      expect(route(down, 101, '198.51.100.1/32')).toBeUndefined();
      // Last resort: the default route is back, no /32 needed.
      const all = resolve(desired, exampleFacts(), { isp1: 'down', isp2: 'down', isp3: 'down' });
      expect(route(all.effective, 101, '203.0.113.9/32')).toBeUndefined();
    });

    it('no probe routes while the provider is unavailable or probing is off', () => {
      const gone = resolve(withTargets(['203.0.113.9']), withInterface('eth1', undefined), { isp1: 'down' });
      expect(route(gone.effective, 101, '203.0.113.9/32')).toBeUndefined();
      const off = resolve(withTargets(['203.0.113.9'], false), exampleFacts(), { isp1: 'down' });
      expect(route(off.effective, 101, '203.0.113.9/32')).toBeUndefined();
    });
  });
});
