/**
 * An IPv6-only uplink against the real kernel (D165): a branch with a dual-stack fibre line
 * (isp1) and an LTE modem `wwan0` on a mobile network that hands out IPv6 only (no IPv4
 * address on the interface at all; the "RA" default route stands in for the carrier's). The
 * built agent daemon applies the site in a router namespace. Checked: no IPv4 rule, route or
 * NAT rule for the modem while its IPv6 half has the full layout; status and health list the
 * modem by its IPv6 half only; with the fibre line down, a LAN host numbered from the fibre
 * ISP's prefix keeps IPv6 through the modem (NPTv6 onto the modem's prefix), and goes back to
 * the fibre when it returns. Every wait polls with a deadline; no timing asserted.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseIpRoutes, parseIpRules } from '../agent/src/core/parse-ip-json.js';
import type { DesiredState } from '../agent/src/model/desired-state.js';
import { compileSite } from '../controller/src/compile/compile-site.js';
import { loadFleet } from '../controller/src/spec/load-fleet.js';
import { buildDist } from './build-dist.js';
import {
  buildDualStackLab,
  forwarded6,
  ispLinkUp,
  LAN_HOST6,
  PROBE_TARGET6,
  prefix6,
  SERVER6,
  settleDad,
} from './dual-stack-lab.js';
import { type HealthDaemon, PROBE_TARGET, startHealthDaemon, until } from './health-lab.js';
import { requireRoot, useLab } from './lab/index.js';
import type { RouterTopology } from './lab/router-topology.js';

requireRoot();
const lab = useLab('v6only');
let topo: RouterTopology;
let dir: string;
let agent: HealthDaemon | undefined;
const PROTO = 252;

const inRouter = (argv: string[]) => lab.current.exec(topo.router, argv);
/** The dual-stack lab's second internet address: ICMPv6 to it is policy-routed over LTE. */
const PORTAL6 = '2001:db8:99::80';

const SITE = `name: v6only
management:
  address: 192.0.2.201
  hostKey: ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIML+nVa7QnPvbuqqJyg0QS0zd7Kx0gwdg6IYe6JF5Ts4
lan:
  - interface: lan0
    subnets: [172.20.1.0/24, 2001:db8:1:1::/64]
providers:
  - name: fibre
    interface: isp1
    address: 198.51.100.2/29
    gateway: 198.51.100.1
    table: 101
    mark: 0x100
    balance: 1
    health:
      targets: [${PROBE_TARGET}]
    ipv6:
      address: 2001:db8:ff1::2/64
      gateway: fe80::1
      prefixes: [${prefix6(1)}]
      health:
        targets: [${PROBE_TARGET6}]
  - name: lte
    interface: wwan0
    ipv4: false
    table: 102
    mark: 0x200
    fallback: true
    ipv6:
      address: learned
      gateway: detect
      prefixes: [${prefix6(2)}]
      health:
        targets: [${PROBE_TARGET6}]
policies:
  - name: ping-portal
    to: ${PORTAL6}/128
    proto: icmpv6
    via: [lte]
`;

function compile(): DesiredState {
  const load = loadFleet(
    new Map([
      ['fleet.yaml', 'rollout:\n  waves:\n    - name: all\n'],
      ['sites/v6only.yaml', SITE],
    ]),
  );
  const errors = load.diagnostics.filter((d) => d.severity === 'error');
  if (errors.length > 0) throw new Error(`site does not validate: ${JSON.stringify(errors, null, 2)}`);
  return compileSite(load.validSites[0]!);
}

async function lanRoute6(dst: string): Promise<string> {
  const { stdout } = await inRouter([
    'ip',
    '-6',
    '-j',
    'route',
    'get',
    dst,
    'from',
    LAN_HOST6,
    'iif',
    'lan0',
  ]);
  return (JSON.parse(stdout) as { dev: string }[])[0]!.dev;
}

async function lanPing6(): Promise<boolean> {
  const result = await lab.current.exec(topo.lan!.ns, ['ping', '-6', '-n', '-c1', '-W1', SERVER6], {
    allowFailure: true,
  });
  return result.exitCode === 0;
}

beforeAll(async () => {
  buildDist();
  topo = await buildDualStackLab(lab.current);
  // ISP2 becomes a mobile carrier giving IPv6 only: the router's side is renamed the way an
  // LTE modem names itself, and has no IPv4 address.
  const router = topo.router;
  await inRouter(['ip', 'link', 'set', 'isp2', 'down']);
  await inRouter(['ip', 'link', 'set', 'isp2', 'name', 'wwan0']);
  await inRouter(['ip', 'link', 'set', 'wwan0', 'up']);
  await inRouter(['ip', '-4', 'addr', 'flush', 'dev', 'wwan0']);
  await inRouter(['ip', '-6', 'addr', 'replace', '2001:db8:ff2::2/64', 'dev', 'wwan0', 'nodad']);
  await settleDad(lab.current, [router]);
  await inRouter([
    'ip',
    '-6',
    'route',
    'replace',
    'default',
    'via',
    '2001:db8:ff2::1',
    'dev',
    'wwan0',
    'proto',
    'ra',
  ]);
  dir = await mkdtemp(join(tmpdir(), 'uplink-v6only-'));
  agent = await startHealthDaemon(lab.current, router, dir, compile());
}, 90_000);

afterAll(async () => {
  agent?.process.child.kill('SIGTERM');
  await agent?.process.exited;
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('an IPv6-only LTE uplink in the kernel', () => {
  it('has the IPv6 layout and nothing IPv4', async () => {
    const rules4 = parseIpRules(
      (await inRouter(['ip', '-4', '-N', '-j', '-d', 'rule', 'show'])).stdout,
    ).filter((r) => r.protocol === PROTO);
    expect(rules4.filter((r) => r.table === 102)).toEqual([]);
    expect(rules4.some((r) => r.table === 101)).toBe(true);
    const routes4 = parseIpRoutes(
      (await inRouter(['ip', '-4', '-N', '-j', '-d', 'route', 'show', 'table', 'all'])).stdout,
    ).filter((r) => r.protocol === PROTO);
    expect(routes4.map((r) => [r.table, r.dst, r.dev])).toEqual([
      [101, '0.0.0.0/0', 'isp1'],
      [200, '0.0.0.0/0', 'isp1'],
    ]);
    const rules6 = parseIpRules((await inRouter(['ip', '-6', '-N', '-j', '-d', 'rule', 'show'])).stdout, {
      family: 'inet6',
    }).filter((r) => r.protocol === PROTO && r.table === 102);
    expect(
      rules6.map((r) => [
        r.priority,
        r.from ?? r.to ?? (r.fwmark ? `mark ${r.fwmark}` : ''),
        r.ipproto ?? '',
      ]),
    ).toEqual([
      [1001, 'mark 512', ''],
      [2001, prefix6(2), ''],
      [2001, '2001:db8:ff2::2/128', ''],
      [10000, `${PORTAL6}/128`, 'ipv6-icmp'],
      [30001, '', ''],
    ]);
    // ICMPv4 has no IPv4 rule here: the policy is ICMPv6's, and LTE has no IPv4 half.
    expect(rules4.filter((r) => r.ipproto !== undefined)).toEqual([]);
    const routes6 = (await inRouter(['ip', '-6', 'route', 'show', 'table', '102'])).stdout;
    expect(routes6).toContain('default via 2001:db8:ff2::1 dev wwan0');
    const nft = (await inRouter(['nft', 'list', 'table', 'inet', 'uplink'])).stdout;
    expect(nft).not.toMatch(/oifname "wwan0" masquerade/);
    expect(nft).toContain(`oifname "wwan0" ip6 saddr ${prefix6(1)} snat ip6 prefix to ${prefix6(2)}`);
    expect((await inRouter(['sysctl', '-n', 'net.ipv6.conf.wwan0.accept_ra'])).stdout.trim()).toBe('2');
    const status = await agent!.status();
    expect(status.facts.providers.map((p) => [p.name, p.available])).toEqual([
      ['fibre', true],
      ['fibre:ipv6', true],
      ['lte:ipv6', true],
    ]);
    expect(status.health.map((h) => h.name)).toEqual(['fibre', 'fibre:ipv6', 'lte:ipv6']);
  });

  it("proto: icmpv6 sends the router's ICMPv6 to the portal over LTE while its TCP takes the fibre", async () => {
    // The router's own packets: LAN hosts numbered from a provider's prefix leave by that
    // provider (its source rule at 2000 comes before the policies).
    const route = async (proto: string) => {
      const { stdout } = await inRouter(['ip', '-6', '-j', 'route', 'get', PORTAL6, 'ipproto', proto]);
      return (JSON.parse(stdout) as { dev: string }[])[0]!.dev;
    };
    expect(await route('ipv6-icmp')).toBe('wwan0');
    expect(await route('tcp')).toBe('isp1');
    const isp2 = topo.isps[1]!.ns;
    await lab.current.exec(isp2, ['nft', '-f', '-'], {
      stdin: `table ip6 portal {\n  chain forward {\n    type filter hook forward priority 0; policy accept;\n    ip6 daddr ${PORTAL6} icmpv6 type echo-request counter\n  }\n}\n`,
    });
    const echoes = async () => {
      const { stdout } = await lab.current.exec(isp2, ['nft', '-j', 'list', 'table', 'ip6', 'portal']);
      return Number(/"packets":\s*(\d+)/.exec(stdout)?.[1] ?? 0);
    };
    // A real ping6 from the router: it leaves by LTE with LTE's address and is answered.
    await until(async () => {
      const result = await inRouter(['ping', '-6', '-n', '-c1', '-W1', PORTAL6]).catch(() => undefined);
      return result !== undefined;
    }, 'a ping6 to the portal answered');
    expect(await echoes()).toBeGreaterThan(0);
  });

  it('the fibre down: a host numbered from its prefix stays online over LTE, and comes back', async () => {
    expect(await lanRoute6(SERVER6)).toBe('isp1');
    await until(lanPing6, 'an IPv6 ping from the LAN via the fibre');
    await lab.current.exec(topo.isps[0]!.ns, ['ip', 'link', 'set', 'cust', 'down']);
    try {
      await until(async () => (await lanRoute6(SERVER6)) === 'wwan0', 'IPv6 traffic to move to wwan0');
      const before = await forwarded6(lab.current, topo, 2);
      await until(lanPing6, 'an IPv6 ping from the LAN over LTE');
      expect(await forwarded6(lab.current, topo, 2)).toBeGreaterThan(before);
      await until(async () => (await agent!.health('lte:ipv6')).state === 'up', 'lte:ipv6 up');
    } finally {
      await ispLinkUp(lab.current, topo, 1);
    }
    await until(async () => (await lanRoute6(SERVER6)) === 'isp1', 'IPv6 traffic back on the fibre');
    const before = await forwarded6(lab.current, topo, 1);
    await until(
      async () => (await lanPing6()) && (await forwarded6(lab.current, topo, 1)) > before,
      'an IPv6 ping via the fibre again',
    );
  });
});
