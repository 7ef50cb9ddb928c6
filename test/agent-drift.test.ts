/**
 * Drift detection against the real kernel: the agent daemon runs in a router namespace
 * (ip monitor, nft poll, periodic check every second here), an apply is confirmed, then the
 * kernel is tampered with by hand. Each kind of tampering is reported with a precise
 * description; `heal` puts the confirmed state back; `report` leaves it and keeps reporting.
 * No timing is asserted: every wait polls with a generous deadline.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type DriftFinding, formatFinding } from '../agent/src/core/find-drift.js';
import type { DriftItem } from '../agent/src/model/protocol.js';
import { buildDriftRouter, DriftDaemon, driftDesired } from './agent-drift-lab.js';
import { requireRoot, useLab } from './lab/index.js';

interface Tampering {
  readonly name: string;
  readonly tamper: readonly string[];
  /** What drift must say (one of possibly several items). */
  readonly expected: DriftFinding;
  readonly items: number;
  /** The kernel holds the confirmed state for this object again. */
  readonly restored: (d: DriftDaemon) => Promise<boolean>;
}

const TAMPERING: readonly Tampering[] = [
  {
    name: 'ip rule del',
    tamper: ['ip', 'rule', 'del', 'priority', '2000'],
    expected: {
      object: 'rule priority 2000 from 198.51.100.2/32 lookup 101 proto 252',
      kind: 'missing',
      expected: 'priority 2000 from 198.51.100.2/32 lookup 101 proto 252',
      found: null,
    },
    items: 1,
    restored: async (d) => (await d.exec('ip', 'rule', 'show', 'priority', '2000')).includes('198.51.100.2'),
  },
  {
    name: 'a changed route',
    tamper: [
      'ip',
      'route',
      'replace',
      'default',
      'via',
      '198.51.100.3',
      'dev',
      'isp1',
      'table',
      '101',
      'proto',
      '252',
    ],
    expected: {
      object: 'route table 101 default',
      kind: 'changed',
      expected: 'default via 198.51.100.1 dev isp1 proto 252',
      found: 'default via 198.51.100.3 dev isp1 proto 252',
    },
    items: 1,
    restored: async (d) =>
      (await d.exec('ip', 'route', 'show', 'table', '101')).includes('default via 198.51.100.1'),
  },
  {
    name: 'nft flush table inet uplink',
    tamper: ['nft', 'flush', 'table', 'inet', 'uplink'],
    expected: {
      object: 'nft postrouting: oif ppp1 masquerade',
      kind: 'missing',
      expected: 'postrouting: oif ppp1 masquerade',
      found: null,
    },
    items: 5,
    restored: async (d) => (await d.exec('nft', 'list', 'table', 'inet', 'uplink')).includes('masquerade'),
  },
  {
    name: 'a changed sysctl',
    tamper: ['sysctl', '-qw', 'net.ipv4.conf.isp1.rp_filter=1'],
    expected: {
      object: 'sysctl net.ipv4.conf.isp1.rp_filter',
      kind: 'changed',
      expected: 'net.ipv4.conf.isp1.rp_filter = 2',
      found: 'net.ipv4.conf.isp1.rp_filter = 1',
    },
    items: 1,
    restored: async (d) => (await d.exec('sysctl', '-n', 'net.ipv4.conf.isp1.rp_filter')).trim() === '2',
  },
  {
    name: 'a deleted provider-table route',
    tamper: ['ip', 'route', 'del', 'default', 'table', '102'],
    expected: {
      object: 'route table 102 default',
      kind: 'missing',
      expected: 'default via 203.0.113.1 dev ppp1 proto 252',
      found: null,
    },
    items: 1,
    restored: async (d) => (await d.exec('ip', 'route', 'show', 'table', '102')).includes('default'),
  },
];

/** A foreign rule at one of Uplink's priorities: a `shadowed` warning, never touched. */
const FOREIGN_AT_OUR_PRIORITY: DriftFinding = {
  object: 'foreign rule priority 2000 from all lookup 50 proto 4',
  kind: 'shadowed',
  expected: "only Uplink's rule at priority 2000: priority 2000 from 198.51.100.2/32 lookup 101 proto 252",
  found: "a rule not written by Uplink at Uplink's priority 2000: priority 2000 from all lookup 50 proto 4",
};

function pick(items: readonly DriftItem[], object: string): DriftItem | undefined {
  return items.find((item) => item.object === object);
}

function strip(item: DriftItem | undefined): DriftFinding | undefined {
  if (item === undefined) return undefined;
  const { firstSeen: _firstSeen, ...finding } = item;
  return finding;
}

describe.skipIf(!requireRoot())('drift detection in a namespace', () => {
  const lab = useLab('drift');
  let router: string;

  beforeAll(async () => {
    router = await buildDriftRouter(lab.current);
  });

  /** Waits until a check ran after `since` (so "still reported" means re-checked, not stale). */
  async function checkedAfter(daemon: DriftDaemon, since: number): Promise<void> {
    await daemon.waitFor(
      async () => ((await daemon.status()).drift?.checkedAt ?? 0) > since,
      20_000,
      'a later check',
    );
  }

  describe('policy report', () => {
    let daemon: DriftDaemon;
    let generation = 0;
    beforeAll(async () => {
      daemon = await DriftDaemon.start(lab.current, router);
      expect(await daemon.applyConfirmed(driftDesired('report'), `r${generation++}`)).toBeGreaterThan(10);
      await daemon.waitForFirstCheck();
    });
    afterAll(async () => {
      await daemon?.close();
    });

    it('an untouched kernel has no drift', async () => {
      const status = await daemon.status();
      expect(status.drift).toMatchObject({ policy: 'report', items: [], shadowed: [], heals: 0 });
    });

    it.each(TAMPERING)('$name: reported precisely, left alone, still reported later', async (t) => {
      await daemon.exec(...t.tamper);
      await daemon.waitFor(
        async () => pick((await daemon.status()).drift?.items ?? [], t.expected.object) !== undefined,
        20_000,
        `drift of ${t.expected.object}`,
      );
      const first = (await daemon.status()).drift!;
      expect(strip(pick(first.items, t.expected.object))).toEqual(t.expected);
      expect(first.items).toHaveLength(t.items);
      expect(daemon.log).toContain(`drift: drift-lab: ${formatFinding(t.expected)}`);

      // Two more checks later: still there, same firstSeen, the kernel untouched, nothing healed.
      await checkedAfter(daemon, first.checkedAt!);
      const later = (await daemon.status()).drift!;
      await checkedAfter(daemon, later.checkedAt!);
      const last = (await daemon.status()).drift!;
      expect(pick(last.items, t.expected.object)?.firstSeen).toBe(
        pick(first.items, t.expected.object)!.firstSeen,
      );
      expect(last.heals).toBe(0);
      expect(await t.restored(daemon)).toBe(false);

      // The operator puts it right by applying the confirmed state again.
      await daemon.applyConfirmed(driftDesired('report'), `r${generation++}`);
      expect(await t.restored(daemon)).toBe(true);
      await daemon.waitFor(async () => (await daemon.status()).drift?.items.length === 0, 20_000, 'no drift');
    });

    it('a foreign rule at our priority is a shadowed warning and is left in place', async () => {
      await daemon.exec('ip', 'rule', 'add', 'priority', '2000', 'lookup', '50', 'proto', '4');
      try {
        await daemon.waitFor(
          async () => (await daemon.status()).drift?.shadowed.length === 1,
          20_000,
          'a shadowed warning',
        );
        const drift = (await daemon.status()).drift!;
        expect(strip(drift.shadowed[0])).toEqual(FOREIGN_AT_OUR_PRIORITY);
        expect(drift.items).toEqual([]);
        expect(daemon.log).toContain(`shadowed: drift-lab: ${formatFinding(FOREIGN_AT_OUR_PRIORITY)}`);
      } finally {
        await daemon.exec('ip', 'rule', 'del', 'priority', '2000', 'lookup', '50');
      }
      await daemon.waitFor(
        async () => (await daemon.status()).drift?.shadowed.length === 0,
        20_000,
        'no warning',
      );
    });
  });

  describe('policy heal', () => {
    let daemon: DriftDaemon;
    beforeAll(async () => {
      daemon = await DriftDaemon.start(lab.current, router);
      await daemon.applyConfirmed(driftDesired('heal'), 'h1');
      await daemon.waitForFirstCheck();
    });
    afterAll(async () => {
      await daemon?.close();
    });

    it.each(TAMPERING)('$name: reported precisely, then healed', async (t) => {
      const before = (await daemon.status()).drift!;
      expect(before.items).toEqual([]);
      await daemon.exec(...t.tamper);
      await daemon.waitFor(
        async () => {
          const drift = (await daemon.status()).drift!;
          return drift.heals > before.heals && drift.items.length === 0 && (await t.restored(daemon));
        },
        30_000,
        `a heal of ${t.expected.object}`,
      );
      expect(daemon.log).toContain(`drift: drift-lab: ${formatFinding(t.expected)}`);
      expect(daemon.log).toMatch(/drift: healed \d+ drifted object\(s\) of drift-lab/);
      const after = (await daemon.status()).drift!;
      expect(after.lastHeal).not.toBeNull();
    });

    it('a foreign rule at our priority is warned about but never removed', async () => {
      const heals = (await daemon.status()).drift!.heals;
      await daemon.exec('ip', 'rule', 'add', 'priority', '2000', 'lookup', '50', 'proto', '4');
      try {
        await daemon.waitFor(
          async () => (await daemon.status()).drift?.shadowed.length === 1,
          20_000,
          'a shadowed warning',
        );
        const first = (await daemon.status()).drift!;
        await checkedAfter(daemon, first.checkedAt!);
        const drift = (await daemon.status()).drift!;
        expect(strip(drift.shadowed[0])).toEqual(FOREIGN_AT_OUR_PRIORITY);
        expect(drift.items).toEqual([]);
        expect(drift.heals).toBe(heals);
        expect(await daemon.exec('ip', 'rule', 'show', 'priority', '2000')).toContain('lookup 50');
      } finally {
        await daemon.exec('ip', 'rule', 'del', 'priority', '2000', 'lookup', '50');
      }
    });
  });
});
