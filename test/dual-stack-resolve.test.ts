/**
 * Per-family availability and health in resolve (D180, D183), on the compiled dual-stack lab
 * site: an IPv6 half that is down or unavailable leaves only its IPv6 objects, never IPv4's.
 */
import { describe, expect, it } from 'vitest';
import { resolve } from '../agent/src/core/resolve.js';
import { effectiveHealth } from '../agent/src/health/effective-health.js';
import type { Facts } from '../agent/src/model/kernel-state.js';
import { compileDualStackSite } from './dual-stack-lab.js';

const desired = compileDualStackSite();
const facts: Facts = {
  interfaces: {
    isp1: {
      exists: true,
      up: true,
      addresses: [{ address: '198.51.100.2', prefixLength: 29 }],
      addresses6: [{ address: '2001:db8:ff1::2', prefixLength: 64 }],
    },
    isp2: {
      exists: true,
      up: true,
      addresses: [{ address: '198.51.100.10', prefixLength: 29 }],
      addresses6: [{ address: '2001:db8:ff2::2', prefixLength: 64 }],
      detectedGateway6: '2001:db8:ff2::1',
    },
    lan0: { exists: true, up: true, addresses: [{ address: '172.20.1.1', prefixLength: 24 }] },
  },
};

const defaults = (state: ReturnType<typeof resolve>['effective']) =>
  state.routes
    .filter((r) => r.dst === '0.0.0.0/0' || r.dst === '::/0')
    .map((r) => `${r.family ?? 'inet'} ${r.table} ${r.nexthops?.map((h) => h.dev).join('+') ?? r.dev}`)
    .sort();

describe('resolve, per family', () => {
  it('all up: both families in every provider table and the balanced route', () => {
    expect(defaults(resolve(desired, facts, {}).effective)).toEqual([
      'inet 101 isp1',
      'inet 102 isp2',
      'inet 200 isp1+isp2',
      'inet6 101 isp1',
      'inet6 102 isp2',
      'inet6 200 isp1+isp2',
    ]);
  });

  it("isp1's IPv6 down, its IPv4 up: only the IPv6 default and nexthop go", () => {
    const result = resolve(desired, facts, { 'isp1:ipv6': 'down' });
    expect(defaults(result.effective)).toEqual([
      'inet 101 isp1',
      'inet 102 isp2',
      'inet 200 isp1+isp2',
      'inet6 102 isp2',
      'inet6 200 isp2',
    ]);
    // A /128 to its IPv6 probe target keeps the probes leaving by isp1.
    expect(
      result.effective.routes.some(
        (r) => r.family === 'inet6' && r.table === 101 && r.dst === '2001:db8:99::1/128',
      ),
    ).toBe(true);
    expect(result.lastResort6).toBe(false);
  });

  it('no RA on isp2 yet: its IPv6 half is unavailable, its IPv4 half is not', () => {
    const { detectedGateway6: _gone, ...isp2 } = facts.interfaces.isp2!;
    const result = resolve(desired, { interfaces: { ...facts.interfaces, isp2 } }, {});
    expect(result.unavailable).toEqual([]);
    expect(result.unavailable6).toEqual([
      { provider: 'isp2', reason: 'no IPv6 gateway detected on isp2 (no router advertisement yet)' },
    ]);
    expect(result.effective.rules.some((r) => r.family === 'inet6' && r.table === 102)).toBe(false);
    expect(result.effective.rules.some((r) => r.family === undefined && r.table === 102)).toBe(true);
    expect(
      result.effective.nft!.filter((r) => r.kind === 'npt').map((r) => r.kind === 'npt' && r.oif),
    ).toEqual(['isp1']);
  });

  it('every IPv6 half down: the IPv6 last resort keeps them, the IPv4 verdicts stand', () => {
    const health = { 'isp1:ipv6': 'down', 'isp2:ipv6': 'down', isp1: 'down' } as const;
    const result = resolve(desired, facts, health);
    expect(result.lastResort6).toBe(true);
    expect(result.lastResort).toBe(false);
    expect(defaults(result.effective)).toContain('inet6 200 isp1+isp2');
    expect(effectiveHealth(desired, facts, health)).toEqual({
      'isp1:ipv6': 'up',
      'isp2:ipv6': 'up',
      isp1: 'down',
    });
  });
});
