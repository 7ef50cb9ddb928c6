/**
 * Shared pieces of the scenario tests: the example fleet compiled the way the controller
 * compiles it, one namespace lab per reference site whose interfaces and addresses match the
 * site file, the engine bound to that lab, and `ip route get` as the oracle.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LinuxDataplane } from '../../agent/src/dataplane/linux.js';
import { plan } from '../../agent/src/engine/plan.js';
import { reconcile } from '../../agent/src/engine/reconcile.js';
import { revert } from '../../agent/src/engine/revert.js';
import type { DesiredState } from '../../agent/src/model/desired-state.js';
import type { Health } from '../../agent/src/model/kernel-state.js';
import { sysctlToolKey } from '../../agent/src/model/sysctl-key.js';
import { compileSite } from '../../controller/src/compile/compile-site.js';
import { readFleetFiles } from '../../controller/src/repo/read-fleet-files.js';
import { loadFleet } from '../../controller/src/spec/load-fleet.js';
import type { ValidSite } from '../../controller/src/spec/valid-site.js';
// Not ../lab/index.js: that pulls in vitest (useLab), and bench/reconcile.ts uses this file too.
import type { Lab } from '../lab/lab.js';
import {
  buildSiteTopology,
  type SiteTopology,
  type SiteTopologyOptions,
  waitOperUp,
} from '../lab/site-topology.js';

export const FLEET_DIR = 'fleet-repo-example';

export type ExampleSite =
  | 'home-pppoe'
  | 'branch-adsl-vpn'
  | 'dmz-redundant'
  | 'shorewall-style'
  | 'lartc-split'
  | 'branch-vlan-lte'
  | 'office-29';

/**
 * The lab for each reference site. Static addresses and gateways are the site file's; where
 * the site leaves them to the router (PPP peers, a DHCP lease), the lab picks documentation
 * addresses.
 */
export const SITE_TOPOLOGIES: Readonly<Record<ExampleSite, SiteTopologyOptions>> = {
  'home-pppoe': {
    uplinks: [
      { name: 'ppp0', kind: 'point-to-point', address: '192.0.2.2', gateway: '192.0.2.1' },
      { name: 'ppp1', kind: 'point-to-point', address: '198.51.100.66', gateway: '198.51.100.65' },
    ],
    lan: { subnets: [{ router: '172.20.1.1/24', host: '172.20.1.10/24' }] },
  },
  'branch-adsl-vpn': {
    uplinks: [
      { name: 'wan1', kind: 'subnet', address: '198.51.100.2/30', gateway: '198.51.100.1' },
      { name: 'wan2', kind: 'subnet', address: '198.51.100.6/30', gateway: '198.51.100.5' },
      { name: 'tun0', kind: 'point-to-point', address: '100.64.200.2', gateway: '100.64.200.1' },
    ],
    lan: { subnets: [{ router: '172.20.2.1/24', host: '172.20.2.10/24' }] },
  },
  'dmz-redundant': {
    uplinks: [
      { name: 'wan1', kind: 'subnet', address: '198.51.100.10/30', gateway: '198.51.100.9' },
      { name: 'wan2', kind: 'subnet', address: '192.0.2.130/30', gateway: '192.0.2.129' },
    ],
    lan: { subnets: [{ router: '172.20.3.1/24', host: '172.20.3.10/24' }] },
  },
  'shorewall-style': {
    uplinks: [
      { name: 'eth1', kind: 'subnet', address: '198.51.100.18/29', gateway: '198.51.100.17' },
      { name: 'eth2', kind: 'subnet', address: '198.51.100.26/29', gateway: '198.51.100.25' },
      { name: 'eth3', kind: 'dhcp', address: '192.0.2.34/29', gateway: '192.0.2.33' },
    ],
    internetHosts: ['203.0.113.10', '203.0.113.65', '203.0.113.80'],
    lan: {
      subnets: [
        { router: '172.20.4.1/24', host: '172.20.4.10/24' },
        { router: '172.20.5.1/24', host: '172.20.5.10/24' },
      ],
    },
  },
  'lartc-split': {
    uplinks: [
      { name: 'wan1', kind: 'subnet', address: '203.0.113.130/30', gateway: '203.0.113.129' },
      { name: 'wan2', kind: 'subnet', address: '198.51.100.34/30', gateway: '198.51.100.33' },
    ],
    lan: {
      subnets: [
        { router: '172.20.6.1/24', host: '172.20.6.10/24' },
        { router: '172.20.7.1/24', host: '172.20.7.10/24' },
      ],
    },
  },
  // Names as real branch routers have them: a VLAN, PPPoE (its carrier enp2s0.7 is not an
  // uplink of its own), two LTE modems, a bridged LAN and a guest VLAN.
  'branch-vlan-lte': {
    uplinks: [
      { name: 'enp1s0.100', kind: 'subnet', address: '198.51.100.50/30', gateway: '198.51.100.49' },
      { name: 'ppp0', kind: 'point-to-point', address: '10.101.2.2', gateway: '10.101.2.1' },
      { name: 'wwan0', kind: 'dhcp', address: '10.100.3.2/30', gateway: '10.100.3.1', dhcpMetric: 103 },
      { name: 'enp0s20f0u1', kind: 'dhcp', address: '10.100.4.2/30', gateway: '10.100.4.1', dhcpMetric: 104 },
    ],
    lan: {
      routerIf: 'br-lan',
      bridge: true,
      subnets: [{ router: '172.20.30.1/24', host: '172.20.30.10/24' }],
    },
    moreLans: [{ routerIf: 'br-lan.20', subnets: [{ router: '172.20.31.1/24', host: '172.20.31.10/24' }] }],
  },
  // A cable line by DHCP, and a business /29 with two more addresses for DNAT-ed servers.
  'office-29': {
    uplinks: [
      { name: 'wan1', kind: 'dhcp', address: '10.100.1.2/30', gateway: '10.100.1.1' },
      {
        name: 'enp3s0',
        kind: 'subnet',
        address: '198.51.100.58/29',
        gateway: '198.51.100.57',
        secondary: ['198.51.100.59/29', '198.51.100.60/29'],
      },
    ],
    lan: { routerIf: 'lan0', subnets: [{ router: '172.20.40.1/24', host: '172.20.40.10/24' }] },
    moreLans: [{ routerIf: 'dmz0', subnets: [{ router: '203.0.113.225/29', host: '203.0.113.226/29' }] }],
  },
};

let fleetFiles: Promise<Map<string, string>> | undefined;

/**
 * Loads the example fleet (optionally with a site file edited in memory), validates and
 * compiles `site` exactly as the controller does.
 */
export async function compileExampleSite(
  site: ExampleSite,
  edit?: (text: string) => string,
): Promise<DesiredState> {
  return compileSite(await loadExampleSite(site, edit));
}

/** The validated site (optionally edited in memory), as the controller loads it. */
export async function loadExampleSite(
  /** A reference site with a lab topology, or any other site of the example fleet. */
  site: ExampleSite | 'branch-dualstack',
  edit?: (text: string) => string,
): Promise<ValidSite> {
  fleetFiles ??= readFleetFiles(FLEET_DIR);
  const files = new Map(await fleetFiles);
  const path = `sites/${site}.yaml`;
  if (edit !== undefined) {
    const original = files.get(path)!;
    const edited = edit(original);
    if (edited === original) throw new Error(`compileExampleSite: the edit did not change ${path}`);
    files.set(path, edited);
  }
  const load = loadFleet(files);
  const errors = load.diagnostics.filter((d) => d.severity === 'error');
  if (errors.length > 0) throw new Error(`fleet does not validate: ${JSON.stringify(errors, null, 2)}`);
  const valid = load.validSites.find((s) => s.name === site);
  if (valid === undefined) throw new Error(`site ${site} is not in ${FLEET_DIR}`);
  return valid;
}

export function buildSiteLab(lab: Lab, site: ExampleSite): Promise<SiteTopology> {
  return buildSiteTopology(lab, SITE_TOPOLOGIES[site]);
}

/** The engine on one namespace, with its own state directory (what `uplink-agent --state-dir` holds). */
export class SiteAgent {
  readonly dataplane: LinuxDataplane;

  private constructor(
    readonly netns: string,
    readonly stateDir: string,
    markMask: number,
  ) {
    this.dataplane = new LinuxDataplane({ netns, markMask });
  }

  static async create(netns: string, markMask = 0xff00): Promise<SiteAgent> {
    return new SiteAgent(netns, await mkdtemp(join(tmpdir(), 'uplink-scenario-')), markMask);
  }

  apply(desired: DesiredState, health: Health = {}) {
    return reconcile(this.dataplane, desired, health, { stateDir: this.stateDir });
  }

  plan(desired: DesiredState, health: Health = {}) {
    return plan(this.dataplane, desired, health, { stateDir: this.stateDir });
  }

  revert() {
    return revert(this.dataplane, { stateDir: this.stateDir });
  }

  dispose(): Promise<void> {
    return rm(this.stateDir, { recursive: true, force: true });
  }
}

export interface RouteQuery {
  readonly from?: string;
  readonly iif?: string;
  readonly mark?: number;
  readonly uid?: number;
  readonly ipproto?: 'tcp' | 'udp' | 'icmp';
  readonly dport?: number;
}

export interface RouteAnswer {
  readonly dev?: string;
  readonly gateway?: string;
  readonly prefsrc?: string;
  /** `ip route get` refused (e.g. "Network is unreachable"): its message. */
  readonly error?: string;
}

/** What the kernel in `ns` would do with a packet: `ip -j route get …` (the design's oracle). */
export async function routeGet(
  lab: Lab,
  ns: string,
  dst: string,
  query: RouteQuery = {},
): Promise<RouteAnswer> {
  const args = ['ip', '-j', '-n', ns, 'route', 'get', dst];
  if (query.from !== undefined) args.push('from', query.from);
  if (query.iif !== undefined) args.push('iif', query.iif);
  if (query.mark !== undefined) args.push('mark', `0x${query.mark.toString(16)}`);
  if (query.uid !== undefined) args.push('uid', String(query.uid));
  if (query.ipproto !== undefined) args.push('ipproto', query.ipproto);
  if (query.dport !== undefined) args.push('dport', String(query.dport));
  const result = await lab.run(args, { allowFailure: true });
  if (result.exitCode !== 0) return { error: result.stderr.trim() };
  const [entry] = JSON.parse(result.stdout) as { dev?: string; gateway?: string; prefsrc?: string }[];
  return {
    ...(entry?.dev === undefined ? {} : { dev: entry.dev }),
    ...(entry?.gateway === undefined ? {} : { gateway: entry.gateway }),
    ...(entry?.prefsrc === undefined ? {} : { prefsrc: entry.prefsrc }),
  };
}

export interface KernelText {
  readonly rules: string;
  readonly routes: string;
  readonly nft: string;
  readonly sysctls: string;
}

/**
 * The kernel as an administrator would compare it: `ip rule show`, `ip route show table all`,
 * `nft list ruleset`, and the sysctls the site touches.
 */
export async function kernelText(lab: Lab, ns: string, sysctls: readonly string[] = []): Promise<KernelText> {
  const [rules, routes, nft, values] = await Promise.all([
    lab.run(['ip', '-n', ns, 'rule', 'show']),
    lab.run(['ip', '-n', ns, 'route', 'show', 'table', 'all']),
    lab.exec(ns, ['nft', 'list', 'ruleset']),
    // sysctl(8) spells a dot in an interface name as '/' (net.ipv4.conf.enp1s0/100.rp_filter).
    sysctls.length === 0
      ? Promise.resolve({ stdout: '' })
      : lab.exec(ns, ['sysctl', ...sysctls.map(sysctlToolKey)]),
  ]);
  return { rules: rules.stdout, routes: routes.stdout, nft: nft.stdout, sysctls: values.stdout };
}

/** `ip rule show` lines (without the priority's tab quirks), e.g. `10010: from all ipproto tcp dport 25 lookup 100 proto 252`. */
export async function ruleLines(lab: Lab, ns: string): Promise<string[]> {
  const result = await lab.run(['ip', '-n', ns, 'rule', 'show']);
  return result.stdout
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => line.replace(/\t/g, ' ').replace(/\s+/g, ' ').trim());
}

/**
 * `ip link set dev DEV up|down` in `ns`; for `up`, waits until the link is operationally up
 * (linkwatch lags the admin state; the agent rightly treats a link without carrier as down).
 */
export async function setLink(lab: Lab, ns: string, dev: string, state: 'up' | 'down'): Promise<void> {
  await lab.run(['ip', '-n', ns, 'link', 'set', 'dev', dev, state]);
  if (state === 'up') await waitOperUp(lab, ns, [dev]);
}
