/**
 * The standard multi-homed router lab:
 *
 *            ┌── isp1 ns ──┐
 *   lan ns ─ router ns ─┤            ├─ internet ns (203.0.113.10, .20, … on lo)
 *            └── isp2 ns ──┘
 *
 * - router: `isp<N>` uplinks, `lan0` to the LAN; forwarding on; no routes besides the
 *   connected ones (tests install the routing under test), unless `mainDefaultVia` is set.
 * - isp<N>: `cust` faces the router (198.51.100.<8(N-1)>/29: gateway .1, router .2, or a
 *   point-to-point pair 100.64.<N>.1 ↔ .2 when `pointToPoint`), `upstream` faces the internet
 *   (192.0.2.<8(N-1)>/29: isp .1, internet .2). ISPs do not NAT: like real providers, they
 *   route only their customers' assigned addresses, so the router must SNAT.
 * - internet: one link per ISP, host addresses on lo, return routes for each ISP's customer
 *   subnet via that ISP — so the source address a reply goes to decides the ISP it takes.
 * - lan: `eth0` 172.20.1.10/24, default via the router's 172.20.1.1.
 *
 * Only documentation/private ranges, only inside namespaces this lab creates.
 */
import type { Lab } from './lab.js';
import { waitOperUp } from './site-topology.js';

export interface IspOptions {
  /** PPP-like link: /32 addresses with a peer instead of a shared subnet. */
  readonly pointToPoint?: boolean;
}

export interface RouterTopologyOptions {
  /** Number of ISPs (1–8), or per-ISP options. */
  readonly isps: number | readonly IspOptions[];
  /** Hosts on the internet's lo (default ['203.0.113.10']). */
  readonly internetHosts?: readonly string[];
  /** Add a default route in the router's main table via this ISP (1-based). */
  readonly mainDefaultVia?: number;
  /** Create the LAN namespace (default true). */
  readonly lan?: boolean;
}

export interface IspHandle {
  /** 1-based. */
  readonly index: number;
  readonly ns: string;
  /** The router's interface towards this ISP. */
  readonly routerIf: string;
  /** The router's address on the uplink. */
  readonly routerAddress: string;
  /** The router's uplink prefix length (32 for point-to-point). */
  readonly prefixLength: number;
  /** The ISP's address facing the router: the router's next hop (the peer when point-to-point). */
  readonly gateway: string;
  /** The uplink network in CIDR form (the peer /32 when point-to-point). */
  readonly network: string;
  readonly pointToPoint: boolean;
  /** The ISP's address towards the internet. */
  readonly upstreamAddress: string;
}

export interface RouterTopology {
  readonly router: string;
  readonly internet: string;
  readonly internetHosts: readonly string[];
  readonly isps: readonly IspHandle[];
  readonly lan?: {
    readonly ns: string;
    readonly routerIf: string;
    readonly routerAddress: string;
    readonly hostAddress: string;
    readonly network: string;
  };
}

export async function buildRouterTopology(lab: Lab, options: RouterTopologyOptions): Promise<RouterTopology> {
  const ispOptions: readonly IspOptions[] =
    typeof options.isps === 'number' ? Array.from({ length: options.isps }, () => ({})) : options.isps;
  if (ispOptions.length < 1 || ispOptions.length > 8) throw new Error('buildRouterTopology: 1–8 ISPs');
  const internetHosts = options.internetHosts ?? ['203.0.113.10'];

  const router = await lab.netns('router');
  const internet = await lab.netns('internet');
  await lab.forwarding(router);
  await lab.forwarding(internet);
  for (const host of internetHosts) await lab.addr(internet, 'lo', `${host}/32`);

  const isps: IspHandle[] = [];
  for (const [i, opts] of ispOptions.entries()) {
    const index = i + 1;
    const ns = await lab.netns(`isp${index}`);
    await lab.forwarding(ns);
    const base = 8 * i;
    const pointToPoint = opts.pointToPoint === true;
    const routerIf = `isp${index}`;
    const handle: IspHandle = pointToPoint
      ? {
          index,
          ns,
          routerIf,
          routerAddress: `100.64.${index}.2`,
          prefixLength: 32,
          gateway: `100.64.${index}.1`,
          network: `100.64.${index}.1/32`,
          pointToPoint,
          upstreamAddress: `192.0.2.${base + 1}`,
        }
      : {
          index,
          ns,
          routerIf,
          routerAddress: `198.51.100.${base + 2}`,
          prefixLength: 29,
          gateway: `198.51.100.${base + 1}`,
          network: `198.51.100.${base}/29`,
          pointToPoint,
          upstreamAddress: `192.0.2.${base + 1}`,
        };
    if (pointToPoint) {
      await lab.veth(
        { ns: router, name: routerIf, address: `${handle.routerAddress}/32`, peer: `${handle.gateway}/32` },
        { ns, name: 'cust', address: `${handle.gateway}/32`, peer: `${handle.routerAddress}/32` },
      );
    } else {
      await lab.veth(
        { ns: router, name: routerIf, address: `${handle.routerAddress}/29` },
        { ns, name: 'cust', address: `${handle.gateway}/29` },
      );
    }
    await lab.veth(
      { ns, name: 'upstream', address: `${handle.upstreamAddress}/29` },
      { ns: internet, name: routerIf, address: `192.0.2.${base + 2}/29` },
    );
    await lab.route(ns, 'default', 'via', `192.0.2.${base + 2}`, 'dev', 'upstream');
    const customerNetwork = pointToPoint ? `${handle.routerAddress}/32` : handle.network;
    await lab.route(internet, customerNetwork, 'via', handle.upstreamAddress, 'dev', routerIf);
    isps.push(handle);
  }

  if (options.mainDefaultVia !== undefined) {
    const isp = isps[options.mainDefaultVia - 1];
    if (isp === undefined) throw new Error(`buildRouterTopology: no ISP ${options.mainDefaultVia}`);
    await lab.route(router, 'default', 'via', isp.gateway, 'dev', isp.routerIf);
  }

  let lan: RouterTopology['lan'];
  if (options.lan !== false) {
    const ns = await lab.netns('lan');
    lan = {
      ns,
      routerIf: 'lan0',
      routerAddress: '172.20.1.1',
      hostAddress: '172.20.1.10',
      network: '172.20.1.0/24',
    };
    await lab.veth(
      { ns: router, name: 'lan0', address: '172.20.1.1/24' },
      { ns, name: 'eth0', address: '172.20.1.10/24' },
    );
    await lab.route(ns, 'default', 'via', '172.20.1.1');
  }

  // Tests compare `ip route show table all` byte for byte: the kernel adds a link's IPv6
  // multicast and link-local routes only once it has carrier and a usable link-local address,
  // which on a loaded machine can be well after `link set up` returned. Settle first.
  await waitOperUp(
    lab,
    router,
    [...isps.map((isp) => isp.routerIf), ...(lan === undefined ? [] : ['lan0'])],
    15_000,
  );
  return { router, internet, internetHosts, isps, ...(lan === undefined ? {} : { lan }) };
}
