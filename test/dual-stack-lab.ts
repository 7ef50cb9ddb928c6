/**
 * The dual-stack lab: the failover lab (health-lab.ts) with IPv6 on every link.
 *
 * - isp<N>: `cust` 2001:db8:ff<N>::1/64 and fe80::1 facing the router (router
 *   2001:db8:ff<N>::2/64); ISP N routes the site prefix 2001:db8:<N>::/48 to the router, and —
 *   like a real ISP (BCP 38) — drops what the site sends from any other source.
 * - internet: 2001:db8:99::10 on lo; routes to each ISP's site prefix and uplink subnet via
 *   that ISP, so the source address of a reply decides which ISP it takes.
 * - lan: `eth0` 2001:db8:1:1::10/64 — numbered from ISP1's prefix — default via the router's
 *   2001:db8:1:1::1.
 * - router: isp2's IPv6 default route in main (`proto ra`) stands in for a router
 *   advertisement, so `gateway: detect` has something to detect.
 *
 * Every address is `nodad`, and the build waits until no address (link-local ones included)
 * is tentative, so DAD never decides a test.
 */
import type { DesiredState } from '../agent/src/model/desired-state.js';
import { compileSite } from '../controller/src/compile/compile-site.js';
import { loadFleet } from '../controller/src/spec/load-fleet.js';
import { buildFailoverLab, PROBE_TARGET, until } from './health-lab.js';
import type { Lab } from './lab/lab.js';
import type { RouterTopology } from './lab/router-topology.js';

export const SERVER6 = '2001:db8:99::10';
/** The IPv6 probe target: carries no test traffic. */
export const PROBE_TARGET6 = '2001:db8:99::1';
export const LAN_HOST6 = '2001:db8:1:1::10';
export const LAN_HOST6_VIA_ISP2 = '2001:db8:2:1::10';

export function prefix6(isp: number): string {
  return `2001:db8:${isp}::/48`;
}

export interface DualStackOptions {
  /** `drift:` of the site (default heal). */
  readonly drift?: 'report' | 'heal';
}

export function dualStackYaml(options: DualStackOptions = {}): string {
  return `name: dualstack
management:
  address: 192.0.2.200
  hostKey: ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIML+nVa7QnPvbuqqJyg0QS0zd7Kx0gwdg6IYe6JF5Ts4
settings:
  drift: ${options.drift ?? 'heal'}
lan:
  - interface: lan0
    subnets: [172.20.1.0/24, 2001:db8:1:1::/64]
providers:
  - name: isp1
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
  - name: isp2
    interface: isp2
    address: 198.51.100.10/29
    gateway: 198.51.100.9
    table: 102
    mark: 0x200
    balance: 1
    health:
      targets: [${PROBE_TARGET}]
    ipv6:
      address: learned
      gateway: detect
      prefixes: [${prefix6(2)}]
      health:
        targets: [${PROBE_TARGET6}]
policies:
  - name: portal6
    to: 2001:db8:99::80/128
    via: [isp2, isp1]
`;
}

export function compileDualStackSite(options: DualStackOptions = {}): DesiredState {
  const load = loadFleet(
    new Map([
      ['fleet.yaml', 'rollout:\n  waves:\n    - name: all\n'],
      ['sites/dualstack.yaml', dualStackYaml(options)],
    ]),
  );
  const errors = load.diagnostics.filter((d) => d.severity === 'error');
  if (errors.length > 0) throw new Error(`site does not validate: ${JSON.stringify(errors, null, 2)}`);
  return compileSite(load.validSites[0]!);
}

export async function buildDualStackLab(lab: Lab): Promise<RouterTopology> {
  const topo = await buildFailoverLab(lab);
  const { router, internet, lan } = topo;
  const ip6 = (ns: string, ...args: string[]) => lab.run(['ip', '-n', ns, '-6', ...args]);
  for (const ns of [router, internet, ...topo.isps.map((isp) => isp.ns)]) {
    await lab.exec(ns, ['sysctl', '-q', '-w', 'net.ipv6.conf.all.forwarding=1']);
  }
  await ip6(internet, 'addr', 'add', `${SERVER6}/128`, 'dev', 'lo');
  await ip6(internet, 'addr', 'add', '2001:db8:99::80/128', 'dev', 'lo');
  await ip6(internet, 'addr', 'add', `${PROBE_TARGET6}/128`, 'dev', 'lo');
  for (const isp of topo.isps) {
    const n = isp.index;
    // Tests take the ISP's side of the link down to cut the uplink: keep its IPv6 addresses
    // (the kernel flushes them on admin down otherwise), as a real ISP's router would have them.
    await lab.exec(isp.ns, ['sysctl', '-q', '-w', 'net.ipv6.conf.cust.keep_addr_on_down=1']);
    await ip6(isp.ns, 'addr', 'add', `2001:db8:ff${n}::1/64`, 'dev', 'cust', 'nodad');
    await ip6(isp.ns, 'addr', 'add', 'fe80::1/64', 'dev', 'cust', 'nodad');
    await ip6(router, 'addr', 'add', `2001:db8:ff${n}::2/64`, 'dev', isp.routerIf, 'nodad');
    await ip6(isp.ns, 'addr', 'add', `2001:db8:ee${n}::1/64`, 'dev', 'upstream', 'nodad');
    await ip6(internet, 'addr', 'add', `2001:db8:ee${n}::2/64`, 'dev', isp.routerIf, 'nodad');
    await ip6(isp.ns, 'route', 'replace', 'default', 'via', `2001:db8:ee${n}::2`, 'dev', 'upstream');
    await ip6(isp.ns, 'route', 'replace', prefix6(n), 'via', `2001:db8:ff${n}::2`, 'dev', 'cust');
    for (const dst of [prefix6(n), `2001:db8:ff${n}::/64`]) {
      await ip6(internet, 'route', 'replace', dst, 'via', `2001:db8:ee${n}::1`, 'dev', isp.routerIf);
    }
    // BCP 38: the ISP forwards only its own customer's sources, and counts what it forwarded.
    await lab.exec(isp.ns, ['nft', '-f', '-'], {
      stdin: `table ip6 isp {
  chain forward {
    type filter hook forward priority 0; policy accept;
    iifname "cust" ip6 saddr != { ${prefix6(n)}, 2001:db8:ff${n}::/64 } counter drop
    iifname "cust" ip6 daddr ${SERVER6} counter
  }
}
`,
    });
  }
  // The stand-in for isp2's router advertisement.
  await ip6(router, 'route', 'replace', 'default', 'via', '2001:db8:ff2::1', 'dev', 'isp2', 'proto', 'ra');
  await ip6(router, 'addr', 'add', '2001:db8:1:1::1/64', 'dev', 'lan0', 'nodad');
  await ip6(lan!.ns, 'addr', 'add', `${LAN_HOST6}/64`, 'dev', 'eth0', 'nodad');
  await ip6(lan!.ns, 'route', 'replace', 'default', 'via', '2001:db8:1:1::1', 'dev', 'eth0');
  await settleDad(lab, [router, internet, lan!.ns, ...topo.isps.map((isp) => isp.ns)]);
  return topo;
}

/** Puts ISP `n`'s side of its uplink back up, with the route to the site the kernel dropped with it. */
export async function ispLinkUp(lab: Lab, topo: RouterTopology, n: number): Promise<void> {
  const ns = topo.isps[n - 1]!.ns;
  await lab.exec(ns, ['ip', 'link', 'set', 'cust', 'up']);
  // keep_addr_on_down keeps global addresses only: the link-local gateway comes back by hand.
  await lab.run(['ip', '-n', ns, '-6', 'addr', 'replace', 'fe80::1/64', 'dev', 'cust', 'nodad']);
  await settleDad(lab, [ns, topo.router]);
  await lab.run([
    'ip',
    '-n',
    ns,
    '-6',
    'route',
    'replace',
    prefix6(n),
    'via',
    `2001:db8:ff${n}::2`,
    'dev',
    'cust',
  ]);
}

/** Waits until no IPv6 address in `namespaces` is tentative (the kernel's link-local ones do DAD). */
export async function settleDad(lab: Lab, namespaces: readonly string[]): Promise<void> {
  for (const ns of namespaces) {
    await until(
      async () => (await lab.run(['ip', '-n', ns, '-6', 'addr', 'show', 'tentative'])).stdout.trim() === '',
      `DAD to finish in ${ns}`,
      20_000,
    );
  }
}

/** Packets to SERVER6 ISP `n` forwarded from the site (its nft counter). */
export async function forwarded6(lab: Lab, topo: RouterTopology, n: number): Promise<number> {
  const { stdout } = await lab.exec(topo.isps[n - 1]!.ns, ['nft', '-j', 'list', 'table', 'ip6', 'isp']);
  const counters = [...stdout.matchAll(/"packets":\s*(\d+)/g)].map((m) => Number(m[1]));
  return counters[1] ?? 0;
}

/** An IPv6-only upstream failure: the ISP silently drops the IPv6 it would forward (IPv4 flows). */
export async function dropUpstream6(lab: Lab, ns: string, drop: boolean): Promise<void> {
  if (drop) {
    await lab.exec(ns, ['nft', '-f', '-'], {
      stdin:
        'table ip6 blackhole {\n  chain forward {\n    type filter hook forward priority -10; policy drop;\n  }\n}\n',
    });
  } else {
    await lab.exec(ns, ['nft', 'delete', 'table', 'ip6', 'blackhole']);
  }
}
