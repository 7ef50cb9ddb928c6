import { describe, expect, it } from 'vitest';
import { MemoryDataplane } from '../dataplane/memory.js';
import type { KernelState } from '../model/kernel-state.js';
import { restoreSnapshot } from './restore-snapshot.js';
import type { SnapshotRecord } from './state-store.js';

const VLAN = 'enp2s0.7';
const up = (address: string) => ({ exists: true, up: true, addresses: [{ address, prefixLength: 24 }] });

/** What Uplink owned before the apply: a rule, routes on two uplinks (one a VLAN), their sysctls, nft. */
const before: KernelState = {
  rules: [{ priority: 2000, action: 'lookup', table: 101, from: '198.51.100.10/32', protocol: 252 }],
  routes: [
    { table: 101, dst: '0.0.0.0/0', type: 'unicast', dev: 'eth1', gateway: '198.51.100.1', protocol: 252 },
    { table: 103, dst: '0.0.0.0/0', type: 'unicast', dev: VLAN, gateway: '192.0.2.1', protocol: 252 },
  ],
  nft: [{ kind: 'masquerade', oif: 'eth1' }],
  sysctls: { 'net.ipv4.conf.eth1.rp_filter': '2', [`net.ipv4.conf.${VLAN}.rp_filter`]: '2' },
};

function snapshot(): SnapshotRecord {
  return {
    version: 1,
    createdAt: '2026-01-01T00:00:00.000Z',
    state: before,
    scope: {
      protocols: [252],
      tables: [101, 103],
      adoptTables: [],
      sysctls: ['net.ipv4.conf.eth1.rp_filter', `net.ipv4.conf.${VLAN}.rp_filter`],
    },
    markMask: 0xff00,
    previous: null,
  };
}

/** The kernel after an apply that changed everything, with the VLAN present. */
function changedKernel(): MemoryDataplane {
  return new MemoryDataplane({
    facts: { interfaces: { eth1: up('198.51.100.10'), [VLAN]: up('192.0.2.50') } },
    rules: [{ priority: 2005, action: 'lookup', table: 101, from: '198.51.100.10/32', protocol: 252 }],
    routes: [
      {
        table: 101,
        dst: '0.0.0.0/0',
        type: 'unicast',
        dev: 'eth1',
        gateway: '198.51.100.1',
        metric: 5,
        protocol: 252,
      },
      {
        table: 103,
        dst: '0.0.0.0/0',
        type: 'unicast',
        dev: VLAN,
        gateway: '192.0.2.1',
        metric: 5,
        protocol: 252,
      },
    ],
    nft: [{ kind: 'masquerade', oif: VLAN }],
    sysctls: { 'net.ipv4.conf.eth1.rp_filter': '0', [`net.ipv4.conf.${VLAN}.rp_filter`]: '0' },
  });
}

describe('restoreSnapshot converges (D101)', () => {
  it('restores everything when it can, in one go', async () => {
    const kernel = changedKernel();
    const result = await restoreSnapshot(kernel, snapshot());
    expect(result).toMatchObject({ skipped: [], failed: [] });
    expect(kernel.applyCalls).toBe(1);
    expect(kernel.dump().sysctls).toEqual(before.sysctls);
  });

  it('skips what a vanished interface took with it, restores the rest, and says what it skipped', async () => {
    const kernel = changedKernel();
    kernel.deleteInterface(VLAN);
    const result = await restoreSnapshot(kernel, snapshot());
    expect(result.failed).toEqual([]);
    expect(result.skipped.map((s) => s.object)).toEqual([
      `route table 103 default: default via 192.0.2.1 dev ${VLAN} proto 252`,
      `sysctl net.ipv4.conf.${VLAN}.rp_filter = 2`,
    ]);
    const now = kernel.dump();
    expect(now.rules).toEqual(before.rules);
    expect(now.routes.filter((r) => r.table === 101)).toEqual([before.routes[0]]);
    expect(now.nft).toEqual(before.nft);
    expect(now.sysctls['net.ipv4.conf.eth1.rp_filter']).toBe('2');
  });

  it('does not stop at a refused step: applies the others one by one and reports exactly what is left', async () => {
    const kernel = changedKernel();
    // The kernel refuses the rule every time it is tried (the whole-batch try and each pass).
    kernel.injectFault({ match: (step) => step.op === 'rule-add', effect: 'throw', times: 10 });
    const result = await restoreSnapshot(kernel, snapshot());
    expect(result.skipped).toEqual([]);
    expect(result.failed).toEqual([
      {
        object: 'rule priority 2000 from 198.51.100.10/32 lookup 101 proto 252',
        error: expect.stringMatching(/failed/),
      },
    ]);
    const now = kernel.dump();
    expect(now.sysctls).toEqual(before.sysctls);
    expect(now.nft).toEqual(before.nft);
    expect(now.routes).toEqual(before.routes);
    // The old rule went, as the snapshot says; only the refused one is missing.
    expect(now.rules).toEqual([]);
  });

  it('a refusal that goes away is retried within the same restore', async () => {
    const kernel = changedKernel();
    kernel.injectFault({ match: (step) => step.op === 'nft-replace', effect: 'throw', times: 1 });
    const result = await restoreSnapshot(kernel, snapshot());
    expect(result.failed).toEqual([]);
    expect(kernel.dump().nft).toEqual(before.nft);
  });
});
