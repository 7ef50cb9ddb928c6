/**
 * A router lab shaped like one site: the router's uplinks carry the site's own interface
 * names and addresses (ppp0, wan1, eth3, tun0 …), each uplink leads to its own ISP namespace,
 * and every ISP reaches one shared "internet" namespace.
 *
 *                 ┌── isp-<uplink 1> ──┐
 *   lan ── router ┼── isp-<uplink 2> ──┼── internet (hosts on lo, e.g. 203.0.113.10)
 *                 └── …              ──┘
 *
 * Uplink kinds:
 * - `subnet`: the router has `address` (CIDR) and the ISP the gateway in the same subnet;
 * - `point-to-point`: PPP-like, `/32` addresses with `peer` on both ends; the ISP answers ARP
 *   for what it routes (proxy ARP), standing in for PPP's missing link layer;
 * - `dhcp`: like `subnet`, plus the default route a DHCP client installs in main
 *   (`proto dhcp`, on that interface), so the agent can detect the gateway.
 *
 * ISPs do not NAT and, by default, filter ingress like a provider following BCP 38
 * (strict rp_filter towards the customer): a packet that leaves by the wrong uplink with the
 * other uplink's source address is dropped there, as it would be in real life. ISP ↔ internet
 * links use 100.64.<n>.0/30. Only namespaces this lab creates are touched.
 */
import { existsSync } from 'node:fs';
import type { Lab } from './lab.js';

export type SiteUplinkKind = 'subnet' | 'point-to-point' | 'dhcp';

export interface SiteUplinkOptions {
  /** The router's interface name, as the site spec names it (≤ 15 bytes). */
  readonly name: string;
  readonly kind: SiteUplinkKind;
  /** `subnet`/`dhcp`: the router's CIDR (e.g. 198.51.100.2/30); `point-to-point`: its address. */
  readonly address: string;
  /** The next hop: the gateway in the subnet, or the point-to-point peer. */
  readonly gateway: string;
  /** Metric of the DHCP-style default route in main (default 100). */
  readonly dhcpMetric?: number;
  /** Drop packets from sources the ISP did not assign to this customer (default true). */
  readonly ingressFilter?: boolean;
  /** `subnet`/`dhcp`: more addresses of the router on the uplink (CIDRs), e.g. a /29's .59 and .60. */
  readonly secondary?: readonly string[];
  /** The uplink's IPv6 half (a dual-stack ISP, D180). */
  readonly ipv6?: SiteUplinkIpv6Options;
}

export interface SiteUplinkIpv6Options {
  /** The router's CIDR on the uplink, e.g. 2001:db8:ffa1::2/64 (added `nodad`, also for `learned`). */
  readonly address: string;
  /** The ISP's next hop: a global address in that subnet, or a link-local one (added to `cust`). */
  readonly gateway: string;
  /** Prefixes the ISP routes to the router. */
  readonly prefixes: readonly string[];
  /** A router advertisement's default route in main (`proto ra`), for `gateway: detect`. */
  readonly ra?: boolean;
}

export interface SiteLanOptions {
  /** Router-side LAN interface (default lan0). */
  readonly routerIf?: string;
  /**
   * The router-side interface is a bridge (`br-lan`), its addresses on the bridge and a
   * veth port enslaved to it, as on a router with a LAN switch; default: a plain veth.
   */
  readonly bridge?: boolean;
  /** One entry per LAN subnet, e.g. `{ router: '172.20.1.1/24', host: '172.20.1.10/24' }`. */
  readonly subnets: readonly { readonly router: string; readonly host: string }[];
}

export interface SiteTopologyOptions {
  readonly uplinks: readonly SiteUplinkOptions[];
  /** Hosts on the internet's lo (default ['203.0.113.10', '203.0.113.80']). */
  readonly internetHosts?: readonly string[];
  /** IPv6 hosts on the internet's lo when an uplink has `ipv6` (default ['2001:db8:99::10']). */
  readonly internetHosts6?: readonly string[];
  readonly lan?: SiteLanOptions;
  /** More LAN interfaces (a guest VLAN, a DMZ), each with its own namespace `lan2`, `lan3` … */
  readonly moreLans?: readonly SiteLanOptions[];
}

export interface SiteLanHandle {
  readonly ns: string;
  readonly routerIf: string;
  /** Host addresses, one per subnet (no prefix). */
  readonly hosts: readonly string[];
}

export interface SiteUplinkHandle {
  /** 1-based, in the order given. */
  readonly index: number;
  readonly name: string;
  readonly kind: SiteUplinkKind;
  /** The ISP's namespace; its interface towards the router is `cust`. */
  readonly ispNs: string;
  /** The internet namespace's interface towards this ISP. */
  readonly internetIf: string;
  /** The router's current address (no prefix) and next hop. */
  readonly address: string;
  readonly gateway: string;
}

export interface SiteTopology {
  readonly router: string;
  readonly internet: string;
  readonly internetHosts: readonly string[];
  readonly uplinks: readonly SiteUplinkHandle[];
  /** The first LAN. */
  readonly lan?: SiteLanHandle;
  /** Every LAN, the first one first. */
  readonly lans: readonly SiteLanHandle[];
  /** The uplink named `name`; throws when there is none. */
  uplink(name: string): SiteUplinkHandle;
  /**
   * Re-addresses a point-to-point uplink, as a PPP re-dial does: the router and the ISP get the
   * new pair, the internet's return route follows. Returns the updated handle.
   */
  readdress(name: string, address: string, gateway: string): Promise<SiteUplinkHandle>;
}

export async function buildSiteTopology(lab: Lab, options: SiteTopologyOptions): Promise<SiteTopology> {
  if (options.uplinks.length < 1 || options.uplinks.length > 16)
    throw new Error('buildSiteTopology: 1–16 uplinks');
  const internetHosts = options.internetHosts ?? ['203.0.113.10', '203.0.113.80'];
  const router = await lab.netns('router');
  const internet = await lab.netns('internet');
  await lab.forwarding(router);
  await lab.forwarding(internet);
  // No duplicate address detection on the router: its link-local addresses (and their
  // routes) appear as soon as a link has carrier, not a second or two later.
  if (existsSync('/proc/sys/net/ipv6')) {
    await lab.exec(router, [
      'sysctl',
      '-q',
      '-w',
      'net.ipv6.conf.all.accept_dad=0',
      'net.ipv6.conf.default.accept_dad=0',
    ]);
  }
  for (const host of internetHosts) await lab.addr(internet, 'lo', `${host}/32`);

  const uplinks: SiteUplinkHandle[] = [];
  for (const [i, up] of options.uplinks.entries()) {
    const index = i + 1;
    const ispNs = await lab.netns(`isp-${up.name.toLowerCase().replace(/[^a-z0-9]/g, '')}`);
    await lab.forwarding(ispNs);
    const address = up.kind === 'point-to-point' ? up.address : up.address.split('/')[0]!;
    if (up.kind === 'point-to-point') {
      await lab.veth(
        { ns: router, name: up.name, address: `${up.address}/32`, peer: `${up.gateway}/32` },
        { ns: ispNs, name: 'cust', address: `${up.gateway}/32`, peer: `${up.address}/32` },
      );
    } else {
      const prefix = up.address.split('/')[1];
      if (prefix === undefined) throw new Error(`uplink ${up.name}: address must be a CIDR`);
      await lab.veth(
        { ns: router, name: up.name, address: up.address },
        { ns: ispNs, name: 'cust', address: `${up.gateway}/${prefix}` },
      );
    }
    for (const extra of up.secondary ?? []) await lab.addr(router, up.name, extra);
    if (up.kind === 'dhcp') {
      await lab.run([
        'ip',
        '-n',
        router,
        'route',
        'add',
        'default',
        'via',
        up.gateway,
        'dev',
        up.name,
        'proto',
        'dhcp',
        'metric',
        String(up.dhcpMetric ?? 100),
      ]);
    }
    if (up.kind === 'point-to-point') {
      // A real PPP link has no link layer: `default dev ppp1` just sends. Over a veth the router
      // ARPs for every destination instead, so the ISP answers for what it routes (proxy ARP).
      await lab.exec(ispNs, ['sysctl', '-q', '-w', 'net.ipv4.conf.cust.proxy_arp=1']);
    }
    if (up.ingressFilter !== false) {
      await lab.exec(ispNs, ['sysctl', '-q', '-w', 'net.ipv4.conf.cust.rp_filter=1']);
    }
    const internetIf = `isp${index}`;
    await lab.veth(
      { ns: ispNs, name: 'upstream', address: `100.64.${index}.1/30` },
      { ns: internet, name: internetIf, address: `100.64.${index}.2/30` },
    );
    await lab.route(ispNs, 'default', 'via', `100.64.${index}.2`, 'dev', 'upstream');
    await lab.route(internet, customerNetwork(up.kind, up.address), 'via', `100.64.${index}.1`);
    if (up.ipv6 !== undefined)
      await buildUplink6(lab, { router, internet, ispNs, internetIf, index }, up.name, up.ipv6);
    uplinks.push({ index, name: up.name, kind: up.kind, ispNs, internetIf, address, gateway: up.gateway });
  }

  const dual = options.uplinks.some((up) => up.ipv6 !== undefined);
  if (dual) {
    for (const host of options.internetHosts6 ?? ['2001:db8:99::10'])
      await lab.run(['ip', '-n', internet, '-6', 'addr', 'add', `${host}/128`, 'dev', 'lo']);
  }
  const lans: SiteLanHandle[] = [];
  for (const [i, options_] of [options.lan, ...(options.moreLans ?? [])].entries()) {
    if (options_ === undefined || options_.subnets.length === 0) continue;
    lans.push(await buildLan(lab, router, options_, i === 0 ? 'lan' : `lan${i + 1}`));
  }
  const lan = lans[0];

  // veth carrier reaches operstate through the kernel's linkwatch, up to a second after
  // `link set up`: until then routes show `linkdown` and an agent sees the uplink as down.
  await waitOperUp(lab, router, [...uplinks.map((u) => u.name), ...lans.map((l) => l.routerIf)]);

  const uplink = (name: string): SiteUplinkHandle => {
    const found = uplinks.find((u) => u.name === name);
    if (found === undefined) throw new Error(`site topology: no uplink ${name}`);
    return found;
  };

  const readdress = async (name: string, address: string, gateway: string): Promise<SiteUplinkHandle> => {
    const old = uplink(name);
    if (old.kind !== 'point-to-point') throw new Error(`uplink ${name}: only point-to-point links re-dial`);
    await lab.run(['ip', '-n', router, 'addr', 'del', old.address, 'peer', `${old.gateway}/32`, 'dev', name]);
    await lab.run([
      'ip',
      '-n',
      old.ispNs,
      'addr',
      'del',
      old.gateway,
      'peer',
      `${old.address}/32`,
      'dev',
      'cust',
    ]);
    await lab.addr(router, name, `${address}/32`, `${gateway}/32`);
    await lab.addr(old.ispNs, 'cust', `${gateway}/32`, `${address}/32`);
    await lab.run(['ip', '-n', internet, 'route', 'del', `${old.address}/32`]);
    await lab.route(internet, `${address}/32`, 'via', `100.64.${old.index}.1`);
    const updated: SiteUplinkHandle = { ...old, address, gateway };
    uplinks[old.index - 1] = updated;
    return updated;
  };

  return {
    router,
    internet,
    internetHosts,
    uplinks,
    ...(lan === undefined ? {} : { lan }),
    lans,
    uplink,
    readdress,
  };
}

/**
 * An uplink's IPv6 half: the ISP's next hop on `cust` and its routes for the site's prefixes,
 * an IPv6 link to the internet (2001:db8:ee<n>::/64), the internet's return routes, the ISP's
 * BCP 38 filter (only the site's prefixes and uplink subnet leave), and — for `ra` — the
 * default route a router advertisement would give the router in main. Every address `nodad`.
 */
async function buildUplink6(
  lab: Lab,
  at: { router: string; internet: string; ispNs: string; internetIf: string; index: number },
  name: string,
  v6: SiteUplinkIpv6Options,
): Promise<void> {
  const { router, internet, ispNs, internetIf, index } = at;
  const ip6 = (ns: string, ...args: string[]) => lab.run(['ip', '-n', ns, '-6', ...args]);
  for (const ns of [router, internet, ispNs])
    await lab.exec(ns, ['sysctl', '-q', '-w', 'net.ipv6.conf.all.forwarding=1']);
  // Taking the ISP's side of the link down must not flush its global addresses.
  await lab.exec(ispNs, ['sysctl', '-q', '-w', 'net.ipv6.conf.cust.keep_addr_on_down=1']);
  const [routerAddress, length] = v6.address.split('/') as [string, string];
  await ip6(router, 'addr', 'add', v6.address, 'dev', name, 'nodad');
  await ip6(
    ispNs,
    'addr',
    'add',
    `${v6.gateway}/${v6.gateway.startsWith('fe80:') ? 64 : length}`,
    'dev',
    'cust',
    'nodad',
  );
  if (v6.gateway.startsWith('fe80:')) {
    // A link-local next hop still needs the ISP on the uplink's subnet, to route the prefixes back.
    const isp = `${routerAddress.replace(/::[0-9a-f]*$/, '')}::1`;
    if (isp !== routerAddress) await ip6(ispNs, 'addr', 'add', `${isp}/${length}`, 'dev', 'cust', 'nodad');
  }
  await ip6(ispNs, 'addr', 'add', `2001:db8:ee${index}::1/64`, 'dev', 'upstream', 'nodad');
  await ip6(internet, 'addr', 'add', `2001:db8:ee${index}::2/64`, 'dev', internetIf, 'nodad');
  await ip6(ispNs, 'route', 'replace', 'default', 'via', `2001:db8:ee${index}::2`, 'dev', 'upstream');
  const subnet = `${routerAddress.replace(/::[0-9a-f]*$/, '')}::/${length}`;
  for (const prefix of v6.prefixes)
    await ip6(ispNs, 'route', 'replace', prefix, 'via', routerAddress, 'dev', 'cust');
  for (const dst of [...v6.prefixes, subnet])
    await ip6(internet, 'route', 'replace', dst, 'via', `2001:db8:ee${index}::1`, 'dev', internetIf);
  await lab.exec(ispNs, ['nft', '-f', '-'], {
    stdin: `table ip6 isp {
  chain forward {
    type filter hook forward priority 0; policy accept;
    iifname "cust" ip6 saddr != { ${[...v6.prefixes, subnet].join(', ')} } counter drop
  }
}
`,
  });
  if (v6.ra === true)
    await ip6(router, 'route', 'replace', 'default', 'via', v6.gateway, 'dev', name, 'proto', 'ra');
}

/** One LAN: a namespace with a host per subnet, behind a veth or a bridge on the router. */
async function buildLan(
  lab: Lab,
  router: string,
  options: SiteLanOptions,
  name: string,
): Promise<SiteLanHandle> {
  const ns = await lab.netns(name);
  const routerIf = options.routerIf ?? 'lan0';
  const [first, ...rest] = options.subnets;
  if (options.bridge === true) {
    const port = `${name}-port`;
    await lab.run(['ip', '-n', router, 'link', 'add', routerIf, 'type', 'bridge']);
    await lab.veth({ ns: router, name: port }, { ns, name: 'eth0', address: first!.host });
    await lab.run(['ip', '-n', router, 'link', 'set', port, 'master', routerIf]);
    await lab.run(['ip', '-n', router, 'link', 'set', routerIf, 'up']);
    await lab.addr(router, routerIf, first!.router);
  } else {
    await lab.veth(
      { ns: router, name: routerIf, address: first!.router },
      { ns, name: 'eth0', address: first!.host },
    );
  }
  for (const subnet of rest) {
    // IPv6 LAN subnets are added `nodad`, so a test never waits on duplicate address detection.
    const nodad = subnet.router.includes(':') ? ['nodad'] : [];
    await lab.run(['ip', '-n', router, 'addr', 'add', subnet.router, 'dev', routerIf, ...nodad]);
    await lab.run(['ip', '-n', ns, 'addr', 'add', subnet.host, 'dev', 'eth0', ...nodad]);
  }
  await lab.route(ns, 'default', 'via', first!.router.split('/')[0]!);
  const v6 = options.subnets.find((subnet) => subnet.router.includes(':'));
  if (v6 !== undefined) await lab.route(ns, '::/0', 'via', v6.router.split('/')[0]!, 'dev', 'eth0');
  return { ns, routerIf, hosts: options.subnets.map((s) => s.host.split('/')[0]!) };
}

/** What the internet routes back to an uplink: its subnet, or the router's /32 on a PPP link. */
function customerNetwork(kind: SiteUplinkKind, address: string): string {
  if (kind === 'point-to-point') return `${address}/32`;
  const [ip, prefix] = address.split('/') as [string, string];
  const bits = Number(prefix);
  const value = ip.split('.').reduce((acc, octet) => (acc << 8) | Number(octet), 0) >>> 0;
  const mask = bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
  const network = (value & mask) >>> 0;
  return `${[24, 16, 8, 0].map((shift) => (network >>> shift) & 0xff).join('.')}/${bits}`;
}

/**
 * Waits until every listed link in `ns` is operationally up with carrier and, when the kernel
 * has IPv6, holds a usable (non-tentative) link-local address — the kernel adds its `local
 * fe80::…` route only then, so a test comparing `ip route show table all` before and after
 * must not start earlier.
 */
export async function waitOperUp(
  lab: Lab,
  ns: string,
  links: readonly string[],
  timeoutMs = 5000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const ipv6 = existsSync('/proc/sys/net/ipv6');
  for (;;) {
    const shown = JSON.parse((await lab.run(['ip', '-j', '-n', ns, 'addr', 'show'])).stdout) as {
      ifname: string;
      operstate?: string;
      flags?: string[];
      addr_info?: { family?: string; scope?: string; tentative?: boolean }[];
    }[];
    const pending = links.filter((name) => {
      const link = shown.find((l) => l.ifname === name);
      if (link === undefined || link.operstate !== 'UP' || link.flags?.includes('NO-CARRIER') === true)
        return true;
      if (!ipv6) return false;
      const linkLocal = link.addr_info?.find((a) => a.family === 'inet6' && a.scope === 'link');
      return linkLocal === undefined || linkLocal.tentative === true;
    });
    if (pending.length === 0) return;
    if (Date.now() > deadline)
      throw new Error(`${ns}: ${pending.join(', ')} not operationally up after ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
