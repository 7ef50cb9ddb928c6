import { describe, expect, it } from 'vitest';
import { exampleDesiredState, exampleFacts } from '../../../test/support/example-desired-state.js';
import type { KernelState } from '../model/kernel-state.js';
import { diff } from './diff.js';
import { orderChanges } from './order-changes.js';
import { resolve } from './resolve.js';

describe('orderChanges', () => {
  it('orders sysctl, route-replace, rule-add, nft, rule-delete, route-delete', () => {
    // Moving from "isp2 on ppp1" to a readdressed ppp1 with a different table for isp2:
    // every kind of step appears.
    const before = resolve(exampleDesiredState(), exampleFacts(), {}).effective;
    const desired = exampleDesiredState();
    desired.sysctls['net.ipv4.conf.ppp1.rp_filter'] = '0';
    desired.nft = desired.nft.filter((r) => r.kind !== 'masquerade');
    for (const route of desired.routes) if (route.table === 102) route.table = 112;
    for (const rule of desired.rules) if (rule.table === 102) rule.table = 112;
    desired.routes.find((r) => r.id === 'isp1/default')!.gateway = {
      kind: 'literal',
      address: '198.51.100.254',
    };
    const after = resolve(desired, exampleFacts(), {}).effective;

    const steps = orderChanges(diff(after, before), { markMask: 0xff00 });
    const ops = steps.map((s) => s.op);
    const firstIndex = (op: string) => ops.indexOf(op as (typeof ops)[number]);
    const lastIndex = (op: string) => ops.lastIndexOf(op as (typeof ops)[number]);
    const sequence = [
      'sysctl-set',
      'route-replace',
      'rule-add',
      'nft-replace',
      'rule-delete',
      'route-delete',
    ];
    for (const op of sequence) expect(ops, op).toContain(op);
    for (let i = 1; i < sequence.length; i++) {
      expect(lastIndex(sequence[i - 1]!), `${sequence[i - 1]} before ${sequence[i]}`).toBeLessThan(
        firstIndex(sequence[i]!),
      );
    }
    expect(steps.find((s) => s.op === 'nft-replace')).toMatchObject({ markMask: 0xff00 });
    // The update of isp1's default is a replace, not a delete.
    expect(steps.filter((s) => s.op === 'route-delete' && s.route.table === 101)).toEqual([]);
  });

  it('revert is the same machinery: diff(snapshot, current) undoes the change', () => {
    const snapshot = resolve(exampleDesiredState(), exampleFacts(), {}).effective;
    const empty: KernelState = { rules: [], routes: [], nft: null, sysctls: {} };
    const steps = orderChanges(diff(empty, snapshot), { markMask: 0xff00 });
    expect(steps.map((s) => s.op)).toEqual([
      'nft-replace',
      ...snapshot.rules.map(() => 'rule-delete'),
      ...snapshot.routes.map(() => 'route-delete'),
    ]);
    const ops = steps.map((s) => s.op);
    expect(ops.indexOf('nft-replace')).toBeLessThan(ops.indexOf('rule-delete'));
    expect(ops.lastIndexOf('rule-delete')).toBeLessThan(ops.indexOf('route-delete'));
    expect(steps.find((s) => s.op === 'nft-replace')).toMatchObject({ rules: null });
  });
});
