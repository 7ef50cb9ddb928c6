import { describe, expect, it } from 'vitest';
import { type ProviderHealth, type StatusResult, statusResult } from '#agent/model';
import { breakGlassGeneration, describeGeneration, shortGeneration } from './generation.js';
import { assessSiteState, SITE_STATES, type SiteFacts, type SiteState } from './site-state.js';

const H = 'a'.repeat(64);
const OLD = 'b'.repeat(64);
const C = '1'.repeat(40);

function status(over: Partial<StatusResult> = {}, health: ProviderHealth[] = []): StatusResult {
  return statusResult.parse({
    agent: '0.1.0',
    protocol: 1,
    site: 's',
    applied: { generation: `${C}-${H.slice(0, 12)}`, hash: H, site: 's', at: 1_000 },
    pending: null,
    lastRevert: null,
    owned: { rules: 0, routes: 0, nftRules: null, sysctls: 0 },
    facts: { interfaces: 2, providers: [] },
    health,
    drift: { policy: 'report', checkedAt: 1_000, items: [], shadowed: [], heals: 0, lastHeal: null },
    now: 2_000,
    ...over,
  });
}

const up = (name: string): ProviderHealth => ({
  name,
  state: 'up',
  since: 500,
  probing: true,
  latencyMs: 1.5,
  loss: 0,
  transitions: [],
});
const down = (name: string): ProviderHealth => ({
  ...up(name),
  state: 'down',
  loss: 1,
  latencyMs: null,
  transitions: [{ at: 900, from: 'up', to: 'down', reason: '3 failed rounds in a row' }],
});
const drifted = status({
  drift: {
    policy: 'report',
    checkedAt: 1_500,
    items: [{ object: 'rule priority 30000', kind: 'missing', expected: 'x', found: null, firstSeen: 1_200 }],
    shadowed: [],
    heals: 0,
    lastHeal: null,
  },
});

const base: SiteFacts = {
  desiredHash: H,
  report: { at: 2_000, reachable: true, status: status() },
  lastAttempted: undefined,
  lastApplied: undefined,
  rollout: undefined,
};

const cases: [string, Partial<SiteFacts>, SiteState, SiteState[]][] = [
  ['runs the target, healthy: in-sync', {}, 'in-sync', ['in-sync']],
  ['nothing known: unknown', { report: undefined }, 'unknown', ['unknown']],
  [
    'the status call failed: unreachable, even if it drifted when last seen',
    { report: { at: 3_000, reachable: false, error: 'ECONNREFUSED', status: drifted } },
    'unreachable',
    ['unreachable', 'drifted'],
  ],
  [
    'refused the target and runs the old state: failed (not out-of-date)',
    {
      report: {
        at: 2_000,
        reachable: true,
        status: status({ applied: { generation: `${C}-old`, hash: OLD, site: 's', at: 1 } }),
      },
      lastAttempted: { hash: H, outcome: 'refused', at: 1_900, error: 'management-path' },
    },
    'failed',
    ['failed'],
  ],
  [
    'an old failure is cleared by a later success (it runs the target now)',
    { lastAttempted: { hash: H, outcome: 'unconfirmed', at: 1_900 } },
    'in-sync',
    ['in-sync'],
  ],
  [
    'a failure of an older target does not count against the new one',
    {
      report: {
        at: 2_000,
        reachable: true,
        status: status({ applied: { generation: `${C}-old`, hash: OLD, site: 's', at: 1 } }),
      },
      lastAttempted: { hash: OLD, outcome: 'refused', at: 1_900 },
    },
    'out-of-date',
    ['out-of-date'],
  ],
  [
    'drift items: drifted',
    { report: { at: 2_000, reachable: true, status: drifted } },
    'drifted',
    ['drifted'],
  ],
  [
    'drifted and a provider down: drifted first, degraded listed',
    { report: { at: 2_000, reachable: true, status: { ...drifted, health: [down('isp1'), up('isp2')] } } },
    'drifted',
    ['drifted', 'degraded'],
  ],
  [
    'a provider down: degraded',
    { report: { at: 2_000, reachable: true, status: status({}, [down('isp1'), up('isp2')]) } },
    'degraded',
    ['degraded'],
  ],
  [
    'probes that cannot run: degraded',
    {
      report: {
        at: 2_000,
        reachable: true,
        status: status({}, [{ ...up('isp1'), state: 'unknown', probeError: 'cannot run ping' }]),
      },
    },
    'degraded',
    ['degraded'],
  ],
  [
    'an uplink the router cannot use (an LTE modem not plugged in): degraded, with the reason',
    {
      report: {
        at: 2_000,
        reachable: true,
        status: status({
          facts: {
            interfaces: 2,
            providers: [
              { name: 'isp1', interface: 'eth1', available: true },
              { name: 'lte', interface: 'wwan0', available: false, reason: 'interface wwan0 does not exist' },
            ],
          },
        }),
      },
    },
    'degraded',
    ['degraded'],
  ],
  [
    'a break-glass apply: overridden (not out-of-date)',
    {
      report: {
        at: 2_000,
        reachable: true,
        status: status({
          applied: {
            generation: breakGlassGeneration(
              'alice@example.net',
              'isp1 down',
              `abcdef123456+dirty-${OLD.slice(0, 12)}`,
            ).generation,
            hash: OLD,
            site: 's',
            at: 1_500,
          },
        }),
      },
    },
    'overridden',
    ['overridden'],
  ],
  [
    'another state, no rollout touching it: out-of-date',
    {
      report: {
        at: 2_000,
        reachable: true,
        status: status({ applied: { generation: 'x-1', hash: OLD, site: 's', at: 1 } }),
      },
    },
    'out-of-date',
    ['out-of-date'],
  ],
  [
    'waiting in the running rollout: rolling-out',
    {
      report: {
        at: 2_000,
        reachable: true,
        status: status({ applied: { generation: 'x-1', hash: OLD, site: 's', at: 1 } }),
      },
      rollout: 'pending',
    },
    'rolling-out',
    ['rolling-out'],
  ],
  [
    'the target pending confirmation: rolling-out',
    {
      report: {
        at: 2_000,
        reachable: true,
        status: status({
          applied: { generation: 'x-1', hash: OLD, site: 's', at: 1 },
          pending: { generation: `${C}-p`, hash: H, site: 's', at: 1_900, deadline: 31_900 },
        }),
      },
    },
    'rolling-out',
    ['rolling-out'],
  ],
  [
    'an apply that found no one, no answer since: unreachable',
    {
      report: {
        at: 1_000,
        reachable: true,
        status: status({ applied: { generation: 'x-1', hash: OLD, site: 's', at: 1 } }),
      },
      lastAttempted: { hash: H, outcome: 'unreachable', at: 1_900 },
    },
    'unreachable',
    ['unreachable', 'out-of-date'],
  ],
  [
    'from the state file alone (no report): in-sync by the last applied hash',
    { report: undefined, lastApplied: { hash: H, generation: `${C}-x` } },
    'in-sync',
    ['in-sync'],
  ],
];

describe('assessSiteState: one vocabulary, documented precedence', () => {
  it.each(cases)('%s', (_, over, state, conditions) => {
    const result = assessSiteState({ ...base, ...over });
    expect(result.state).toBe(state);
    expect(result.conditions.map((c) => c.state)).toEqual(conditions);
    expect(result.conditions[0]!.state).toBe(state);
  });

  it("an unavailable uplink is named with the agent's reason", () => {
    const [, over] = cases.find(([name]) => name.startsWith('an uplink the router cannot use'))!;
    expect(assessSiteState({ ...base, ...over }).conditions.map((c) => c.message)).toEqual([
      'provider lte unavailable: interface wwan0 does not exist',
    ]);
  });

  it('a delegated prefix the agent refused is a degraded condition, with its reason (D155)', () => {
    const r = assessSiteState({
      ...base,
      report: {
        at: 2_000,
        reachable: true,
        status: status({
          facts: {
            interfaces: 1,
            providers: [
              { name: 'isp1', interface: 'eth1', available: true },
              {
                name: 'isp1:ipv6',
                interface: 'eth1',
                available: true,
                refused: ['delegated prefix 2001:db8:1:300::/60 is a /60; the spec expects a /56'],
              },
            ],
          },
        }),
      },
    });
    expect(r.conditions.filter((c) => c.state === 'degraded').map((c) => c.message)).toEqual([
      'provider isp1:ipv6: delegated prefix 2001:db8:1:300::/60 is a /60; the spec expects a /56; not routed',
    ]);
  });

  it('every state is reachable by some case, and the precedence list names each once', () => {
    expect(new Set(SITE_STATES).size).toBe(SITE_STATES.length);
    expect(new Set(cases.map((c) => c[2]))).toEqual(new Set(SITE_STATES));
  });

  it('conditions name the subject and since when', () => {
    const r = assessSiteState({
      ...base,
      report: { at: 2_000, reachable: true, status: status({}, [down('isp1')]) },
    });
    expect(r.conditions[0]!.message).toMatch(
      /^provider isp1 down since 1970-01-01T00:00:00Z: 3 failed rounds in a row$/,
    );
  });
});

describe('generations', () => {
  it('a break-glass generation records who and why within the agent’s charset and length', () => {
    const { generation, recordedReason } = breakGlassGeneration(
      'Alice Ops <alice@example.net>',
      'ISP1 down since 10:40 — moving SMTP to isp2, ticket #4711 (approved by Bob on the phone)',
      `abcdef123456+dirty-${H.slice(0, 12)}`,
    );
    expect(generation.length).toBeLessThanOrEqual(100);
    expect(generation).toMatch(/^[A-Za-z0-9._:+-]+$/);
    const g = describeGeneration(generation);
    expect(g).toMatchObject({ commit: 'abcdef123456', dirty: true, hash12: H.slice(0, 12), rollback: false });
    expect(g.override?.by).toBe('Alice.Ops.alice.example.net');
    expect(g.override?.reason).toBe(recordedReason);
    expect(recordedReason).toBe('ISP1 down since 10 40 moving SMTP to');
    expect(shortGeneration(generation)).toBe(`override abcdef12+dirty-${H.slice(0, 6)}`);
  });

  it('reads the controller’s, a manual and a rollback generation', () => {
    expect(describeGeneration(`${C}-${H.slice(0, 12)}`)).toMatchObject({
      commit: C,
      override: null,
      dirty: false,
    });
    expect(describeGeneration(`abcdef123456-${H.slice(0, 12)}`)).toMatchObject({ commit: 'abcdef123456' });
    expect(describeGeneration(`${C}-${H.slice(0, 12)}-rollback`).rollback).toBe(true);
    expect(describeGeneration('g1')).toMatchObject({ commit: null, hash12: null, override: null });
    expect(shortGeneration(`${C}-${H.slice(0, 12)}`)).toBe(`11111111-${H.slice(0, 6)}`);
  });
});
