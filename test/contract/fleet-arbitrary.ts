/**
 * fast-check generators of valid fleet repositories across the whole spec surface, for the
 * contract property test (D89): every selector, interface names up to 15 characters with
 * dots, dashes, `@` and digits, gateway kinds, SNAT forms, health settings and durations at
 * the agent's limits, explicit and assigned tables and marks, groups with overrides,
 * `remove: true` and `field: null`, per-interface sysctls. Valid by construction: a
 * diagnostic error on a generated fleet is a finding, not noise.
 *
 * Each generated site also carries the facts a router with that shape would report
 * (interfaces up, addresses, detected gateways, PPP peers), so the memory dataplane can
 * apply its compiled state.
 */
import fc from 'fast-check';
import { stringify } from 'yaml';
import type { Facts, InterfaceFacts } from '../../agent/src/model/kernel-state.js';
import { formatMs, LIMITS } from '../../agent/src/model/limits.js';

export interface GeneratedFleet {
  /** Repository-relative path → YAML text. */
  readonly files: Map<string, string>;
  /** Per site: the facts its router reports. */
  readonly facts: Map<string, Facts>;
}

const HOST_KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEaBhMD+z0lxDQfAW10VyG7qYY4PRXHcvAYGlNrX3ReB';
const FIRST = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_'.split('');
const REST = [...FIRST, '.', '-', '@'];

/** An interface name of 1–15 characters as the kernel allows them (not all/default). */
const interfaceName = fc
  .tuple(fc.constantFrom(...FIRST), fc.array(fc.constantFrom(...REST), { maxLength: 14 }))
  .map(([first, rest]) => first + rest.join(''))
  .filter((name) => name !== 'all' && name !== 'default' && name !== 'lo');

/** Names the way real boxes have them, mixed in so the common shapes always show up. */
const realInterfaceName = fc.constantFrom(
  'enp1s0.100',
  'enp2s0.7',
  'ppp0',
  'ppp1',
  'wwan0',
  'enp0s20f0u1',
  'eth0.4094',
  'wan-fibre.835',
  'lte_modem@usb',
  'abcdefghijklmno',
);

const objectName = fc
  .tuple(
    fc.constantFrom(...'abcdefghijklmnopqrstuvwxyz'.split('')),
    fc.array(fc.constantFrom(...'abcdefghijklmnopqrstuvwxyz0123456789_-'.split('')), { maxLength: 30 }),
  )
  .map(([a, rest]) => a + rest.join(''));

/** A duration in [min, max] ms, written in the unit that states it exactly. */
const duration = (min: number, max: number) =>
  fc.oneof(fc.constantFrom(min, max), fc.integer({ min, max })).map(formatMs);

const portSpec = fc.oneof(
  fc.integer({ min: 1, max: 65535 }),
  fc
    .tuple(fc.integer({ min: 1, max: 65535 }), fc.integer({ min: 0, max: 500 }))
    .map(([a, n]) => `${a}-${Math.min(65535, a + n)}`),
);

/** A canonical CIDR inside 198.18.0.0/15 (a benchmark range, never on any of our wires). */
const cidr = fc
  .tuple(fc.integer({ min: 0, max: 0x1ffff }), fc.integer({ min: 15, max: 32 }))
  .map(([n, len]) => {
    const base = (0xc6120000 + n) >>> 0;
    const mask = (~0 << (32 - len)) >>> 0;
    const net = (base & mask) >>> 0;
    return `${[net >>> 24, (net >>> 16) & 255, (net >>> 8) & 255, net & 255].join('.')}/${len}`;
  });

interface ProviderDraft {
  readonly spec: Record<string, unknown>;
  readonly facts: InterfaceFacts;
  readonly ipv4: boolean;
  readonly ipv6: boolean;
}

const MASKS = [0xff00, 0xff0000, 0xf000, 0x3f00, 0xff000000] as const;

function marksUnder(mask: number): number {
  let bits = 0;
  for (let i = 0; i < 32; i++) if ((mask >>> i) & 1) bits++;
  return 2 ** bits - 1;
}

const healthArb = fc.record(
  {
    enabled: fc.boolean(),
    method: fc.constantFrom('icmp', 'tcp'),
    interval: duration(LIMITS.health.intervalMs.min, LIMITS.health.intervalMs.max),
    failAfter: fc.integer(LIMITS.health.failAfter),
    recoverAfter: fc.integer(LIMITS.health.recoverAfter),
    minTargetsUp: fc.integer({ min: 1, max: 3 }),
    targets: fc.integer({ min: 0, max: LIMITS.health.targets.max }),
  },
  { requiredKeys: [] },
);

/** One provider on interface `iface`, the i-th of the site: addresses in 10.<i>.<site>.0/24. */
function providerArb(iface: string, i: number, siteIndex: number, explicitTable: boolean) {
  const net = `10.${i + 1}.${siteIndex % 250}`;
  return fc
    .record({
      // The first provider always carries IPv4 (the policies route through the IPv4 ones).
      family:
        i === 0 ? fc.constantFrom('ipv4', 'dual') : fc.constantFrom('ipv4', 'ipv4', 'dual', 'ipv6-only'),
      ipv6: fc.record({
        address: fc.constantFrom('learned', 'static'),
        gateway: fc.constantFrom('detect', 'link-local', 'global'),
        npt: fc.option(fc.boolean(), { nil: undefined }),
      }),
      gateway: fc.constantFrom('static', 'detect', 'point-to-point', 'ppp'),
      withAddress: fc.boolean(),
      balance: fc.option(fc.integer(LIMITS.balanceWeight), { nil: undefined }),
      fallback: fc.option(fc.oneof(fc.constant(true), fc.integer(LIMITS.fallbackOrder)), { nil: undefined }),
      track: fc.option(fc.boolean(), { nil: undefined }),
      snat: fc.option(fc.constantFrom('auto', 'none', 'address'), { nil: undefined }),
      rpFilter: fc.option(fc.constantFrom('off', 'strict', 'loose'), { nil: undefined }),
      health: fc.option(healthArb, { nil: undefined }),
      routed: fc.boolean(),
    })
    .map((d): ProviderDraft => {
      const spec: Record<string, unknown> = { name: `p${i}`, interface: iface };
      const address = `${net}.2`;
      let facts: InterfaceFacts;
      if (d.gateway === 'static') {
        spec.gateway = `${net}.1`;
        if (d.withAddress) spec.address = `${address}/24`;
        facts = { exists: true, up: true, addresses: [{ address, prefixLength: 24 }] };
      } else if (d.gateway === 'detect') {
        spec.gateway = 'detect';
        facts = {
          exists: true,
          up: true,
          addresses: [{ address, prefixLength: 24 }],
          detectedGateway: `${net}.1`,
        };
      } else {
        spec.gateway = d.gateway;
        facts = { exists: true, up: true, addresses: [{ address, prefixLength: 32, peer: `${net}.1` }] };
      }
      // Balanced or a fallback, never both.
      if (d.balance !== undefined) spec.balance = d.balance;
      else if (d.fallback !== undefined) spec.fallback = d.fallback;
      if (d.track !== undefined) spec.track = d.track;
      if (d.snat === 'address') spec.snat = address;
      else if (d.snat !== undefined) spec.snat = d.snat;
      if (d.rpFilter !== undefined) spec.rpFilter = d.rpFilter;
      if (explicitTable) spec.table = 1000 + i;
      // A block the ISP routes to the router, one per provider, never on an interface.
      if (d.routed) spec.routed = [`192.0.2.${16 + 8 * i}/29`];
      if (d.family !== 'ipv4') {
        // One /48 per provider and an uplink /64 (D180): all the same length, so NPTv6 maps.
        const uplink = `2001:db8:f${i}0${siteIndex}`;
        const ipv6: Record<string, unknown> = { prefixes: [ipv6PrefixOf(i, siteIndex)] };
        const staticAddress = d.ipv6.address === 'static' || d.ipv6.gateway === 'global';
        if (staticAddress) ipv6.address = `${uplink}::2/64`;
        else ipv6.address = 'learned';
        ipv6.gateway =
          d.ipv6.gateway === 'global'
            ? `${uplink}::1`
            : d.ipv6.gateway === 'link-local'
              ? 'fe80::1'
              : 'detect';
        if (d.ipv6.npt !== undefined) ipv6.npt = d.ipv6.npt;
        spec.ipv6 = ipv6;
        facts = {
          ...facts,
          addresses6: [{ address: `${uplink}::2`, prefixLength: 64 }],
          ...(ipv6.gateway === 'detect' ? { detectedGateway6: 'fe80::1' } : {}),
        };
      }
      if (d.family === 'ipv6-only') {
        // No IPv4 at all (D165): nothing IPv4 is written, the interface has no IPv4 address.
        for (const key of ['gateway', 'address', 'routed', 'rpFilter']) delete spec[key];
        if (typeof spec.snat === 'string' && spec.snat !== 'auto' && spec.snat !== 'none') delete spec.snat;
        spec.ipv4 = false;
        const { detectedGateway: _gw, ...rest } = facts;
        facts = { ...rest, addresses: [] };
      }
      if (d.health !== undefined) {
        const h = d.health;
        const health: Record<string, unknown> = {};
        if (h.enabled !== undefined) health.enabled = h.enabled;
        if (h.method !== undefined) {
          health.method = h.method;
          if (h.method === 'tcp') health.tcpPort = 443;
        }
        if (h.interval !== undefined) {
          health.interval = h.interval;
          // The timeout is bounded by the interval and by its own limit.
          health.timeout = formatMs(Math.min(LIMITS.health.timeoutMs.max, parseMs(h.interval)));
        } else {
          health.timeout = formatMs(LIMITS.health.timeoutMs.min);
        }
        if (h.failAfter !== undefined) health.failAfter = h.failAfter;
        if (h.recoverAfter !== undefined) health.recoverAfter = h.recoverAfter;
        if (h.targets !== undefined && d.family !== 'ipv6-only') {
          health.targets = Array.from({ length: h.targets }, (_, t) => `192.0.2.${t + 1}`);
          if (h.minTargetsUp !== undefined && h.minTargetsUp <= h.targets)
            health.minTargetsUp = h.minTargetsUp;
        }
        spec.health = health;
      }
      return { spec, facts, ipv6: d.family !== 'ipv4', ipv4: d.family !== 'ipv6-only' };
    });
}

/** The /48 the ISP of provider `i` routes to site `siteIndex`. */
function ipv6PrefixOf(i: number, siteIndex: number): string {
  return `2001:db8:${(0x100 * (i + 1) + siteIndex).toString(16)}::/48`;
}

function parseMs(text: string): number {
  const m = /^(\d+)(ms|s|m|h)$/.exec(text)!;
  return Number(m[1]) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] as 'ms' | 's' | 'm' | 'h'];
}

/** Policies over `providers`, laid out so explicit priorities never collide. */
function policiesArb(providers: readonly string[], lan: boolean, markMask: number) {
  const outside = ~markMask >>> 0;
  const policyMask = outside & 0xff || (outside & 0xff000000) >>> 0;
  const one = fc.record(
    {
      name: objectName,
      from: fc.oneof(cidr, fc.array(cidr, { minLength: 1, maxLength: 3 })),
      to: fc.oneof(cidr, fc.array(cidr, { minLength: 1, maxLength: 3 })),
      iif: realInterfaceName,
      uid: fc.oneof(fc.integer({ min: 0, max: 65535 }), fc.constant('1000-1999')),
      ports: fc.record({
        proto: fc.constantFrom('tcp', 'udp'),
        dport: fc.oneof(portSpec, fc.array(portSpec, { minLength: 1, maxLength: 3 })),
        sport: fc.option(portSpec, { nil: undefined }),
      }),
      icmp: fc.constant('icmp'),
      tos: fc.constantFrom(0x10, 0x08, 0x04, 0xb8),
      mark: fc
        .integer({ min: 1, max: policyMask })
        .map((v) => `0x${(v & policyMask).toString(16) || '1'}/0x${policyMask.toString(16)}`),
      traffic: fc.constantFrom('all', 'local', 'forwarded'),
      via: fc.shuffledSubarray([...providers], { minLength: 1 }),
      action: fc.constantFrom(
        'route',
        'route',
        'route',
        'main',
        'balance',
        'blackhole',
        'unreachable',
        'prohibit',
      ),
      gap: fc.option(fc.integer({ min: 0, max: 40 }), { nil: undefined }),
    },
    { requiredKeys: ['name', 'via', 'action'] },
  );
  const named = one.filter((p) => p.name !== 'from-group');
  return fc.uniqueArray(named, { maxLength: 12, selector: (p) => p.name }).map((drafts) => {
    let cursor = 10_000;
    return drafts.map((d) => {
      const p: Record<string, unknown> = { name: d.name };
      if (d.from !== undefined) p.from = d.from;
      if (d.to !== undefined) p.to = d.to;
      let traffic = d.traffic;
      if (traffic === 'forwarded' && !lan) traffic = 'all';
      if (traffic === 'local' || traffic === 'forwarded') p.traffic = traffic;
      else if (d.iif !== undefined) p.iif = d.iif;
      if (d.uid !== undefined && traffic !== 'forwarded') p.uid = d.uid;
      if (d.ports !== undefined) {
        p.proto = d.ports.proto;
        p.dport = d.ports.dport;
        if (d.ports.sport !== undefined) p.sport = d.ports.sport;
      } else if (d.icmp !== undefined) p.proto = 'icmp';
      if (d.tos !== undefined) p.tos = d.tos;
      if (d.mark !== undefined && policyMask !== 0) p.mark = d.mark;
      if (d.action === 'route') p.via = d.via;
      else p.action = d.action;
      const count =
        Math.max(1, listLength(p.from)) *
        Math.max(1, listLength(p.to)) *
        Math.max(1, listLength(p.dport)) *
        Math.max(1, p.sport === undefined ? 0 : 1) *
        (d.action === 'route' ? d.via.length : 1);
      if (d.gap !== undefined) {
        p.priority = cursor + d.gap;
        cursor = Math.ceil((cursor + d.gap + count) / 10) * 10;
      } else cursor = Math.ceil((cursor + count) / 10) * 10;
      return p;
    });
  });
}

function listLength(value: unknown): number {
  return value === undefined ? 0 : Array.isArray(value) ? value.length : 1;
}

function siteArb(index: number) {
  return fc
    .record({
      markMask: fc.constantFrom(...MASKS),
      names: fc.uniqueArray(fc.oneof(interfaceName, realInterfaceName), { minLength: 2, maxLength: 8 }),
      explicitTables: fc.boolean(),
      lan: fc.boolean(),
      protocol: fc.option(fc.constantFrom(5, 7, 100, 200, 252, 255), { nil: undefined }),
      balanceTableDefault: fc.boolean(),
      sysctlLeaf: fc.constantFrom('accept_local', 'src_valid_mark', 'arp_filter'),
      fromGroup: fc.boolean(),
    })
    .chain((base) => {
      const providerCount = Math.min(base.names.length - (base.lan ? 1 : 0), marksUnder(base.markMask));
      const ifaces = base.names.slice(0, providerCount);
      const lanIface = base.lan ? base.names[providerCount]! : undefined;
      return fc
        .tuple(...ifaces.map((iface, i) => providerArb(iface, i, index, base.explicitTables)))
        .chain((providers) =>
          // Addressed and ICMP policies are IPv4 ones: they route via the providers with IPv4.
          policiesArb(
            providers.flatMap((p, i) => (p.ipv4 ? [`p${i}`] : [])),
            lanIface !== undefined,
            base.markMask,
          ).map((policies) => ({ base, providers, policies, lanIface })),
        );
    });
}

/** A fleet of 1–4 sites; some take their first provider and a policy from a group and override it. */
export const fleetArbitrary: fc.Arbitrary<GeneratedFleet> = fc
  .record({
    count: fc.integer({ min: 1, max: 4 }),
    confirmWithin: duration(LIMITS.confirmWithinMs.min, LIMITS.confirmWithinMs.max),
  })
  .chain(({ count, confirmWithin }) =>
    fc.tuple(...Array.from({ length: count }, (_, i) => siteArb(i))).map((sites) => {
      const files = new Map<string, string>();
      const facts = new Map<string, Facts>();
      files.set(
        'fleet.yaml',
        stringify({
          rollout: {
            confirmWithin,
            waves: count === 1 ? [{ name: 'all' }] : [{ name: 'canary', count: 1 }, { name: 'rest' }],
          },
        }),
      );
      sites.forEach(({ base, providers, policies, lanIface }, i) => {
        const name = `site-${i}`;
        const site: Record<string, unknown> = {
          name,
          management: { address: `192.0.2.${100 + i}`, hostKey: HOST_KEY },
        };
        const interfaces: Record<string, InterfaceFacts> = {};
        for (const p of providers) interfaces[p.spec.interface as string] = p.facts;
        if (lanIface !== undefined) {
          // The LAN is numbered from every IPv6 provider's prefix too (D180).
          const lan6 = providers.flatMap((p, n) =>
            p.ipv6 ? [ipv6PrefixOf(n, i).replace('::/48', ':1::/64')] : [],
          );
          site.lan = [{ interface: lanIface, subnets: [`172.20.${i}.0/24`, ...lan6] }];
          interfaces[lanIface] = {
            exists: true,
            up: true,
            addresses: [{ address: `172.20.${i}.1`, prefixLength: 24 }],
            ...(lan6.length > 0
              ? {
                  addresses6: lan6.map((net) => ({ address: net.replace('::/64', '::1'), prefixLength: 64 })),
                }
              : {}),
          };
        }
        const settings: Record<string, unknown> = { markMask: `0x${base.markMask.toString(16)}` };
        if (base.protocol !== undefined) settings.protocol = base.protocol;
        if (base.balanceTableDefault) settings.balanceTable = 'default';
        if (base.explicitTables) settings.adoptTables = [1000];
        site.settings = settings;
        const specs = providers.map((p) => p.spec);
        if (base.fromGroup && specs.length > 0) {
          // The group supplies p0 with balance; the site drops the balance, makes it a
          // fallback and adds an rp_filter, and removes the group's policy.
          const group = {
            name: `g${i}`,
            providers: [{ ...specs[0], balance: 3 }],
            policies: [{ name: 'from-group', to: '198.18.0.0/16', via: ['p0'] }],
            sysctls: { 'net.ipv4.conf.all.src_valid_mark': 1 },
          };
          files.set(`groups/g${i}.yaml`, stringify(group));
          site.extends = [`g${i}`];
          const { fallback: _f, balance: _b, ...rest } = specs[0]!;
          specs[0] = { ...rest, name: 'p0', balance: null, fallback: 1, rpFilter: 'off' };
          site.policies = [{ name: 'from-group', remove: true }, ...policies];
        } else {
          site.policies = policies;
        }
        site.providers = specs;
        // `action: balance` needs a balanced provider; without one the class takes main.
        if (!specs.some((p) => p.balance !== undefined && p.balance !== null)) {
          for (const policy of site.policies as Record<string, unknown>[]) {
            if (policy.action === 'balance') policy.action = 'main';
          }
        }
        site.sysctls = { [`net.ipv4.conf.${specs[specs.length - 1]!.interface}.${base.sysctlLeaf}`]: 1 };
        // markMask is written as a number: YAML has no hex strings for it.
        (site.settings as Record<string, unknown>).markMask = base.markMask;
        files.set(`sites/${name}.yaml`, stringify(site));
        facts.set(name, { interfaces });
      });
      return { files, facts };
    }),
  );
