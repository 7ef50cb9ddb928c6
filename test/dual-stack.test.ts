/**
 * Dual-stack against the real kernel (D180, D181): the built agent daemon applies a site with
 * two ISPs, each with an IPv4 address and a routed IPv6 prefix, in a router namespace. Checked:
 * the IPv6 rules in the same bands and both families' defaults in each provider table (read
 * back with `ip -6`, through the agent's own parser too); a detected (RA) and a link-local
 * gateway; real IPv6 traffic from a LAN host numbered from ISP1's prefix that leaves by ISP1,
 * by ISP2 (NPTv6 onto ISP2's prefix, which ISP2's BCP 38 filter lets through) while ISP1's link
 * is down, and by ISP1 again once it is back; IPv6 drift reported and healed while foreign IPv6
 * rules and routes stay byte-identical. Every wait polls with a deadline; no timing asserted.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseIpRoutes, parseIpRules } from '../agent/src/core/parse-ip-json.js';
import { buildDist } from './build-dist.js';
import {
  buildDualStackLab,
  compileDualStackSite,
  dropUpstream6,
  forwarded6,
  ispLinkUp,
  LAN_HOST6,
  LAN_HOST6_VIA_ISP2,
  PROBE_TARGET6,
  SERVER6,
} from './dual-stack-lab.js';
import { type HealthDaemon, startHealthDaemon, until } from './health-lab.js';
import { requireRoot, useLab } from './lab/index.js';
import type { RouterTopology } from './lab/router-topology.js';

requireRoot();
const lab = useLab('dstack');
let topo: RouterTopology;
let dir: string;
let agent: HealthDaemon | undefined;

const inRouter = (argv: string[], options: { stdin?: string } = {}) =>
  lab.current.exec(topo.router, argv, options);
const PROTO = 252;

async function rules6(): Promise<string> {
  return (await inRouter(['ip', '-6', 'rule', 'show'])).stdout;
}

/** Where the kernel sends a LAN host's IPv6 packet to `dst`. */
async function lanRoute6(dst: string, from = LAN_HOST6): Promise<string> {
  const { stdout } = await inRouter(['ip', '-6', '-j', 'route', 'get', dst, 'from', from, 'iif', 'lan0']);
  return (JSON.parse(stdout) as { dev: string }[])[0]!.dev;
}

/** One IPv6 ping from the LAN host; true when it was answered. */
async function lanPing6(): Promise<boolean> {
  const result = await lab.current.exec(topo.lan!.ns, ['ping', '-6', '-n', '-c1', '-W1', SERVER6], {
    allowFailure: true,
  });
  return result.exitCode === 0;
}

async function linkDown(isp: number, down: boolean): Promise<void> {
  if (down) await lab.current.exec(topo.isps[isp - 1]!.ns, ['ip', 'link', 'set', 'cust', 'down']);
  else await ispLinkUp(lab.current, topo, isp);
}

/** Sources the internet host saw ping it from, counted per source. */
async function seenFrom(source: string): Promise<number> {
  const { stdout } = await lab.current.exec(topo.internet, ['nft', '-j', 'list', 'table', 'ip6', 'seen']);
  const rule = JSON.parse(stdout).nftables.find(
    (e: { rule?: { expr: unknown[] } }) =>
      e.rule !== undefined && JSON.stringify(e.rule.expr).includes(source),
  );
  return rule === undefined ? 0 : Number(/"packets":\s*(\d+)/.exec(JSON.stringify(rule))![1]);
}

beforeAll(async () => {
  buildDist();
  topo = await buildDualStackLab(lab.current);
  await lab.current.exec(topo.internet, ['nft', '-f', '-'], {
    stdin: `table ip6 seen {
  chain input {
    type filter hook input priority 0; policy accept;
    ip6 saddr ${LAN_HOST6} counter
    ip6 saddr ${LAN_HOST6_VIA_ISP2} counter
  }
}
`,
  });
  // Foreign IPv6 state Uplink must leave alone.
  await inRouter(['ip', '-6', 'rule', 'add', 'priority', '4242', 'from', '2001:db8:77::/48', 'lookup', '77']);
  await inRouter(['ip', '-6', 'route', 'add', '2001:db8:77::/48', 'dev', 'lo', 'table', '77']);
  dir = await mkdtemp(join(tmpdir(), 'uplink-dstack-'));
  agent = await startHealthDaemon(lab.current, topo.router, dir, compileDualStackSite());
}, 90_000);

afterAll(async () => {
  agent?.process.child.kill('SIGTERM');
  await agent?.process.exited;
  await rm(dir, { recursive: true, force: true });
});

describe('dual-stack site in the kernel', () => {
  it('holds the IPv6 rules in the same bands and both defaults in each provider table', async () => {
    const owned = parseIpRules((await inRouter(['ip', '-6', '-N', '-j', '-d', 'rule', 'show'])).stdout, {
      family: 'inet6',
    }).filter((r) => r.protocol === PROTO);
    expect(
      owned.map((r) => [r.priority, r.from ?? r.to ?? (r.fwmark ? `mark ${r.fwmark}` : ''), r.table]),
    ).toEqual([
      [900, '', 254],
      [1000, 'mark 256', 101],
      [1001, 'mark 512', 102],
      [2000, '2001:db8:1::/48', 101],
      [2000, '2001:db8:ff1::2/128', 101],
      [2001, '2001:db8:2::/48', 102],
      [2001, '2001:db8:ff2::2/128', 102],
      [10000, '2001:db8:99::80/128', 102],
      [10001, '2001:db8:99::80/128', 101],
      [30000, '', 200],
    ]);
    const routes = parseIpRoutes(
      (await inRouter(['ip', '-6', '-N', '-j', '-d', 'route', 'show', 'table', 'all'])).stdout,
      { family: 'inet6' },
    ).filter((r) => r.protocol === PROTO);
    expect(routes.map((r) => [r.table, r.dst, r.gateway ?? r.nexthops?.map((h) => h.gateway)])).toEqual([
      [101, '::/0', 'fe80::1'],
      [102, '::/0', '2001:db8:ff2::1'],
      [200, '::/0', ['fe80::1', '2001:db8:ff2::1']],
    ]);
    // The IPv4 half is still there, in the same tables.
    const v4 = (await inRouter(['ip', '-4', 'route', 'show', 'table', '101'])).stdout;
    expect(v4).toContain('default via 198.51.100.1 dev isp1');
    // Status carries each provider's IPv6 half beside it: availability and health per family.
    const status = await agent!.status();
    expect(status.facts.providers.map((p) => [p.name, p.available])).toEqual([
      ['isp1', true],
      ['isp1:ipv6', true],
      ['isp2', true],
      ['isp2:ipv6', true],
    ]);
    expect(status.health.map((h) => h.name)).toEqual(['isp1', 'isp1:ipv6', 'isp2', 'isp2:ipv6']);
    const nft = (await inRouter(['nft', 'list', 'table', 'inet', 'uplink'])).stdout;
    expect(nft).toContain('oifname "isp2" ip6 saddr 2001:db8:1::/48 snat ip6 prefix to 2001:db8:2::/48');
    expect(nft).toContain('meta nfproto ipv6 iifname "isp1" ct state new');
  });

  it('a LAN host numbered from ISP1 reaches the internet via ISP1', async () => {
    expect(await lanRoute6(SERVER6)).toBe('isp1');
    const before = await forwarded6(lab.current, topo, 1);
    await until(lanPing6, 'an IPv6 ping from the LAN', 20_000);
    expect(await forwarded6(lab.current, topo, 1)).toBeGreaterThan(before);
    expect(await seenFrom(LAN_HOST6)).toBeGreaterThan(0);
  });

  it('track: a connection DNAT-ed in over ISP2 to a LAN server numbered from ISP1 answers via ISP2', async () => {
    // The site's own firewall (a foreign table) forwards [isp2 address]:8080 to the LAN server.
    await inRouter(['nft', '-f', '-'], {
      stdin: `table ip6 sitefw {
  chain pre {
    type nat hook prerouting priority dstnat; policy accept;
    iifname "isp2" ip6 daddr 2001:db8:ff2::2 tcp dport 8080 dnat to [${LAN_HOST6}]:8080
  }
}
`,
    });
    const server = lab.current.start(topo.lan!.ns, [
      'socat',
      'TCP6-LISTEN:8080,fork,reuseaddr',
      'SYSTEM:true',
    ]);
    try {
      // Without track the reply (source: the LAN server) would take ISP1's table by its source
      // prefix, and ISP1 drops the un-DNAT-ed ISP2 source: the connection only works through track.
      expect(await lanRoute6('2001:db8:ee2::2')).toBe('isp1');
      await until(async () => {
        const result = await lab.current.exec(
          topo.internet,
          ['socat', '-T2', '-u', 'OPEN:/dev/null', 'TCP6:[2001:db8:ff2::2]:8080,connect-timeout=2'],
          { allowFailure: true },
        );
        return result.exitCode === 0;
      }, 'a TCP connection from the internet to the DNAT-ed server over isp2');
      const { stdout } = await inRouter(['conntrack', '-L', '-f', 'ipv6', '-p', 'tcp', '--dport', '8080']);
      expect(stdout).toContain('mark=512');
    } finally {
      server.child.kill('SIGTERM');
      await server.exited;
      await inRouter(['nft', 'delete', 'table', 'ip6', 'sitefw']);
    }
  });

  it('ISP1 down: the same host keeps IPv6 through ISP2, translated onto its prefix; back via ISP1 after', async () => {
    await linkDown(1, true);
    await until(async () => (await lanRoute6(SERVER6)) === 'isp2', 'IPv6 traffic to move to isp2');
    const viaIsp2 = await forwarded6(lab.current, topo, 2);
    await until(lanPing6, 'an IPv6 ping from the LAN through isp2');
    expect(await forwarded6(lab.current, topo, 2)).toBeGreaterThan(viaIsp2);
    expect(await seenFrom(LAN_HOST6_VIA_ISP2)).toBeGreaterThan(0);

    await linkDown(1, false);
    await until(async () => (await lanRoute6(SERVER6)) === 'isp1', 'IPv6 traffic back on isp1');
    const viaIsp1 = await forwarded6(lab.current, topo, 1);
    const seen = await seenFrom(LAN_HOST6);
    // A connection (ping id) opened during the failover may keep its translation until it ends.
    await until(
      async () => (await lanPing6()) && (await forwarded6(lab.current, topo, 1)) > viaIsp1,
      'an IPv6 ping through isp1 again',
    );
    expect(await seenFrom(LAN_HOST6)).toBeGreaterThan(seen);
  });

  it('probes each family on its own: IPv6 broken on ISP1 while its IPv4 works moves only the IPv6', async () => {
    await until(
      async () =>
        (await agent!.health('isp1:ipv6')).state === 'up' &&
        (await agent!.health('isp2:ipv6')).state === 'up',
      'both IPv6 halves up',
    );
    await dropUpstream6(lab.current, topo.isps[0]!.ns, true);
    try {
      await until(async () => (await agent!.health('isp1:ipv6')).state === 'down', 'isp1:ipv6 down');
      expect((await agent!.health('isp1')).state).toBe('up');
      await until(async () => (await lanRoute6(SERVER6)) === 'isp2', 'IPv6 traffic to move to isp2');
      const viaIsp2 = await forwarded6(lab.current, topo, 2);
      await until(lanPing6, 'an IPv6 ping from the LAN through isp2');
      expect(await forwarded6(lab.current, topo, 2)).toBeGreaterThan(viaIsp2);
      // IPv4 still balances over both; the dead IPv6 half kept a probe route to its target.
      const v4 = (await inRouter(['ip', '-4', 'route', 'show', 'table', '200'])).stdout;
      expect(v4).toContain('dev isp1');
      expect((await inRouter(['ip', '-6', 'route', 'show', 'table', '101'])).stdout).toContain(
        `${PROBE_TARGET6} via fe80::1 dev isp1`,
      );
    } finally {
      await dropUpstream6(lab.current, topo.isps[0]!.ns, false);
    }
    await until(async () => (await agent!.health('isp1:ipv6')).state === 'up', 'isp1:ipv6 up again');
    await until(async () => (await lanRoute6(SERVER6)) === 'isp1', 'IPv6 traffic back on isp1');
  });

  it('IPv6 drift is reported and healed; foreign IPv6 rules and routes stay as they were', async () => {
    const foreignRule = (await inRouter(['ip', '-6', 'rule', 'show', 'priority', '4242'])).stdout;
    const foreignRoute = (await inRouter(['ip', '-6', 'route', 'show', 'table', '77'])).stdout;
    await inRouter(['ip', '-6', 'rule', 'del', 'priority', '2001', 'from', '2001:db8:2::/48']);
    await inRouter(['ip', '-6', 'route', 'del', 'default', 'table', '102']);
    await until(async () => {
      const rules = await rules6();
      const table = (await inRouter(['ip', '-6', 'route', 'show', 'table', '102'])).stdout;
      // The daemon records the check after the heal once it has read the kernel back.
      const items = (await agent!.status()).drift?.items ?? [];
      return (
        rules.includes('2001:db8:2::/48') &&
        table.includes('default via 2001:db8:ff2::1') &&
        items.length === 0
      );
    }, 'the IPv6 rule and route to be healed');
    const drift = (await agent!.status()).drift;
    expect(drift?.items ?? []).toEqual([]);
    // The foreign rule before Uplink's IPv6 policy rules is reported, as an IPv4 one would be.
    expect(drift?.shadowed.map((item) => item.object)).toEqual([
      'foreign rule -6 priority 4242 from 2001:db8:77::/48 lookup 77 proto 0',
    ]);
    expect((await inRouter(['ip', '-6', 'rule', 'show', 'priority', '4242'])).stdout).toBe(foreignRule);
    expect((await inRouter(['ip', '-6', 'route', 'show', 'table', '77'])).stdout).toBe(foreignRoute);
  });
});
