/**
 * Track with real TCP traffic, on dmz-redundant (ISP1 carries the default route, ISP2 is the
 * fallback). A client on the internet connects to ISP2's public address — (a) to a service on
 * the router itself, (b) DNAT'd by the site's own firewall to a LAN server — and the replies
 * must leave by wan2, although the default route points at wan1. The ISPs filter ingress
 * (BCP 38), so a reply that leaves by the wrong uplink is dropped there and the client never
 * sees it: the exchange completing *is* the proof, and per-interface SYN-ACK counters in a
 * separate observation table show where the replies went. Negative controls remove Uplink's
 * rules by hand and watch the connection fail, then a reconcile heals exactly those rules.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Lab, type LabProcess, requireRoot, type SiteTopology, useLab } from '../lab/index.js';
import { buildSiteLab, compileExampleSite, ruleLines, SiteAgent } from './site-lab.js';

const CLIENT = '203.0.113.10';
const ISP2_PUBLIC = '192.0.2.130';
const LAN_SERVER = '172.20.3.10';
const ROUTER_PORT = 7000;
const DNAT_PORT = 8080;

/** The site's own firewall: DNAT isp2-address:8080 → LAN server:80. Uplink never touches it. */
const SITE_FIREWALL = `table ip sitefw {
  chain prerouting {
    type nat hook prerouting priority dstnat; policy accept;
    ip daddr ${ISP2_PUBLIC} tcp dport ${DNAT_PORT} dnat to ${LAN_SERVER}:80
  }
}
`;

/**
 * Ours, for observation only: SYN-ACKs per egress uplink and per service port, after NAT. Per
 * port, because a half-open connection from an earlier step keeps retransmitting its SYN-ACK
 * on its own timer, by whatever route is valid at that moment.
 */
const OBSERVED = [
  ['wan1', ROUTER_PORT],
  ['wan2', ROUTER_PORT],
  ['wan1', DNAT_PORT],
  ['wan2', DNAT_PORT],
] as const;
const OBSERVER = `table inet obs {
${OBSERVED.map(([oif, port]) => `  counter synack_${oif}_${port} {}`).join('\n')}
  chain postrouting {
    type filter hook postrouting priority 300; policy accept;
${OBSERVED.map(
  ([oif, port]) =>
    `    oifname "${oif}" tcp sport ${port} tcp flags & (syn | ack) == syn | ack counter name "synack_${oif}_${port}"`,
).join('\n')}
  }
}
`;

describe.skipIf(!requireRoot())(
  'track: connections answer on the uplink they arrived on (dmz-redundant)',
  () => {
    const lab = useLab('track');
    let l: Lab;
    let topo: SiteTopology;
    let agent: SiteAgent;
    const servers: LabProcess[] = [];

    async function synAcks(port: number): Promise<{ wan1: number; wan2: number }> {
      const read = async (name: string) => {
        const out = await l.exec(topo.router, ['nft', '-j', 'list', 'counter', 'inet', 'obs', name]);
        const entry = (
          JSON.parse(out.stdout) as { nftables: { counter?: { packets: number } }[] }
        ).nftables.find((item) => item.counter !== undefined);
        return entry!.counter!.packets;
      };
      return { wan1: await read(`synack_wan1_${port}`), wan2: await read(`synack_wan2_${port}`) };
    }

    /** Connects from the internet host; resolves with what the server sent, or null if it never arrived. */
    async function fetchFromInternet(port: number): Promise<string | null> {
      const result = await l.exec(
        topo.internet,
        ['socat', '-u', `TCP:${ISP2_PUBLIC}:${port},bind=${CLIENT},connect-timeout=2`, '-'],
        { allowFailure: true, timeoutMs: 10_000 },
      );
      return result.exitCode === 0 ? result.stdout.trim() : null;
    }

    /** One exchange, with the SYN-ACKs it caused per uplink. */
    async function exchange(port: number): Promise<{ reply: string | null; wan1: number; wan2: number }> {
      const before = await synAcks(port);
      const reply = await fetchFromInternet(port);
      const after = await synAcks(port);
      return { reply, wan1: after.wan1 - before.wan1, wan2: after.wan2 - before.wan2 };
    }

    async function listening(ns: string, port: number): Promise<void> {
      const deadline = Date.now() + 5000;
      while (Date.now() < deadline) {
        const out = await l.exec(ns, ['ss', '-Hltn', `sport = :${port}`]);
        if (out.stdout.trim() !== '') return;
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      throw new Error(`${ns}: nothing listens on ${port}`);
    }

    beforeAll(async () => {
      l = lab.current;
      const desired = await compileExampleSite('dmz-redundant');
      topo = await buildSiteLab(l, 'dmz-redundant');
      agent = await SiteAgent.create(topo.router, desired.settings.markMask);
      await l.exec(topo.router, ['nft', '-f', '-'], { stdin: SITE_FIREWALL });
      await l.exec(topo.router, ['nft', '-f', '-'], { stdin: OBSERVER });
      servers.push(
        l.start(topo.router, [
          'socat',
          `TCP-LISTEN:${ROUTER_PORT},bind=${ISP2_PUBLIC},reuseaddr,fork`,
          'EXEC:echo router-pong',
        ]),
        l.start(topo.lan!.ns, ['socat', 'TCP-LISTEN:80,reuseaddr,fork', 'EXEC:echo lan-pong']),
      );
      await listening(topo.router, ROUTER_PORT);
      await listening(topo.lan!.ns, 80);
      const report = await agent.apply(desired);
      expect(report.verified).toBe(true);
    });
    afterAll(async () => {
      await Promise.all(servers.map((s) => s.stop()));
      await agent?.dispose();
    });

    it('the default route would send replies to the client by wan1', async () => {
      const route = await l.run([
        'ip',
        '-j',
        '-n',
        topo.router,
        'route',
        'get',
        CLIENT,
        'from',
        LAN_SERVER,
        'iif',
        'lan0',
      ]);
      expect(JSON.parse(route.stdout)[0]).toMatchObject({ dev: 'wan1' });
    });

    it('(a) a connection to the router on ISP2 is answered by wan2', async () => {
      const result = await exchange(ROUTER_PORT);
      expect(result).toMatchObject({ reply: 'router-pong', wan1: 0 });
      expect(result.wan2).toBeGreaterThanOrEqual(1);
    });

    it('(a) track alone keeps it on wan2: without the source rule, the restored mark routes the reply', async () => {
      await l.run(['ip', '-n', topo.router, 'rule', 'del', 'priority', '2001']);
      const result = await exchange(ROUTER_PORT);
      expect(result).toMatchObject({ reply: 'router-pong', wan1: 0 });
      expect(result.wan2).toBeGreaterThanOrEqual(1);
    });

    it('(a) negative control: without the track rule too, the reply leaves by wan1 and ISP1 drops it', async () => {
      await l.run(['ip', '-n', topo.router, 'rule', 'del', 'priority', '1001']);
      const result = await exchange(ROUTER_PORT);
      expect(result).toMatchObject({ reply: null, wan2: 0 });
      expect(result.wan1).toBeGreaterThanOrEqual(1);

      // A reconcile puts back exactly the two rules, and the service answers again.
      const desired = await compileExampleSite('dmz-redundant');
      const report = await agent.apply(desired);
      expect(report.changes.map((c) => `${c.action} ${c.kind} ${c.key}`)).toEqual([
        expect.stringMatching(/^create rule .*1001.*/),
        expect.stringMatching(/^create rule .*2001.*/),
      ]);
      expect(await ruleLines(l, topo.router)).toEqual(
        expect.arrayContaining([
          '1001: from all fwmark 0x200/0xff00 lookup 101 proto 252',
          `2001: from ${ISP2_PUBLIC} lookup 101 proto 252`,
        ]),
      );
      expect((await exchange(ROUTER_PORT)).reply).toBe('router-pong');
    });

    it('(b) a connection DNATed to a LAN server via ISP2 is answered by wan2, its conntrack entry marked', async () => {
      const result = await exchange(DNAT_PORT);
      expect(result).toMatchObject({ reply: 'lan-pong', wan1: 0 });
      expect(result.wan2).toBeGreaterThanOrEqual(1);
      const conntrack = await l.exec(topo.router, [
        'conntrack',
        '-L',
        '-p',
        'tcp',
        '--orig-port-dst',
        String(DNAT_PORT),
      ]);
      // ct mark 0x200: isp2's mark under the 0xff00 mask.
      expect(conntrack.stdout).toMatch(new RegExp(`dst=${ISP2_PUBLIC} .*dport=${DNAT_PORT} .*mark=512`));
    });

    it('(b) negative control: without the track rule the LAN server’s reply leaves by wan1 and never arrives', async () => {
      await l.run(['ip', '-n', topo.router, 'rule', 'del', 'priority', '1001']);
      const result = await exchange(DNAT_PORT);
      expect(result).toMatchObject({ reply: null, wan2: 0 });
      expect(result.wan1).toBeGreaterThanOrEqual(1);

      const report = await agent.apply(await compileExampleSite('dmz-redundant'));
      expect(report.changes).toHaveLength(1);
      expect((await exchange(DNAT_PORT)).reply).toBe('lan-pong');
    });

    it('Uplink left the site firewall and the observation table alone', async () => {
      const tables = (await l.exec(topo.router, ['nft', 'list', 'tables'])).stdout.trim().split('\n');
      expect(tables.sort()).toEqual(['table inet obs', 'table inet uplink', 'table ip sitefw']);
      const sitefw = (await l.exec(topo.router, ['nft', 'list', 'table', 'ip', 'sitefw'])).stdout;
      expect(sitefw).toContain(`ip daddr ${ISP2_PUBLIC} tcp dport ${DNAT_PORT} dnat to ${LAN_SERVER}:80`);
    });
  },
);
