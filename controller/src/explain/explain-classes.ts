/**
 * Which traffic moves to another uplink when a site's spec changes: for `uplink plan`.
 * Both specs are simulated offline (synthesized facts, every provider up) over a list of
 * representative packets — one per policy, default traffic from each LAN subnet and the
 * router's own traffic — and each class's uplink is compared. Pure.
 */

import { canonicalJson } from '#agent/model';
import {
  formatUplinkChoice,
  mapVerdictToProvider,
  type Packet,
  simulatePacket,
  type UplinkChoice,
} from '#agent/sim';
import { contains, networkOf, overlaps } from '../spec/addresses.js';
import type { ValidPolicy, ValidSite } from '../spec/valid-site.js';
import { buildSiteView, type SiteViewOptions } from './build-site-view.js';
import { clientAddressIn } from './synthesize-facts.js';

export interface TrafficClass {
  /** `policy smtp`, `default traffic from 172.20.2.0/24 (lan0)`, `the router's own traffic`. */
  readonly name: string;
  readonly packet: Packet;
}

export interface ClassComparison {
  readonly trafficClass: TrafficClass;
  readonly before: UplinkChoice;
  readonly after: UplinkChoice;
  /** The class leaves by another uplink, another interface, or with other balance shares. */
  readonly moved: boolean;
  /** `policy smtp: isp1 (wan1) → isp2 (wan2)`. */
  readonly text: string;
}

/**
 * Every class under both specs, in the order given; `moved` marks the ones that change.
 * Weights that keep their ratio (8:2 → 4:1) are not a move.
 */
export function explainClasses(
  siteBefore: ValidSite,
  siteAfter: ValidSite,
  classes: readonly TrafficClass[],
  /** The router's facts, for both sides (D172); stand-ins without. */
  viewOptions: SiteViewOptions = {},
): ClassComparison[] {
  const before = buildSiteView(siteBefore, [], viewOptions);
  const after = buildSiteView(siteAfter, [], viewOptions);
  return classes.map((trafficClass) => {
    const choose = (side: typeof before) =>
      mapVerdictToProvider(
        simulatePacket(side.view, trafficClass.packet, { trace: false }).verdict,
        side.desired.providers,
      );
    const b = choose(before);
    const a = choose(after);
    const moved = choiceKey(b) !== choiceKey(a);
    const text = moved
      ? `${trafficClass.name}: ${formatUplinkChoice(b)} → ${formatUplinkChoice(a)}`
      : `${trafficClass.name}: ${formatUplinkChoice(a)} (unchanged)`;
    return { trafficClass, before: b, after: a, moved, text };
  });
}

/** Representative packets for the policies and LANs of both sites, without repeats. */
export function trafficClassesOf(siteBefore: ValidSite, siteAfter: ValidSite): TrafficClass[] {
  const sites = [siteAfter, siteBefore];
  const internet = internetAddress(sites);
  const out: TrafficClass[] = [];
  const seen = new Set<string>();
  const add = (name: string, packet: Packet) => {
    const key = canonicalJson(packet);
    if (seen.has(key)) return;
    seen.add(key);
    const taken = out.some((c) => c.name === name);
    out.push({ name: taken ? `${name} (as before)` : name, packet });
  };

  // The simulator follows IPv4 packets: IPv6-only policies and IPv6 LAN prefixes have no IPv4 class.
  for (const site of sites) {
    for (const policy of site.policies) {
      if (policy.families !== undefined && !policy.families.includes('inet')) continue;
      add(`policy ${policy.name}`, policyPacket(ipv4Half(policy), site, internet));
    }
  }
  for (const site of sites) {
    for (const lan of site.lan) {
      for (const subnet of lan.subnets.filter(isIpv4)) {
        add(`default traffic from ${subnet} (${lan.interface})`, {
          dst: internet,
          src: clientAddressIn(subnet),
          iif: lan.interface,
        });
      }
    }
  }
  add("the router's own traffic", { dst: internet });
  return out;
}

const isIpv4 = (cidr: string) => !cidr.includes(':');

function ipv4Half(policy: ValidPolicy): ValidPolicy {
  return { ...policy, from: policy.from.filter(isIpv4), to: policy.to.filter(isIpv4) };
}

/** The first packet a policy's selectors match: first value of every list, first port of every range. */
function policyPacket(policy: ValidPolicy, site: ValidSite, internet: string): Packet {
  const from = policy.from[0] === undefined ? undefined : clientAddressIn(policy.from[0]);
  const to = policy.to[0] === undefined ? internet : clientAddressIn(policy.to[0]);
  const local = policy.iif[0] === 'lo' || policy.uid !== null;
  const iif = local
    ? undefined
    : (policy.iif[0] ??
      site.lan.find((l) => from !== undefined && l.subnets.filter(isIpv4).some((s) => contains(s, from)))
        ?.interface ??
      site.lan[0]?.interface);
  const lanSubnet = site.lan.find((l) => l.interface === iif)?.subnets.find(isIpv4);
  const src =
    iif === undefined ? from : (from ?? (lanSubnet === undefined ? undefined : clientAddressIn(lanSubnet)));
  const ported = policy.dport.length > 0 || policy.sport.length > 0;
  const proto = policy.proto ?? (ported ? 'tcp' : undefined);
  return {
    dst: to,
    ...(src === undefined ? {} : { src }),
    ...(iif === undefined ? {} : { iif }),
    ...(proto === undefined ? {} : { proto }),
    ...(policy.sport[0] === undefined ? {} : { sport: policy.sport[0].start }),
    ...(policy.dport[0] === undefined ? {} : { dport: policy.dport[0].start }),
    ...(policy.uid === null || !local ? {} : { uid: policy.uid.start }),
    ...(policy.mark === null ? {} : { mark: policy.mark.value }),
    ...(policy.tos === null ? {} : { tos: policy.tos }),
  };
}

/** Documentation addresses (RFC 5737) that no network of either site covers. */
const INTERNET_CANDIDATES = [
  '203.0.113.25',
  '198.51.100.25',
  '192.0.2.25',
  '203.0.113.200',
  '198.51.100.200',
];

function internetAddress(sites: readonly ValidSite[]): string {
  const networks: string[] = ['100.64.0.0/10'];
  for (const site of sites) {
    for (const lan of site.lan) networks.push(...lan.subnets);
    for (const p of site.providers) {
      if (p.address !== null) networks.push(networkOf(p.address.address, p.address.prefixLength));
      if (p.gateway.kind === 'static') networks.push(`${p.gateway.address}/32`);
    }
    for (const policy of site.policies) networks.push(...policy.to, ...policy.from);
  }
  return (
    INTERNET_CANDIDATES.find((a) => !networks.filter(isIpv4).some((n) => overlaps(n, `${a}/32`))) ??
    INTERNET_CANDIDATES[0]!
  );
}

/** Identity of an uplink choice; balanced shares by reduced weight ratio, in name order. */
function choiceKey(choice: UplinkChoice): string {
  if (choice.kind !== 'balanced') return JSON.stringify(choice);
  const divisor = choice.shares.reduce((g, s) => gcd(g, s.weight), 0) || 1;
  return `balanced ${choice.shares
    .map((s) => `${s.provider ?? ''}/${s.dev}:${s.weight / divisor}`)
    .sort()
    .join(' ')}`;
}

function gcd(a: number, b: number): number {
  return b === 0 ? a : gcd(b, a % b);
}
