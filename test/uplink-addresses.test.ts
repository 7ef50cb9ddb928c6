/**
 * Every address of an uplink, proven with real TCP (D92). A business line on ISP2 with a /29
 * — the router on .58, a service of the router's own on the secondary .59, a LAN server DNAT'd
 * (by the site's own nft table, not Uplink's) on .60 — plus a block the ISP routes to the
 * router (203.0.113.224/29, a DMZ of public servers). ISP1 carries default traffic and, like a
 * provider following BCP 38, drops packets whose source it did not assign: a reply that leaves
 * by the wrong uplink never arrives. Each check has a control: the rule removed by hand, the
 * connection fails.
 *
 * Track (CONNMARK) is off on ISP2 here, so the source rules are the only thing that can bring
 * a reply back to ISP2; the last test shows that replies of a DNAT'd LAN server need track
 * (the default): they are routed with the server's private source, before the un-DNAT.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DesiredState } from '../agent/src/model/desired-state.js';
import { type AgentDaemon, compileBranchSite, startAgentDaemon } from './branch-uplinks-lab.js';
import { buildDist } from './build-dist.js';
import { buildSiteTopology, type Lab, requireRoot, type SiteTopology, useLab } from './lab/index.js';
import { routeGet } from './scenarios/site-lab.js';

const CLIENT = '203.0.113.10';

const site = (track2: boolean) => `name: branch
management:
  address: 192.0.2.200
  hostKey: ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIML+nVa7QnPvbuqqJyg0QS0zd7Kx0gwdg6IYe6JF5Ts4
lan:
  - interface: lan0
    subnets: [172.20.60.0/24]
  - interface: dmz0
    subnets: [203.0.113.224/29]
providers:
  - name: isp1
    interface: wan1
    address: 198.51.100.2/30
    gateway: 198.51.100.1
    balance: 1
    health: { enabled: false }
  - name: isp2
    interface: enp3s0
    address: 198.51.100.58/29
    gateway: 198.51.100.57
    fallback: true
    track: ${track2}
    routed: [203.0.113.224/29]
    health: { enabled: false }
`;

/** The site's own firewall: DNAT of tcp/8080 on ISP2's .60 to the LAN server. Not Uplink's. */
const SITE_FIREWALL = `table ip site-fw {
  chain prerouting {
    type nat hook prerouting priority dstnat; policy accept;
    ip daddr 198.51.100.60 tcp dport 8080 dnat to 172.20.60.10:8080
  }
}
`;

describe.skipIf(!requireRoot())('every address of an uplink, with real TCP', () => {
  const lab = useLab('addrs');
  let topo: SiteTopology;
  let daemon: AgentDaemon;
  let desired: DesiredState;

  /** A TCP connection from the internet to `address:port`: true when the server's reply came back. */
  async function connects(l: Lab, address: string, port: number): Promise<boolean> {
    const result = await l.exec(
      topo.internet,
      ['socat', '-T', '2', '-u', 'OPEN:/dev/null', `TCP:${address}:${port},bind=${CLIENT},connect-timeout=2`],
      {
        allowFailure: true,
        timeoutMs: 10_000,
      },
    );
    return result.exitCode === 0;
  }

  /** Deletes one of Uplink's source rules by hand (drift is reported, not healed). */
  async function withoutRule(from: string, body: () => Promise<void>): Promise<void> {
    const line = (await daemon.exec('ip', 'rule', 'show'))
      .split('\n')
      .find((l) => l.includes(`from ${from} lookup`))!;
    const priority = line.split(':')[0]!;
    const table = /lookup (\d+)/.exec(line)![1]!;
    await daemon.exec(
      'ip',
      'rule',
      'del',
      'priority',
      priority,
      'from',
      from,
      'lookup',
      table,
      'protocol',
      '252',
    );
    try {
      await body();
    } finally {
      await daemon.exec(
        'ip',
        'rule',
        'add',
        'priority',
        priority,
        'from',
        from,
        'lookup',
        table,
        'protocol',
        '252',
      );
    }
  }

  beforeAll(async () => {
    buildDist();
    const l = lab.current;
    topo = await buildSiteTopology(l, {
      uplinks: [
        { name: 'wan1', kind: 'subnet', address: '198.51.100.2/30', gateway: '198.51.100.1' },
        { name: 'enp3s0', kind: 'subnet', address: '198.51.100.58/29', gateway: '198.51.100.57' },
      ],
      internetHosts: [CLIENT],
      lan: { routerIf: 'lan0', subnets: [{ router: '172.20.60.1/24', host: '172.20.60.10/24' }] },
      moreLans: [{ routerIf: 'dmz0', subnets: [{ router: '203.0.113.225/29', host: '203.0.113.226/29' }] }],
    });
    const isp2 = topo.uplink('enp3s0');
    // The /29's other addresses, on the router's uplink interface.
    await l.addr(topo.router, 'enp3s0', '198.51.100.59/29');
    await l.addr(topo.router, 'enp3s0', '198.51.100.60/29');
    // ISP2 routes the DMZ block to the router; the internet knows it is ISP2's.
    await l.route(isp2.ispNs, '203.0.113.224/29', 'via', '198.51.100.58');
    await l.route(topo.internet, '203.0.113.224/29', 'via', `100.64.${isp2.index}.1`);
    await l.exec(topo.router, ['nft', '-f', '-'], { stdin: SITE_FIREWALL });
    // Servers: one of the router's own on .59, the DNAT target on the LAN, a public one in the DMZ.
    for (const [ns, bind] of [
      [topo.router, '198.51.100.59'],
      [topo.lans[0]!.ns, '172.20.60.10'],
      [topo.lans[1]!.ns, '203.0.113.226'],
    ] as const) {
      for (const port of [7000, 8080]) {
        l.start(ns, ['socat', `TCP-LISTEN:${port},bind=${bind},reuseaddr,fork`, 'OPEN:/dev/null']);
      }
    }
    desired = compileBranchSite(site(false));
    daemon = await startAgentDaemon(l, topo.router);
    await daemon.applyConfirmed(desired, 'g1');
    await daemon.waitFor('a first drift check', async () => (await daemon.status()).drift?.checkedAt != null);
  }, 120_000);
  afterAll(async () => {
    await daemon?.close();
  });

  it('gives every address of the interface its source rule, and the routed block one', async () => {
    const rules = await daemon.exec('ip', 'rule', 'show');
    const table = desired.providers.find((p) => p.name === 'isp2')!.table;
    for (const from of ['198.51.100.58', '198.51.100.59', '198.51.100.60', '203.0.113.224/29']) {
      expect(rules).toContain(`from ${from} lookup ${table}`);
    }
    // The example: without the rule, this answered wan1.
    expect((await routeGet(lab.current, topo.router, '192.0.2.50', { from: '198.51.100.59' })).dev).toBe(
      'enp3s0',
    );
    // Default traffic still takes ISP1.
    expect(
      (await routeGet(lab.current, topo.router, '192.0.2.50', { from: '172.20.60.10', iif: 'lan0' })).dev,
    ).toBe('wan1');
  });

  it("a service of the router's on the secondary .59 answers via ISP2; without its rule it cannot", async () => {
    expect(await connects(lab.current, '198.51.100.59', 7000)).toBe(true);
    await withoutRule('198.51.100.59', async () => {
      expect(await connects(lab.current, '198.51.100.59', 7000)).toBe(false);
    });
    expect(await connects(lab.current, '198.51.100.59', 7000)).toBe(true);
  });

  it('a public server in the routed block answers via ISP2; without the routed rule it cannot', async () => {
    expect(await connects(lab.current, '203.0.113.226', 7000)).toBe(true);
    await withoutRule('203.0.113.224/29', async () => {
      expect(await connects(lab.current, '203.0.113.226', 7000)).toBe(false);
    });
  });

  it('addresses added and removed on the uplink gain and lose their rule, and none of it is drift', async () => {
    const checkedAt = (await daemon.status()).drift!.checkedAt!;
    await lab.current.exec(topo.router, ['ip', 'addr', 'add', '198.51.100.61/29', 'dev', 'enp3s0']);
    await daemon.waitFor('a rule for .61', async () =>
      (await daemon.exec('ip', 'rule', 'show')).includes('from 198.51.100.61 lookup'),
    );
    await lab.current.exec(topo.router, ['ip', 'addr', 'del', '198.51.100.61/29', 'dev', 'enp3s0']);
    await daemon.waitFor(
      '.61 gone',
      async () => !(await daemon.exec('ip', 'rule', 'show')).includes('198.51.100.61'),
    );
    await daemon.waitFor(
      'a later check',
      async () => ((await daemon.status()).drift?.checkedAt ?? 0) > checkedAt,
    );
    expect((await daemon.status()).drift).toMatchObject({ items: [], shadowed: [] });
  });

  it('a LAN server DNAT-ed on .60 needs track: its replies are routed before the un-DNAT, by their private source', async () => {
    // Track off on ISP2: the source rule for .60 cannot help (the reply's source is 172.20.60.10).
    expect(await connects(lab.current, '198.51.100.60', 8080)).toBe(false);
    // With track (the default), the connection's mark brings the replies back to ISP2.
    await daemon.applyConfirmed(compileBranchSite(site(true)), 'g2');
    expect(await connects(lab.current, '198.51.100.60', 8080)).toBe(true);
  });
});
