/**
 * LinuxDataplane against the real kernel, in throwaway namespaces: what it writes reads back
 * exactly, what it does not own survives byte-identical, and failures name the step.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { isIpStep, renderIpBatch } from '../agent/src/core/render-ip-batch.js';
import { renderNftTable } from '../agent/src/core/render-nft.js';
import { LinuxDataplane, StepFailedError } from '../agent/src/dataplane/linux.js';
import type { KernelNftRule, KernelRoute, KernelRule } from '../agent/src/model/kernel-state.js';
import type { Step } from '../agent/src/model/steps.js';
import { buildRouterTopology, type Lab, type RouterTopology, requireRoot, useLab } from './lab/index.js';

const PROTO = 252;
const MASK = 0xff00;

/** Routes and rules in the form the kernel reports them back (see parse-ip-json.ts). */
function ownedRoutes(topo: RouterTopology): KernelRoute[] {
  const [isp1, isp2, ppp] = topo.isps;
  return [
    {
      table: 101,
      dst: '0.0.0.0/0',
      type: 'unicast',
      gateway: isp1!.gateway,
      dev: isp1!.routerIf,
      protocol: PROTO,
    },
    {
      table: 102,
      dst: '0.0.0.0/0',
      type: 'unicast',
      gateway: isp2!.gateway,
      dev: isp2!.routerIf,
      src: isp2!.routerAddress,
      protocol: PROTO,
    },
    { table: 103, dst: '0.0.0.0/0', type: 'unicast', dev: ppp!.routerIf, scope: 'link', protocol: PROTO },
    { table: 101, dst: '10.60.0.0/16', type: 'blackhole', protocol: PROTO },
    { table: 101, dst: '10.61.0.0/16', type: 'unreachable', metric: 10, protocol: PROTO },
    { table: 101, dst: '10.62.0.0/16', type: 'prohibit', protocol: PROTO },
    { table: 101, dst: '10.63.0.0/16', type: 'throw', protocol: PROTO },
    {
      table: 102,
      dst: '203.0.113.7/32',
      type: 'unicast',
      gateway: isp2!.gateway,
      dev: isp2!.routerIf,
      protocol: PROTO,
    },
    {
      table: 200,
      dst: '0.0.0.0/0',
      type: 'unicast',
      protocol: PROTO,
      nexthops: [
        { gateway: isp1!.gateway, dev: isp1!.routerIf, weight: 8 },
        { gateway: isp2!.gateway, dev: isp2!.routerIf, weight: 2 },
        { dev: ppp!.routerIf, weight: 1 },
      ],
    },
  ];
}

function ownedRules(topo: RouterTopology): KernelRule[] {
  const [isp1, isp2] = topo.isps;
  return [
    { priority: 900, action: 'lookup', table: 254, suppressPrefixlength: 0, protocol: PROTO },
    { priority: 1000, action: 'lookup', table: 101, fwmark: 0x100, fwmask: MASK, protocol: PROTO },
    { priority: 1001, action: 'lookup', table: 102, fwmark: 0x200, fwmask: MASK, protocol: PROTO },
    { priority: 2000, action: 'lookup', table: 101, from: `${isp1!.routerAddress}/32`, protocol: PROTO },
    { priority: 2001, action: 'lookup', table: 102, from: `${isp2!.routerAddress}/32`, protocol: PROTO },
    {
      priority: 10000,
      action: 'lookup',
      table: 102,
      from: '172.20.1.0/25',
      to: '203.0.113.0/24',
      iif: 'lan0',
      protocol: PROTO,
    },
    { priority: 10001, action: 'lookup', table: 101, oif: isp1!.routerIf, protocol: PROTO },
    { priority: 10002, action: 'lookup', table: 102, uidrange: { start: 108, end: 108 }, protocol: PROTO },
    {
      priority: 10003,
      action: 'lookup',
      table: 101,
      ipproto: 'tcp',
      dport: { start: 25, end: 25 },
      protocol: PROTO,
    },
    {
      priority: 10004,
      action: 'lookup',
      table: 101,
      ipproto: 'udp',
      sport: { start: 1000, end: 2000 },
      dport: { start: 53, end: 53 },
      protocol: PROTO,
    },
    { priority: 10005, action: 'lookup', table: 101, tos: 0x10, protocol: PROTO },
    { priority: 10006, action: 'lookup', table: 102, fwmark: 0x7, protocol: PROTO },
    { priority: 10007, action: 'blackhole', from: '10.9.0.0/16', protocol: PROTO },
    { priority: 10008, action: 'unreachable', from: '10.8.0.0/16', protocol: PROTO },
    { priority: 10009, action: 'prohibit', to: '10.7.0.0/16', protocol: PROTO },
    {
      priority: 10010,
      action: 'lookup',
      table: 101,
      ipproto: 'icmp',
      from: '172.20.1.0/24',
      protocol: PROTO,
    },
    { priority: 30000, action: 'lookup', table: 200, protocol: PROTO },
  ];
}

function ownedNft(topo: RouterTopology): KernelNftRule[] {
  const [isp1, isp2, ppp] = topo.isps;
  // In the order parseNftTable returns: prerouting, output, postrouting.
  return [
    { kind: 'track-save', iif: isp1!.routerIf, mark: 0x100 },
    { kind: 'track-save', iif: isp2!.routerIf, mark: 0x200 },
    { kind: 'track-restore', chain: 'prerouting', mark: 0x100 },
    { kind: 'track-restore', chain: 'prerouting', mark: 0x200 },
    { kind: 'track-restore', chain: 'output', mark: 0x100 },
    { kind: 'track-restore', chain: 'output', mark: 0x200 },
    { kind: 'masquerade', oif: isp1!.routerIf },
    { kind: 'snat', oif: isp2!.routerIf, address: isp2!.routerAddress },
    { kind: 'masquerade', oif: ppp!.routerIf },
  ];
}

const byRouteKey = (a: KernelRoute, b: KernelRoute) =>
  a.table - b.table || a.dst.localeCompare(b.dst) || (a.metric ?? 0) - (b.metric ?? 0);

/** What `ip`/`nft` print for everything, as an administrator would compare it. */
async function kernelText(lab: Lab, ns: string): Promise<{ rules: string; routes: string; nft: string }> {
  const [rules, routes, tables] = await Promise.all([
    lab.run(['ip', '-n', ns, 'rule', 'show']),
    lab.run(['ip', '-n', ns, 'route', 'show', 'table', 'all']),
    lab.exec(ns, ['nft', 'list', 'tables']),
  ]);
  const foreignTables = tables.stdout
    .split('\n')
    .filter((line) => line.startsWith('table ') && line !== 'table inet uplink');
  const nft: string[] = [];
  for (const table of foreignTables) {
    nft.push((await lab.exec(ns, ['nft', 'list', ...table.split(' ')])).stdout);
  }
  return { rules: rules.stdout, routes: routes.stdout, nft: nft.join('') };
}

describe.skipIf(!requireRoot())('LinuxDataplane in a namespace', () => {
  const lab = useLab('dataplane');
  let topo: RouterTopology;
  let dataplane: LinuxDataplane;

  beforeAll(async () => {
    topo = await buildRouterTopology(lab.current, { isps: [{}, {}, { pointToPoint: true }] });
    dataplane = new LinuxDataplane({ netns: topo.router, markMask: MASK });
    const r = topo.router;
    // Foreign state Uplink must never touch: an untagged rule and routes, a fwmark rule
    // outside the mask, a DHCP-style default in main, and the site's own firewall table.
    await lab.current.run([
      'ip',
      '-n',
      r,
      'rule',
      'add',
      'priority',
      '5000',
      'from',
      '10.1.0.0/16',
      'lookup',
      '150',
    ]);
    await lab.current.run([
      'ip',
      '-n',
      r,
      'rule',
      'add',
      'priority',
      '5001',
      'fwmark',
      '0x1/0xff',
      'lookup',
      '150',
    ]);
    await lab.current.run([
      'ip',
      '-n',
      r,
      'route',
      'add',
      '10.1.0.0/16',
      'via',
      topo.isps[0]!.gateway,
      'table',
      '150',
    ]);
    await lab.current.run([
      'ip',
      '-n',
      r,
      'route',
      'add',
      'default',
      'via',
      topo.isps[1]!.gateway,
      'proto',
      'dhcp',
      'metric',
      '100',
    ]);
    await lab.current.run([
      'ip',
      '-n',
      r,
      'route',
      'add',
      '10.1.0.0/16',
      'via',
      topo.isps[0]!.gateway,
      'table',
      '101',
      'metric',
      '5',
    ]);
    await lab.current.exec(r, ['nft', '-f', '-'], {
      stdin: [
        'table inet filter {',
        '  chain input { type filter hook input priority filter; policy accept; tcp dport 22 accept; }',
        '  chain pre { type filter hook prerouting priority -160; policy accept; iifname "isp1" ct state new ct mark set 0x5; }',
        '}',
        '',
      ].join('\n'),
    });
  });

  it('applies routes, rules, nft and sysctls, reads back exactly them, and leaves the rest byte-identical', async () => {
    const r = topo.router;
    const rpKey = `net.ipv4.conf.${topo.isps[1]!.routerIf}.rp_filter`;
    const sysctlKeys = ['net.ipv4.ip_forward', rpKey, 'net.ipv4.conf.nosuch.rp_filter'];
    const before = await kernelText(lab.current, r);
    const initial = await dataplane.readKernel({ sysctls: sysctlKeys });
    expect(initial.nft).toBeNull();
    expect(initial.rules.filter((rule) => rule.protocol === PROTO)).toEqual([]);
    expect(initial.sysctls).toEqual({ 'net.ipv4.ip_forward': '1', [rpKey]: '0' });

    const routes = ownedRoutes(topo);
    const rules = ownedRules(topo);
    const nft = ownedNft(topo);
    const steps: Step[] = [
      ...routes.map((route): Step => ({ op: 'route-replace', route })),
      ...rules.map((rule): Step => ({ op: 'rule-add', rule })),
      { op: 'nft-replace', rules: nft, markMask: MASK },
      { op: 'sysctl-set', key: rpKey, value: '2' },
      { op: 'sysctl-set', key: 'net.ipv4.ip_forward', value: '1' },
    ];
    const spawnsBefore = dataplane.commandCount;
    await dataplane.apply(steps);
    // One ip -batch, one nft -f, one sysctl: process count does not depend on rule count.
    expect(dataplane.commandCount - spawnsBefore).toBe(3);

    const current = await dataplane.readKernel({ sysctls: sysctlKeys });
    const ownedRead = {
      rules: current.rules.filter((rule) => rule.protocol === PROTO),
      routes: current.routes.filter((route) => route.protocol === PROTO).sort(byRouteKey),
    };
    expect(ownedRead.rules).toEqual(rules);
    expect(ownedRead.routes).toEqual([...routes].sort(byRouteKey));
    expect(current.nft).toEqual(nft);
    expect(current.sysctls).toEqual({ 'net.ipv4.ip_forward': '1', [rpKey]: '2' });

    // Re-rendering what was read gives the same batch and transaction: a re-apply is a no-op.
    const readSteps: Step[] = [
      ...ownedRead.routes.map((route): Step => ({ op: 'route-replace', route })),
      ...ownedRead.rules.map((rule): Step => ({ op: 'rule-add', rule })),
    ];
    const sortedSteps = [
      ...[...routes].sort(byRouteKey).map((route): Step => ({ op: 'route-replace', route })),
      ...rules.map((rule): Step => ({ op: 'rule-add', rule })),
    ];
    expect(renderIpBatch(readSteps.filter(isIpStep))).toBe(renderIpBatch(sortedSteps.filter(isIpStep)));
    expect(renderNftTable(current.nft, MASK)).toBe(renderNftTable(nft, MASK));
    const tableBefore = (await lab.current.exec(r, ['nft', 'list', 'table', 'inet', 'uplink'])).stdout;
    await dataplane.apply([{ op: 'nft-replace', rules: current.nft, markMask: MASK }]);
    expect((await lab.current.exec(r, ['nft', 'list', 'table', 'inet', 'uplink'])).stdout).toBe(tableBefore);

    // While Uplink's objects are in place, the foreign ones are untouched.
    const during = await kernelText(lab.current, r);
    expect(during.nft).toBe(before.nft);
    expect(during.rules).toContain('5001:\tfrom all fwmark 0x1/0xff lookup 150');
    expect(during.routes).toContain(`default via ${topo.isps[1]!.gateway} dev isp2 proto dhcp metric 100`);

    // Delete everything Uplink wrote; the kernel must look exactly as before.
    await dataplane.apply([
      ...rules.map((rule): Step => ({ op: 'rule-delete', rule })),
      ...routes.map((route): Step => ({ op: 'route-delete', route })),
      { op: 'nft-replace', rules: null, markMask: MASK },
      { op: 'sysctl-set', key: rpKey, value: '0' },
    ]);
    const after = await kernelText(lab.current, r);
    expect(after).toEqual(before);
    expect((await dataplane.readKernel({ sysctls: [] })).nft).toBeNull();
    // Deleting a table that is not there is not an error either.
    await dataplane.apply([{ op: 'nft-replace', rules: null, markMask: MASK }]);
  });

  it('carries real traffic: LAN → internet through a provider table with masquerade', async () => {
    const [isp1] = topo.isps;
    const steps: Step[] = [
      {
        op: 'route-replace',
        route: {
          table: 101,
          dst: '0.0.0.0/0',
          type: 'unicast',
          gateway: isp1!.gateway,
          dev: isp1!.routerIf,
          protocol: PROTO,
        },
      },
      {
        op: 'rule-add',
        rule: { priority: 10000, action: 'lookup', table: 101, iif: 'lan0', protocol: PROTO },
      },
      { op: 'nft-replace', rules: [{ kind: 'masquerade', oif: isp1!.routerIf }], markMask: MASK },
    ];
    await dataplane.apply(steps);
    try {
      await lab.current.exec(topo.lan!.ns, ['ping', '-c', '1', '-W', '5', topo.internetHosts[0]!]);
    } finally {
      await dataplane.apply([
        { op: 'rule-delete', rule: (steps[1] as Extract<Step, { op: 'rule-add' }>).rule },
        { op: 'route-delete', route: (steps[0] as Extract<Step, { op: 'route-replace' }>).route },
        { op: 'nft-replace', rules: null, markMask: MASK },
      ]);
    }
  });

  it('track-save keeps ct mark bits outside the mask (a foreign rule set 0x5 first)', async () => {
    const [isp1] = topo.isps;
    await dataplane.apply([
      {
        op: 'nft-replace',
        rules: [{ kind: 'track-save', iif: isp1!.routerIf, mark: 0x100 }],
        markMask: MASK,
      },
    ]);
    try {
      // A new connection arriving on isp1: the site's rule (after conntrack, before mangle) sets ct mark 0x5,
      // ours then adds the provider bits under the mask: 0x105 = 261.
      await lab.current.exec(topo.internet, ['ping', '-c', '1', '-W', '5', isp1!.routerAddress]);
      const conntrack = await lab.current.exec(topo.router, [
        'conntrack',
        '-L',
        '-p',
        'icmp',
        '-d',
        isp1!.routerAddress,
      ]);
      expect(conntrack.stdout).toContain('mark=261');
    } finally {
      await dataplane.apply([{ op: 'nft-replace', rules: null, markMask: MASK }]);
    }
  });

  it('keeps the process count constant in the number of rules', async () => {
    const many = (count: number): KernelRule[] =>
      Array.from({ length: count }, (_, i) => ({
        priority: 11000 + i,
        action: 'lookup' as const,
        table: 101,
        from: `10.${Math.floor(i / 256)}.${i % 256}.0/24`,
        protocol: PROTO,
      }));
    for (const count of [5, 500]) {
      const rules = many(count);
      const start = dataplane.commandCount;
      await dataplane.apply(rules.map((rule): Step => ({ op: 'rule-add', rule })));
      await dataplane.readKernel({ sysctls: ['net.ipv4.ip_forward'] });
      await dataplane.apply(rules.map((rule): Step => ({ op: 'rule-delete', rule })));
      // apply (1) + readKernel (ip -4 and ip -6 batches for rules and routes, nft, sysctl: 4) + apply (1)
      expect(dataplane.commandCount - start).toBe(6);
    }
  });

  it('a refused batch line throws naming the line and step; lines before it stay applied', async () => {
    const [isp1] = topo.isps;
    const good = (dst: string): KernelRoute => ({
      table: 104,
      dst,
      type: 'unicast',
      dev: isp1!.routerIf,
      scope: 'link',
      protocol: PROTO,
    });
    const steps: Step[] = [
      { op: 'sysctl-set', key: 'net.ipv4.ip_forward', value: '1' },
      { op: 'route-replace', route: good('10.80.0.0/16') },
      // 203.0.113.99 is not on any link of the router: the kernel refuses the gateway.
      {
        op: 'route-replace',
        route: {
          table: 104,
          dst: '10.81.0.0/16',
          type: 'unicast',
          gateway: '203.0.113.99',
          dev: isp1!.routerIf,
          protocol: PROTO,
        },
      },
      { op: 'route-replace', route: good('10.82.0.0/16') },
      { op: 'nft-replace', rules: [], markMask: MASK },
    ];
    const error = await dataplane.apply(steps).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(StepFailedError);
    const failure = error as StepFailedError;
    expect(failure.message).toMatch(
      /^ip -batch line 2 \(step 2\) failed: .*invalid gateway.*10\.81\.0\.0\/16/,
    );
    expect(failure.stepIndex).toBe(2);
    expect(failure.appliedSteps).toBe(2);
    expect(failure.detail).toContain('Command failed -:2');
    // ip -batch stops at the first failure without undoing earlier lines: 10.80 is in,
    // 10.82 and the nft step after the batch never ran. The engine reverts from its snapshot.
    const table = await lab.current.run(['ip', '-n', topo.router, 'route', 'show', 'table', '104']);
    expect(table.stdout).toContain('10.80.0.0/16');
    expect(table.stdout).not.toContain('10.82.0.0/16');
    expect((await dataplane.readKernel({ sysctls: [] })).nft).toBeNull();
    await dataplane.apply([{ op: 'route-delete', route: good('10.80.0.0/16') }]);
  });

  it('a duplicate rule and a missing delete are kernel errors naming the step', async () => {
    const rule: KernelRule = { priority: 12000, action: 'lookup', table: 101, protocol: PROTO };
    await dataplane.apply([{ op: 'rule-add', rule }]);
    await expect(dataplane.apply([{ op: 'rule-add', rule }])).rejects.toThrow(
      /line 1 \(step 0\) failed: .*File exists/,
    );
    await dataplane.apply([{ op: 'rule-delete', rule }]);
    await expect(dataplane.apply([{ op: 'rule-delete', rule }])).rejects.toThrow(
      /No such file or directory|No such process/,
    );
    // A delete never removes a foreign object with the same selector: protocol is matched.
    await expect(
      dataplane.apply([
        {
          op: 'rule-delete',
          rule: { priority: 5000, action: 'lookup', table: 150, from: '10.1.0.0/16', protocol: PROTO },
        },
      ]),
    ).rejects.toThrow(StepFailedError);
    await expect(
      dataplane.apply([
        {
          op: 'route-delete',
          route: {
            table: 150,
            dst: '10.1.0.0/16',
            type: 'unicast',
            gateway: topo.isps[0]!.gateway,
            dev: 'isp1',
            protocol: PROTO,
          },
        },
      ]),
    ).rejects.toThrow(/No such process/);
  });

  it('reads facts: addresses, point-to-point peers, up state and the detected gateway', async () => {
    const [isp1, isp2, ppp] = topo.isps;
    const facts = await dataplane.readFacts();
    expect(facts.interfaces[isp1!.routerIf]).toEqual({
      exists: true,
      up: true,
      addresses: [{ address: isp1!.routerAddress, prefixLength: 29 }],
    });
    expect(facts.interfaces[ppp!.routerIf]).toEqual({
      exists: true,
      up: true,
      addresses: [{ address: ppp!.routerAddress, prefixLength: 32, peer: ppp!.gateway }],
    });
    // The DHCP-style default installed in beforeAll.
    expect(facts.interfaces[isp2!.routerIf]?.detectedGateway).toBe(isp2!.gateway);
    await lab.current.run(['ip', '-n', topo.router, 'link', 'set', 'dev', isp1!.routerIf, 'down']);
    try {
      expect((await dataplane.readFacts()).interfaces[isp1!.routerIf]?.up).toBe(false);
    } finally {
      await lab.current.run(['ip', '-n', topo.router, 'link', 'set', 'dev', isp1!.routerIf, 'up']);
    }
  });

  it('readCurrent reads exactly what readFacts + readKernel read, in 4 processes instead of 7', async () => {
    const [, isp2] = topo.isps;
    // Something in every listing: a foreign rule, an owned route, a main default via isp2.
    await lab.current.run([
      'ip',
      '-n',
      topo.router,
      'rule',
      'add',
      'pref',
      '4242',
      'from',
      '203.0.113.0/24',
      'table',
      '77',
    ]);
    await lab.current.run([
      'ip',
      '-n',
      topo.router,
      'route',
      'replace',
      'blackhole',
      '192.0.2.0/24',
      'table',
      '104',
      'proto',
      String(PROTO),
    ]);
    try {
      const sysctls = ['net.ipv4.ip_forward'];
      // The test before took isp1 down and up again; its carrier comes back asynchronously.
      for (let i = 0; i < 100 && !(await dataplane.readFacts()).interfaces[topo.isps[0]!.routerIf]?.up; i++) {
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      const separate = {
        facts: await dataplane.readFacts(),
        kernel: await dataplane.readKernel({ sysctls }),
      };
      const start = dataplane.commandCount;
      const fused = await dataplane.readCurrent({ sysctls });
      // One ip -batch (addresses, rules, routes of both families), ip -6 rules, nft, and sysctl (netns mode only).
      expect(dataplane.commandCount - start).toBe(4);
      expect(fused).toEqual(separate);
      expect(fused.facts.interfaces[isp2!.routerIf]?.detectedGateway).toBe(isp2!.gateway);
      expect(fused.kernel.rules.some((rule) => rule.priority === 4242)).toBe(true);
      expect(fused.kernel.routes.some((route) => route.table === 104 && route.type === 'blackhole')).toBe(
        true,
      );
    } finally {
      await lab.current.run(['ip', '-n', topo.router, 'rule', 'del', 'pref', '4242']);
      await lab.current.run(['ip', '-n', topo.router, 'route', 'del', '192.0.2.0/24', 'table', '104']);
    }
  });
});
