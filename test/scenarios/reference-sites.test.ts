/**
 * Every reference scenario, compiled from fleet-repo-example and applied by the engine to a
 * namespace router shaped like the site: each traffic class takes the intended uplink
 * (`ip route get` is the oracle), a second apply changes nothing, and revert puts `ip rule`,
 * `ip route show table all`, `nft list ruleset` and the touched sysctls back byte for byte.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DesiredState } from '../../agent/src/model/desired-state.js';
import { type Lab, requireRoot, type SiteTopology, useLab } from '../lab/index.js';
import {
  buildSiteLab,
  compileExampleSite,
  type ExampleSite,
  type KernelText,
  kernelText,
  routeGet,
  ruleLines,
  SiteAgent,
  setLink,
} from './site-lab.js';

const INTERNET_HOST = '203.0.113.10';

interface SiteContext {
  readonly lab: Lab;
  readonly topo: SiteTopology;
  readonly agent: SiteAgent;
  readonly desired: DesiredState;
}

/**
 * The common life cycle of a reference site: build, snapshot the kernel text, apply; the
 * site's own checks run in between; then "re-apply is a no-op" and "revert is exact".
 */
function describeSite(
  site: ExampleSite,
  tests: {
    /** Read-only checks of the first apply. */
    readonly routing: (get: () => SiteContext) => void;
    /** Checks that change state (failover); they run after the revert, on a fresh apply. */
    readonly failover?: (get: () => SiteContext) => void;
  },
): void {
  describe.skipIf(!requireRoot())(`reference site ${site}`, () => {
    const lab = useLab(site.replace(/-/g, '').slice(0, 8));
    let context: SiteContext;
    let before: KernelText;

    beforeAll(async () => {
      const desired = await compileExampleSite(site);
      const topo = await buildSiteLab(lab.current, site);
      const agent = await SiteAgent.create(topo.router, desired.settings.markMask);
      context = { lab: lab.current, topo, agent, desired };
      before = await kernelText(lab.current, topo.router, Object.keys(desired.sysctls));
      const report = await agent.apply(desired);
      expect(report.verified).toBe(true);
      expect(report.unavailable).toEqual([]);
      expect(report.changes.length).toBeGreaterThan(0);
    });
    afterAll(async () => {
      await context?.agent.dispose();
    });

    tests.routing(() => context);

    it('re-applying the same desired state changes nothing', async () => {
      const { agent, desired } = context;
      const spawns = agent.dataplane.commandCount;
      const report = await agent.apply(desired);
      expect(report.changes).toEqual([]);
      expect(report.steps).toEqual([]);
      // A no-op reconcile only reads: one ip -batch (addresses, rules, routes), ip -6 rules, nft, sysctl.
      expect(agent.dataplane.commandCount - spawns).toBe(4);
    });

    it('revert restores ip rule, ip route table all, nft ruleset and sysctls byte for byte', async () => {
      const { agent, topo, desired } = context;
      const report = await agent.revert();
      expect(report.changes.length).toBeGreaterThan(0);
      const after = await kernelText(context.lab, topo.router, Object.keys(desired.sysctls));
      expect(after.rules).toBe(before.rules);
      expect(after.routes).toBe(before.routes);
      expect(after.nft).toBe(before.nft);
      expect(after.sysctls).toBe(before.sysctls);
    });

    if (tests.failover !== undefined) {
      describe('applied again', () => {
        beforeAll(async () => {
          const report = await context.agent.apply(context.desired);
          expect(report.verified).toBe(true);
        });
        tests.failover!(() => context);
      });
    }
  });
}

describeSite('home-pppoe', {
  routing: (get) => {
    it('uid 108 leaves by ppp1, every other uid by ppp0, ppp1-sourced packets by ppp1', async () => {
      const { lab, topo } = get();
      const r = topo.router;
      const ppp1 = topo.uplink('ppp1');
      expect(await routeGet(lab, r, INTERNET_HOST, { uid: 108 })).toMatchObject({ dev: 'ppp1' });
      expect(await routeGet(lab, r, INTERNET_HOST, { uid: 1000 })).toMatchObject({ dev: 'ppp0' });
      expect(await routeGet(lab, r, INTERNET_HOST)).toMatchObject({ dev: 'ppp0' });
      expect(await routeGet(lab, r, INTERNET_HOST, { from: ppp1.address })).toMatchObject({ dev: 'ppp1' });
      // Forwarded LAN traffic takes the balanced default (ppp0 only).
      expect(await routeGet(lab, r, INTERNET_HOST, { from: topo.lan!.hosts[0]!, iif: 'lan0' })).toMatchObject(
        { dev: 'ppp0' },
      );
      expect(await ruleLines(lab, r)).toContain(`2001: from ${ppp1.address} lookup 101 proto 252`);
    });
  },
});

describeSite('branch-adsl-vpn', {
  routing: (get) => {
    it('marked traffic prefers the VPN, SMTP leaves by ISP1, the portal by ISP2', async () => {
      const { lab, topo } = get();
      const r = topo.router;
      const lan = topo.lan!.hosts[0]!;
      expect(await routeGet(lab, r, INTERNET_HOST, { mark: 0x1 })).toMatchObject({ dev: 'tun0' });
      expect(await routeGet(lab, r, INTERNET_HOST, { ipproto: 'tcp', dport: 25 })).toMatchObject({
        dev: 'wan1',
        gateway: '198.51.100.1',
      });
      expect(await routeGet(lab, r, '203.0.113.80')).toMatchObject({ dev: 'wan2', gateway: '198.51.100.5' });
      // The same rules classify forwarded LAN traffic.
      expect(
        await routeGet(lab, r, INTERNET_HOST, { from: lan, iif: 'lan0', ipproto: 'tcp', dport: 25 }),
      ).toMatchObject({ dev: 'wan1' });
      expect(await routeGet(lab, r, '203.0.113.80', { from: lan, iif: 'lan0' })).toMatchObject({
        dev: 'wan2',
      });
      expect(await routeGet(lab, r, INTERNET_HOST, { from: lan, iif: 'lan0', mark: 0x1 })).toMatchObject({
        dev: 'tun0',
      });
    });

    it('the default route is multipath over wan1/wan2 with weights 8 and 2', async () => {
      const { lab, topo } = get();
      const table = (await lab.run(['ip', '-n', topo.router, 'route', 'show', 'table', '200'])).stdout;
      expect(table.replace(/\s+/g, ' ').trim()).toBe(
        'default proto 252 nexthop via 198.51.100.1 dev wan1 weight 8 nexthop via 198.51.100.5 dev wan2 weight 2',
      );
      const dev = (await routeGet(lab, topo.router, INTERNET_HOST)).dev;
      expect(['wan1', 'wan2']).toContain(dev);
    });
  },
  failover: (get) => {
    it('with the VPN link down, marked traffic falls through to ISP1, and back when it returns', async () => {
      const { lab, topo, agent, desired } = get();
      const r = topo.router;
      await setLink(lab, r, 'tun0', 'down');
      try {
        // The kernel itself drops routes over a down link: the fall-through works before any reconcile.
        expect(await routeGet(lab, r, INTERNET_HOST, { mark: 0x1 })).toMatchObject({ dev: 'wan1' });
        const down = await agent.apply(desired);
        expect(down.unavailable).toEqual([{ provider: 'vpn', reason: 'interface tun0 is down' }]);
        expect(await routeGet(lab, r, INTERNET_HOST, { mark: 0x1 })).toMatchObject({ dev: 'wan1' });
        expect((await ruleLines(lab, r)).filter((line) => line.includes('lookup 102'))).toEqual([]);
      } finally {
        await setLink(lab, r, 'tun0', 'up');
      }
      const up = await agent.apply(desired);
      expect(up.unavailable).toEqual([]);
      expect(await routeGet(lab, r, INTERNET_HOST, { mark: 0x1 })).toMatchObject({ dev: 'tun0' });
    });
  },
});

describeSite('dmz-redundant', {
  routing: (get) => {
    it('default traffic leaves by ISP1 only; ISP2-sourced packets by ISP2', async () => {
      const { lab, topo } = get();
      const r = topo.router;
      expect(await routeGet(lab, r, INTERNET_HOST)).toMatchObject({ dev: 'wan1', gateway: '198.51.100.9' });
      expect(await routeGet(lab, r, INTERNET_HOST, { from: topo.lan!.hosts[0]!, iif: 'lan0' })).toMatchObject(
        {
          dev: 'wan1',
        },
      );
      expect(await routeGet(lab, r, INTERNET_HOST, { from: '192.0.2.130' })).toMatchObject({ dev: 'wan2' });
      const table = (await lab.run(['ip', '-n', r, 'route', 'show', 'table', '200'])).stdout;
      expect(table.trim()).toBe('default via 198.51.100.9 dev wan1 proto 252');
    });
  },
  failover: (get) => {
    it('when ISP1 is unavailable (link down + reconcile) traffic falls to the ISP2 fallback rule', async () => {
      const { lab, topo, agent, desired } = get();
      const r = topo.router;
      await setLink(lab, r, 'wan1', 'down');
      try {
        const report = await agent.apply(desired);
        expect(report.unavailable).toEqual([{ provider: 'isp1', reason: 'interface wan1 is down' }]);
        expect(await routeGet(lab, r, INTERNET_HOST)).toMatchObject({ dev: 'wan2', gateway: '192.0.2.129' });
        expect((await lab.run(['ip', '-n', r, 'route', 'show', 'table', '200'])).stdout).toBe('');
        expect(await ruleLines(lab, r)).toContain('30001: from all lookup 101 proto 252');
      } finally {
        await setLink(lab, r, 'wan1', 'up');
      }
      await agent.apply(desired);
      expect(await routeGet(lab, r, INTERNET_HOST)).toMatchObject({ dev: 'wan1' });
    });

    it('a failed health probe on ISP1 has the same effect, without touching its rules', async () => {
      const { lab, topo, agent, desired } = get();
      const r = topo.router;
      const rulesUp = await ruleLines(lab, r);
      const down = await agent.apply(desired, { isp1: 'down' });
      expect(down.changes.every((change) => change.kind === 'route')).toBe(true);
      expect(await routeGet(lab, r, INTERNET_HOST)).toMatchObject({ dev: 'wan2' });
      expect(await ruleLines(lab, r)).toEqual(rulesUp);
      await agent.apply(desired, { isp1: 'up' });
      expect(await routeGet(lab, r, INTERNET_HOST)).toMatchObject({ dev: 'wan1' });
    });
  },
});

describeSite('shorewall-style', {
  routing: (get) => {
    it('balances in the default table (253) with weights 1 and 3, after main', async () => {
      const { lab, topo } = get();
      const r = topo.router;
      const table = (await lab.run(['ip', '-n', r, 'route', 'show', 'table', '253'])).stdout;
      expect(table.replace(/\s+/g, ' ').trim()).toBe(
        'default proto 252 nexthop via 198.51.100.17 dev eth1 weight 1 nexthop via 198.51.100.25 dev eth2 weight 3',
      );
      expect(await ruleLines(lab, r)).toEqual(
        expect.arrayContaining([
          '30000: from all lookup default proto 252',
          '30001: from all lookup 103 proto 252',
        ]),
      );
      expect(['eth1', 'eth2']).toContain((await routeGet(lab, r, INTERNET_HOST)).dev);
    });

    it('route rules by source and destination sit at their Shorewall priorities', async () => {
      const { lab, topo } = get();
      const r = topo.router;
      const rules = await ruleLines(lab, r);
      expect(rules).toEqual(
        expect.arrayContaining([
          '11000: from 172.20.5.0/24 lookup 102 proto 252',
          '11001: from 172.20.5.0/24 lookup 101 proto 252',
          '11010: from all to 203.0.113.64/26 lookup 101 proto 252',
        ]),
      );
      expect(rules.find((line) => line.startsWith('11020:'))).toMatch(/to 192\.0\.2\.192\/26 .*unreachable/);
      expect(await routeGet(lab, r, INTERNET_HOST, { from: '172.20.5.10', iif: 'lan0' })).toMatchObject({
        dev: 'eth2',
      });
      expect(await routeGet(lab, r, '203.0.113.65')).toMatchObject({ dev: 'eth1', gateway: '198.51.100.17' });
      expect((await routeGet(lab, r, '192.0.2.200')).error).toMatch(/unreachable/i);
    });
  },
  failover: (get) => {
    it('the DHCP uplink gets the detected gateway, and takes over when the balanced ones are down', async () => {
      const { lab, topo, agent, desired } = get();
      const r = topo.router;
      expect((await lab.run(['ip', '-n', r, 'route', 'show', 'table', '103'])).stdout.trim()).toBe(
        'default via 192.0.2.33 dev eth3 proto 252',
      );
      await agent.apply(desired, { comcast: 'down', avvanta: 'down' });
      expect(await routeGet(lab, r, INTERNET_HOST)).toMatchObject({ dev: 'eth3', gateway: '192.0.2.33' });
      // voip-subnet's providers are both down: its rules fall through to the fallback too.
      expect(await routeGet(lab, r, INTERNET_HOST, { from: '172.20.5.10', iif: 'lan0' })).toMatchObject({
        dev: 'eth3',
      });
      await agent.apply(desired);
      expect(['eth1', 'eth2']).toContain((await routeGet(lab, r, INTERNET_HOST)).dev);
    });
  },
});

describeSite('lartc-split', {
  routing: (get) => {
    it('staff web traffic leaves by DSL, everything else by ISP1', async () => {
      const { lab, topo } = get();
      const r = topo.router;
      const staff = '172.20.7.10';
      const other = '172.20.6.10';
      const fwd = (from: string, dport: number) =>
        routeGet(lab, r, INTERNET_HOST, { from, iif: 'lan0', ipproto: 'tcp', dport });
      expect(await fwd(staff, 443)).toMatchObject({ dev: 'wan2', gateway: '198.51.100.33' });
      expect(await fwd(staff, 80)).toMatchObject({ dev: 'wan2' });
      expect(await fwd(staff, 22)).toMatchObject({ dev: 'wan1', gateway: '203.0.113.129' });
      expect(await fwd(other, 443)).toMatchObject({ dev: 'wan1' });
      // `traffic: forwarded`: the router's own web traffic is not the staff's.
      expect(await routeGet(lab, r, INTERNET_HOST, { ipproto: 'tcp', dport: 443 })).toMatchObject({
        dev: 'wan1',
      });
    });
  },
});

describeSite('branch-vlan-lte', {
  routing: (get) => {
    it('sysctls land on the dotted interfaces (the VLAN uplink, its accept_local), rp_filter off on ppp0', async () => {
      const { lab, topo } = get();
      const read = async (path: string) =>
        (await lab.exec(topo.router, ['cat', `/proc/sys/net/ipv4/conf/${path}`])).stdout.trim();
      expect(await read('enp1s0.100/rp_filter')).toBe('2');
      expect(await read('enp1s0.100/accept_local')).toBe('0');
      expect(await read('ppp0/rp_filter')).toBe('0');
      expect(await read('wwan0/rp_filter')).toBe('2');
      expect(await read('enp0s20f0u1/rp_filter')).toBe('2');
    });

    it('guests on br-lan.20 leave by ppp0, never the fibre VLAN; VoIP prefers the fibre VLAN', async () => {
      const { lab, topo } = get();
      expect(
        (await routeGet(lab, topo.router, INTERNET_HOST, { from: '172.20.31.10', iif: 'br-lan.20' })).dev,
      ).toBe('ppp0');
      expect(
        (
          await routeGet(lab, topo.router, INTERNET_HOST, {
            from: '172.20.30.10',
            iif: 'br-lan',
            ipproto: 'udp',
            dport: 5060,
          })
        ).dev,
      ).toBe('enp1s0.100');
      // The bridged staff LAN takes the balanced route: the fibre VLAN or PPPoE, never LTE.
      const staff = await routeGet(lab, topo.router, INTERNET_HOST, { from: '172.20.30.10', iif: 'br-lan' });
      expect(['enp1s0.100', 'ppp0']).toContain(staff.dev);
    });

    it('each uplink answers from its own address, the LTE modems through their detected gateways', async () => {
      const { lab, topo } = get();
      for (const [from, dev] of [
        ['198.51.100.50', 'enp1s0.100'],
        ['10.101.2.2', 'ppp0'],
        ['10.100.3.2', 'wwan0'],
        ['10.100.4.2', 'enp0s20f0u1'],
      ] as const) {
        expect((await routeGet(lab, topo.router, INTERNET_HOST, { from })).dev, from).toBe(dev);
      }
      expect((await routeGet(lab, topo.router, INTERNET_HOST, { from: '10.100.3.2' })).gateway).toBe(
        '10.100.3.1',
      );
    });
  },
  failover: (get) => {
    it('with the fibre VLAN and PPPoE down, traffic falls to wwan0, then to the USB modem', async () => {
      const { lab, topo, agent, desired } = get();
      await agent.apply(desired, { fibre: 'down', dsl: 'down' });
      expect(
        (await routeGet(lab, topo.router, INTERNET_HOST, { from: '172.20.30.10', iif: 'br-lan' })).dev,
      ).toBe('wwan0');
      await agent.apply(desired, { fibre: 'down', dsl: 'down', lte: 'down' });
      expect(
        (await routeGet(lab, topo.router, INTERNET_HOST, { from: '172.20.31.10', iif: 'br-lan.20' })).dev,
      ).toBe('enp0s20f0u1');
      await agent.apply(desired, {});
      expect((await agent.plan(desired)).changes).toEqual([]);
    });
  },
});

describeSite('office-29', {
  routing: (get) => {
    it('every address of the /29 and the routed DMZ block answer by ISP2; the rest by the cable line', async () => {
      const { lab, topo, desired } = get();
      const isp2 = desired.providers.find((p) => p.name === 'isp2')!.table;
      const rules = (await lab.run(['ip', '-n', topo.router, 'rule', 'show'])).stdout;
      for (const from of ['198.51.100.58', '198.51.100.59', '198.51.100.60', '203.0.113.224/29']) {
        expect(rules).toContain(`from ${from} lookup ${isp2}`);
      }
      for (const from of ['198.51.100.59', '198.51.100.60']) {
        expect((await routeGet(lab, topo.router, INTERNET_HOST, { from })).dev, from).toBe('enp3s0');
      }
      expect(
        (await routeGet(lab, topo.router, INTERNET_HOST, { from: '203.0.113.226', iif: 'dmz0' })).dev,
      ).toBe('enp3s0');
      // The cable line's DHCP gateway carries the LAN's traffic.
      expect(
        await routeGet(lab, topo.router, INTERNET_HOST, { from: '172.20.40.10', iif: 'lan0' }),
      ).toMatchObject({
        dev: 'wan1',
        gateway: '10.100.1.1',
      });
    });
  },
});
