import { describe, expect, it } from 'vitest';
import { exampleFacts } from '../../../test/support/example-desired-state.js';
import type { KernelRoute, KernelRule } from '../model/kernel-state.js';
import type { Step } from '../model/steps.js';
import { DataplaneError } from './dataplane.js';
import { MemoryDataplane } from './memory.js';

const rule: KernelRule = {
  priority: 2000,
  action: 'lookup',
  table: 101,
  from: '198.51.100.10/32',
  protocol: 252,
};
const route: KernelRoute = {
  table: 101,
  dst: '0.0.0.0/0',
  type: 'unicast',
  dev: 'eth1',
  gateway: '198.51.100.1',
  protocol: 252,
};

async function applyError(dataplane: MemoryDataplane, steps: Step[]): Promise<string> {
  const error = await dataplane.apply(steps).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(DataplaneError);
  return (error as Error).message;
}

describe('MemoryDataplane', () => {
  it('rule-add of an identical rule fails like EEXIST, even with another protocol', async () => {
    const dataplane = new MemoryDataplane({ facts: exampleFacts(), rules: [{ ...rule, protocol: 4 }] });
    expect(await applyError(dataplane, [{ op: 'rule-add', rule }])).toMatch(/File exists/);
  });

  it('rule-delete of a missing rule fails', async () => {
    const dataplane = new MemoryDataplane({ facts: exampleFacts() });
    expect(await applyError(dataplane, [{ op: 'rule-delete', rule }])).toMatch(/No such file/);
  });

  it('route-replace upserts by (table, dst, metric), whatever the type', async () => {
    const dataplane = new MemoryDataplane({ facts: exampleFacts() });
    await dataplane.apply([{ op: 'route-replace', route }]);
    await dataplane.apply([{ op: 'route-replace', route: { ...route, gateway: '198.51.100.254' } }]);
    await dataplane.apply([{ op: 'route-replace', route: { ...route, metric: 10 } }]);
    expect(
      (await dataplane.readKernel({ sysctls: [] })).routes.map((r) => `${r.gateway} ${r.metric}`),
    ).toEqual(['198.51.100.254 undefined', '198.51.100.1 10']);
    const blackhole: KernelRoute = { table: 101, dst: '0.0.0.0/0', type: 'blackhole', protocol: 252 };
    await dataplane.apply([{ op: 'route-replace', route: blackhole }]);
    expect((await dataplane.readKernel({ sysctls: [] })).routes[0]).toEqual(blackhole);
  });

  it('route-replace checks the device and that the gateway is on-link', async () => {
    const dataplane = new MemoryDataplane({ facts: exampleFacts() });
    expect(await applyError(dataplane, [{ op: 'route-replace', route: { ...route, dev: 'eth9' } }])).toMatch(
      /Cannot find device "eth9"/,
    );
    expect(
      await applyError(dataplane, [{ op: 'route-replace', route: { ...route, gateway: '192.0.2.1' } }]),
    ).toMatch(/invalid gateway/);
    // PPP: the peer is on-link.
    await dataplane.apply([
      { op: 'route-replace', route: { ...route, dev: 'ppp1', gateway: '203.0.113.1' } },
    ]);
  });

  it('route-delete of a missing route fails', async () => {
    const dataplane = new MemoryDataplane({ facts: exampleFacts() });
    expect(await applyError(dataplane, [{ op: 'route-delete', route }])).toMatch(/No such process/);
  });

  it('nft-replace swaps the table, null deletes it', async () => {
    const dataplane = new MemoryDataplane({ facts: exampleFacts() });
    await dataplane.apply([
      { op: 'nft-replace', rules: [{ kind: 'masquerade', oif: 'ppp1' }], markMask: 0xff00 },
    ]);
    expect((await dataplane.readKernel({ sysctls: [] })).nft).toEqual([{ kind: 'masquerade', oif: 'ppp1' }]);
    await dataplane.apply([{ op: 'nft-replace', rules: null, markMask: 0xff00 }]);
    expect((await dataplane.readKernel({ sysctls: [] })).nft).toBeNull();
  });

  it('sysctl-set of a missing interface fails; reads return only requested, present keys', async () => {
    const dataplane = new MemoryDataplane({ facts: exampleFacts(), sysctls: { 'net.ipv4.ip_forward': '1' } });
    expect(
      await applyError(dataplane, [{ op: 'sysctl-set', key: 'net.ipv4.conf.ppp7.rp_filter', value: '2' }]),
    ).toMatch(/No such file/);
    await dataplane.apply([{ op: 'sysctl-set', key: 'net.ipv4.conf.ppp1.rp_filter', value: '2' }]);
    const kernel = await dataplane.readKernel({
      sysctls: ['net.ipv4.conf.ppp1.rp_filter', 'net.ipv4.conf.eth9.rp_filter'],
    });
    expect(kernel.sysctls).toEqual({ 'net.ipv4.conf.ppp1.rp_filter': '2' });
  });

  it('a failing step leaves the earlier ones applied, like ip -batch', async () => {
    const dataplane = new MemoryDataplane({ facts: exampleFacts() });
    dataplane.injectFault({ match: (_s, position) => position === 2, effect: 'throw' });
    await applyError(dataplane, [
      { op: 'rule-add', rule },
      { op: 'route-replace', route },
    ]);
    const kernel = await dataplane.readKernel({ sysctls: [] });
    expect(kernel.rules).toEqual([rule]);
    expect(kernel.routes).toEqual([]);
    // The fault fired once and is disarmed.
    await dataplane.apply([{ op: 'route-replace', route }]);
    expect((await dataplane.readKernel({ sysctls: [] })).routes).toEqual([route]);
  });

  it('reads are copies: mutating them does not change the kernel', async () => {
    const dataplane = new MemoryDataplane({ facts: exampleFacts(), rules: [rule] });
    const kernel = await dataplane.readKernel({ sysctls: [] });
    kernel.rules.pop();
    expect((await dataplane.readKernel({ sysctls: [] })).rules).toEqual([rule]);
  });
});
