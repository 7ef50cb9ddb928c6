import { describe, expect, it } from 'vitest';
import { type ProviderHealth, type StatusResult, statusResult } from '#agent/model';
import { breakGlassGeneration } from './generation.js';
import { boundTimeline, type TimelineEntry, timelineFromReport } from './site-timeline.js';

const H = 'a'.repeat(64);
const C = '1'.repeat(40);

function status(over: Partial<StatusResult> = {}): StatusResult {
  return statusResult.parse({
    agent: '0.1.0',
    protocol: 1,
    site: 's',
    applied: { generation: `${C}-${H.slice(0, 12)}`, hash: H, site: 's', at: 1_000 },
    pending: null,
    lastRevert: null,
    owned: { rules: 0, routes: 0, nftRules: null, sysctls: 0 },
    facts: { interfaces: 2, providers: [] },
    health: [],
    drift: { policy: 'report', checkedAt: 1_000, items: [], shadowed: [], heals: 0, lastHeal: null },
    now: 2_000,
    ...over,
  });
}

const isp1 = (
  transitions: ProviderHealth['transitions'],
  state: ProviderHealth['state'],
): ProviderHealth => ({
  name: 'isp1',
  state,
  since: transitions.at(-1)?.at ?? null,
  probing: true,
  latencyMs: state === 'up' ? 2.5 : null,
  loss: state === 'down' ? 1 : 0,
  transitions,
});

const item = {
  object: 'rule priority 30000',
  kind: 'missing' as const,
  expected: 'lookup 200',
  found: null,
  firstSeen: 5_000,
};

/** Feeds reports in order, as the daemon does, and returns the whole timeline. */
function feed(reports: Parameters<typeof timelineFromReport>[1][]): TimelineEntry[] {
  let timeline: TimelineEntry[] = [];
  for (const r of reports) timeline = [...timeline, ...timelineFromReport(timeline, r)];
  return timeline;
}

describe('timelineFromReport', () => {
  it('a failover and its recovery: since when, why, loss and latency; each transition once', () => {
    const downAt = {
      at: 3_000,
      from: 'up' as const,
      to: 'down' as const,
      reason: '3 failed rounds in a row: 0/1 targets answered',
    };
    const upAt = { at: 9_000, from: 'down' as const, to: 'up' as const, reason: '5 good rounds in a row' };
    const t = feed([
      { at: 3_500, reachable: true, status: status({ health: [isp1([downAt], 'down')] }) },
      { at: 4_000, reachable: true, status: status({ health: [isp1([downAt], 'down')] }) },
      { at: 9_500, reachable: true, status: status({ health: [isp1([downAt, upAt], 'up')] }) },
    ]);
    expect(t.map((e) => [e.kind, e.at, e.provider])).toEqual([
      ['provider-down', 3_000, 'isp1'],
      ['provider-up', 9_000, 'isp1'],
    ]);
    expect(t[0]).toMatchObject({ level: 'warn', loss: 1, latencyMs: null });
    expect(t[0]!.message).toBe(
      'isp1 up → down: 3 failed rounds in a row: 0/1 targets answered (loss 100%, latency —)',
    );
    expect(t[1]!.message).toContain('(loss 0%, latency 2.5 ms)');
  });

  it('drift found, then cleared when the agent no longer reports it', () => {
    const drifted = status({
      drift: { policy: 'heal', checkedAt: 5_100, items: [item], shadowed: [], heals: 0, lastHeal: null },
    });
    const clean = status({
      drift: { policy: 'heal', checkedAt: 7_000, items: [], shadowed: [], heals: 1, lastHeal: 6_000 },
    });
    const t = feed([
      { at: 5_200, reachable: true, status: drifted },
      { at: 6_000, reachable: true, status: drifted },
      { at: 7_100, reachable: true, status: clean },
      { at: 8_000, reachable: true, status: clean },
    ]);
    expect(t.map((e) => [e.kind, e.at])).toEqual([
      ['drift-found', 5_000],
      ['drift-cleared', 7_000],
    ]);
    expect(t[0]!.message).toBe('drift: missing rule priority 30000; expected lookup 200');
    expect(t[1]!.message).toBe(
      'drift cleared: missing rule priority 30000; expected lookup 200 (healed by the agent)',
    );
  });

  it('a revert with its reason, a manual override with who and why, reachability changes', () => {
    const bg = breakGlassGeneration(
      'alice@example.net',
      'isp1 down',
      `abcdef123456+dirty-${'b'.repeat(12)}`,
    ).generation;
    const t = feed([
      {
        at: 2_000,
        reachable: true,
        status: status({
          lastRevert: { generation: `${C}-x`, hash: H, reason: 'confirm-timeout', at: 1_500, result: 'ok' },
        }),
      },
      { at: 3_000, reachable: false, error: 'connect ECONNREFUSED' },
      { at: 4_000, reachable: false, error: 'connect ECONNREFUSED' },
      {
        at: 5_000,
        reachable: true,
        status: status({ applied: { generation: bg, hash: 'b'.repeat(64), site: 's', at: 4_500 } }),
      },
    ]);
    expect(t.map((e) => e.kind)).toEqual(['reverted', 'unreachable', 'reachable', 'override']);
    expect(t[0]!.message).toBe(`the agent reverted generation ${C}-x (confirm-timeout)`);
    expect(t[1]!.message).toBe('status call failed: connect ECONNREFUSED');
    expect(t[3]!.message).toBe(`manual override by alice.example.net: isp1 down (generation ${bg})`);
  });

  it("the controller's own rollout generations are not recorded from reports", () => {
    expect(timelineFromReport([], { at: 2_000, reachable: true, status: status() })).toEqual([]);
    const manual = timelineFromReport([], {
      at: 2_000,
      reachable: true,
      status: status({
        applied: { generation: `abcdef123456-${H.slice(0, 12)}`, hash: H, site: 's', at: 1_900 },
      }),
    });
    expect(manual.map((e) => e.kind)).toEqual(['applied-outside']);
  });

  it('bounded: the newest entries, oldest first', () => {
    const entries = Array.from({ length: 10 }, (_, i) => ({
      at: 10 - i,
      level: 'info' as const,
      kind: 'x',
      message: `${i}`,
    }));
    expect(boundTimeline(entries, 3).map((e) => e.at)).toEqual([8, 9, 10]);
  });
});
