/**
 * Parses iproute2's JSON output into the kernel model.
 *
 * The agent runs `ip -N` (numeric: tables, protocols, route types and scopes as numbers,
 * so /etc/iproute2/rt_* files cannot change what we read); the parsers also accept the
 * symbolic names iproute2 prints without `-N`. Field names as iproute2 6.1 prints them
 * (recorded in fixtures/iproute2-6.1):
 *
 * - rules: `src`+`srclen`, `dst`+`dstlen` (no `*len` for a /32; `src: "all"` for any),
 *   `fwmark`/`fwmask` as hex strings (no `fwmask` when it is 0xffffffff), `uid_start`/
 *   `uid_end`, `ipproto` (`tcp`, or `ipproto-6` under `-N`), `sport`/`dport` for one port and
 *   `sport_start`/`sport_end` for a range, `tos` as a hex string, `suppress_prefixlen`,
 *   `action` only when not `lookup` (`blackhole`, or `6` under `-N`), `table`, `protocol`.
 * - routes: `dst` (`default`, or a bare address for a /32), `gateway`, `dev`, `prefsrc`,
 *   `scope`, `metric` (absent when 0), `nexthops[]` with `gateway`/`dev`/`weight`.
 *
 * Kernel objects the model cannot express (`not`, `goto`, `l3mdev`, other IP protocols,
 * `local`/`broadcast` routes, nexthop objects, interface names the model rejects, ...) are
 * left out and reported through `onSkip`: they can only be foreign, because Uplink never
 * writes them.
 */
import ipaddr from 'ipaddr.js';
import { canonicalIpv6Cidr } from '../model/desired-state.js';
import {
  type Facts,
  type InterfaceFacts,
  type KernelNexthop,
  type KernelRoute,
  type KernelRule,
  kernelRoute,
  kernelRule,
} from '../model/kernel-state.js';

export class IpJsonError extends Error {
  override readonly name = 'IpJsonError';
}

export interface ParseIpOptions {
  /** Called for each kernel object that is valid but not expressible in the model. */
  readonly onSkip?: (entry: unknown, reason: string) => void;
  /** `inet6`: the listing is `ip -6`'s; the objects get `family: 'inet6'`. Default IPv4. */
  readonly family?: 'inet6';
}

const TABLE_NAMES: Readonly<Record<string, number>> = { unspec: 0, default: 253, main: 254, local: 255 };

/** /etc/iproute2/rt_protos as shipped with iproute2 6.1. */
const PROTOCOL_NAMES: Readonly<Record<string, number>> = {
  unspec: 0,
  redirect: 1,
  kernel: 2,
  boot: 3,
  static: 4,
  gated: 8,
  ra: 9,
  mrt: 10,
  zebra: 11,
  bird: 12,
  dnrouted: 13,
  xorp: 14,
  ntk: 15,
  dhcp: 16,
  keepalived: 18,
  babel: 42,
  openr: 99,
  bgp: 186,
  isis: 187,
  ospf: 188,
  rip: 189,
  eigrp: 192,
};

/** rtm_type numbers (linux/rtnetlink.h) for the types the model holds. */
const ROUTE_TYPES: Readonly<Record<string, KernelRoute['type']>> = {
  unicast: 'unicast',
  '1': 'unicast',
  blackhole: 'blackhole',
  '6': 'blackhole',
  unreachable: 'unreachable',
  '7': 'unreachable',
  prohibit: 'prohibit',
  '8': 'prohibit',
  throw: 'throw',
  '9': 'throw',
};

const RULE_ACTIONS: Readonly<Record<string, KernelRule['action']>> = {
  blackhole: 'blackhole',
  '6': 'blackhole',
  unreachable: 'unreachable',
  '7': 'unreachable',
  prohibit: 'prohibit',
  '8': 'prohibit',
};

const SCOPES: Readonly<Record<string, 'global' | 'link' | 'host'>> = {
  global: 'global',
  universe: 'global',
  '0': 'global',
  link: 'link',
  '253': 'link',
  host: 'host',
  '254': 'host',
};

const IP_PROTOS: Readonly<Record<string, KernelRule['ipproto']>> = {
  tcp: 'tcp',
  'ipproto-6': 'tcp',
  udp: 'udp',
  'ipproto-17': 'udp',
  icmp: 'icmp',
  'ipproto-1': 'icmp',
  'ipv6-icmp': 'ipv6-icmp',
  'ipproto-58': 'ipv6-icmp',
};

/** Keys of a rule entry the model can express; any other key makes the rule unrepresentable. */
const RULE_KEYS = new Set([
  'priority',
  'src',
  'srclen',
  'dst',
  'dstlen',
  'iif',
  'iif_detached',
  'oif',
  'oif_detached',
  'fwmark',
  'fwmask',
  'uid_start',
  'uid_end',
  'ipproto',
  'sport',
  'sport_start',
  'sport_end',
  'dport',
  'dport_start',
  'dport_end',
  'tos',
  'table',
  'action',
  'suppress_prefixlen',
  'protocol',
  'flags',
]);

/** Keys of a route entry that do not change its identity or forwarding (ignored). */
const ROUTE_IGNORED_KEYS = new Set(['flags', 'pref', 'metrics', 'expires', 'cache', 'family']);
const ROUTE_KEYS = new Set([
  'type',
  'dst',
  'gateway',
  'dev',
  'table',
  'protocol',
  'scope',
  'prefsrc',
  'metric',
  'nexthops',
  ...ROUTE_IGNORED_KEYS,
]);

/** `ip -j -d rule show` (IPv4) → rules, in kernel order. */
export function parseIpRules(input: string | unknown, options: ParseIpOptions = {}): KernelRule[] {
  const rules: KernelRule[] = [];
  const v6 = options.family === 'inet6';
  forEachEntry(input, v6 ? 'ip -6 rule' : 'ip rule', (entry, where) => {
    const skip = (reason: string) => options.onSkip?.(entry, reason);
    const unknownKey = Object.keys(entry).find((key) => !RULE_KEYS.has(key));
    if (unknownKey !== undefined) return skip(`rule has "${unknownKey}", which Uplink does not model`);
    const rule: Record<string, unknown> = {
      priority: requireInteger(entry.priority, `${where}: priority`),
      protocol: parseProtocol(entry.protocol, where),
      ...(v6 ? { family: 'inet6' } : {}),
    };
    if (entry.action === undefined) {
      rule.action = 'lookup';
      const table = parseTable(entry.table, where);
      if (table === undefined) return skip('rule has no table and no action');
      rule.table = table;
    } else {
      const action = RULE_ACTIONS[String(entry.action)];
      if (action === undefined) return skip(`rule action ${JSON.stringify(entry.action)}`);
      rule.action = action;
    }
    const from = parsePrefix(entry.src, entry.srclen, `${where}: src`, v6);
    if (from !== undefined) rule.from = from;
    const to = parsePrefix(entry.dst, entry.dstlen, `${where}: dst`, v6);
    if (to !== undefined) rule.to = to;
    if (entry.iif !== undefined) rule.iif = requireString(entry.iif, `${where}: iif`);
    if (entry.oif !== undefined) rule.oif = requireString(entry.oif, `${where}: oif`);
    if (entry.fwmark !== undefined) rule.fwmark = parseNumber(entry.fwmark, `${where}: fwmark`);
    if (entry.fwmask !== undefined) {
      const mask = parseNumber(entry.fwmask, `${where}: fwmask`);
      if (mask !== 0xffffffff) rule.fwmask = mask;
      if (rule.fwmark === undefined) rule.fwmark = 0;
    }
    if (entry.uid_start !== undefined || entry.uid_end !== undefined) {
      rule.uidrange = {
        start: requireInteger(entry.uid_start, `${where}: uid_start`),
        end: requireInteger(entry.uid_end, `${where}: uid_end`),
      };
    }
    if (entry.ipproto !== undefined) {
      const proto = IP_PROTOS[String(entry.ipproto)];
      if (proto === undefined) return skip(`rule ipproto ${JSON.stringify(entry.ipproto)}`);
      rule.ipproto = proto;
    }
    const sport = parsePortRange(entry, 'sport', where);
    if (sport !== undefined) rule.sport = sport;
    const dport = parsePortRange(entry, 'dport', where);
    if (dport !== undefined) rule.dport = dport;
    if (entry.tos !== undefined) {
      const tos = parseNumber(entry.tos, `${where}: tos`, 16);
      if (tos !== 0) rule.tos = tos;
    }
    if (entry.suppress_prefixlen !== undefined) {
      rule.suppressPrefixlength = requireInteger(entry.suppress_prefixlen, `${where}: suppress_prefixlen`);
    }
    const parsed = kernelRule.safeParse(rule);
    if (!parsed.success)
      return skip(`rule does not fit the model: ${parsed.error.issues[0]?.message ?? 'invalid'}`);
    rules.push(parsed.data);
  });
  return rules;
}

/**
 * `ip -j -d route show table all` (IPv4) → routes. Table local (255) is left out: the kernel
 * owns it. Non-IPv4 entries are skipped (run `ip -4`).
 */
export function parseIpRoutes(input: string | unknown, options: ParseIpOptions = {}): KernelRoute[] {
  const routes: KernelRoute[] = [];
  const v6 = options.family === 'inet6';
  forEachEntry(input, v6 ? 'ip -6 route' : 'ip route', (entry, where) => {
    const skip = (reason: string) => options.onSkip?.(entry, reason);
    const table = parseTable(entry.table ?? 'main', where);
    if (table === 255) return;
    const unknownKey = Object.keys(entry).find((key) => !ROUTE_KEYS.has(key));
    if (unknownKey !== undefined) return skip(`route has "${unknownKey}", which Uplink does not model`);
    const type = ROUTE_TYPES[String(entry.type ?? 'unicast')];
    if (type === undefined) return skip(`route type ${JSON.stringify(entry.type)}`);
    const dstText = requireString(entry.dst, `${where}: dst`);
    if (dstText.includes(':') !== v6 && dstText !== 'default')
      return skip(`not an ${v6 ? 'IPv6' : 'IPv4'} route`);
    const address = v6 ? parseAddress6 : parseAddress;
    const route: Record<string, unknown> = {
      table,
      dst:
        dstText === 'default'
          ? v6
            ? '::/0'
            : '0.0.0.0/0'
          : (v6 ? parseCidr6 : parseCidr)(dstText, `${where}: dst`),
      type,
      protocol: parseProtocol(entry.protocol, where),
      ...(v6 ? { family: 'inet6' } : {}),
    };
    if (entry.gateway !== undefined) route.gateway = address(entry.gateway, `${where}: gateway`);
    if (entry.dev !== undefined) route.dev = requireString(entry.dev, `${where}: dev`);
    if (entry.prefsrc !== undefined) route.src = address(entry.prefsrc, `${where}: prefsrc`);
    if (entry.scope !== undefined) {
      const scope = SCOPES[String(entry.scope)];
      if (scope === undefined) return skip(`route scope ${JSON.stringify(entry.scope)}`);
      // IPv6 routes have no scope: the kernel reports universe for all of them.
      if (scope !== 'global' && !v6) route.scope = scope;
    }
    if (entry.metric !== undefined) {
      const metric = requireInteger(entry.metric, `${where}: metric`);
      if (metric !== 0 || v6) route.metric = metric;
    }
    if (entry.nexthops !== undefined) {
      if (!Array.isArray(entry.nexthops)) throw new IpJsonError(`${where}: nexthops is not an array`);
      route.nexthops = entry.nexthops.map((hop: unknown, i: number) =>
        parseNexthop(hop, `${where}: nexthops[${i}]`, v6),
      );
    }
    const parsed = kernelRoute.safeParse(route);
    if (!parsed.success)
      return skip(`route does not fit the model: ${parsed.error.issues[0]?.message ?? 'invalid'}`);
    routes.push(parsed.data);
  });
  return routes;
}

function parseNexthop(hop: unknown, where: string, v6 = false): KernelNexthop {
  if (!isObject(hop)) throw new IpJsonError(`${where}: not an object`);
  const out: { dev: string; gateway?: string; weight: number } = {
    dev: requireString(hop.dev, `${where}: dev`),
    weight: hop.weight === undefined ? 1 : requireInteger(hop.weight, `${where}: weight`),
  };
  if (hop.gateway !== undefined)
    out.gateway = (v6 ? parseAddress6 : parseAddress)(hop.gateway, `${where}: gateway`);
  return out;
}

/**
 * `ip -j addr show` (every family; only IPv4 addresses are kept) plus the IPv4 routes of
 * table main (`ip -4 -j route show table main`, for detected gateways) → facts.
 *
 * `up`: administratively UP, carrier present and operstate UP or UNKNOWN (PPP and some
 * tunnels never report UP). Addresses: primary first, in kernel order; `peer` from the
 * `address` field of point-to-point addresses. `detectedGateway`: the gateway of the
 * lowest-metric default route in main that leaves by this interface (any protocol).
 */
export function parseIpFacts(
  addrInput: string | unknown,
  mainRoutesInput: string | unknown,
  /** `ip -6 -j route show table main` (or the `table all root ::/0` listing): IPv6 detected gateways. */
  mainRoutes6Input?: string | unknown,
): Facts {
  const interfaces: Record<string, InterfaceFacts> = {};
  forEachEntry(addrInput, 'ip addr', (link, where) => {
    const name = requireString(link.ifname, `${where}: ifname`);
    const flags = link.flags === undefined ? [] : requireStringArray(link.flags, `${where}: flags`);
    const operstate =
      link.operstate === undefined ? 'UNKNOWN' : requireString(link.operstate, `${where}: operstate`);
    const up =
      flags.includes('UP') &&
      !flags.includes('NO-CARRIER') &&
      (operstate === 'UP' || operstate === 'UNKNOWN');
    const infos = link.addr_info === undefined ? [] : link.addr_info;
    if (!Array.isArray(infos)) throw new IpJsonError(`${where}: addr_info is not an array`);
    const primary: InterfaceFacts['addresses'] = [];
    const secondary: InterfaceFacts['addresses'] = [];
    const addresses6: NonNullable<InterfaceFacts['addresses6']> = [];
    infos.forEach((info: unknown, i: number) => {
      const at = `${where}: addr_info[${i}]`;
      if (!isObject(info)) throw new IpJsonError(`${at}: not an object`);
      if (info.family === 'inet6') {
        // Global unicast only, and only once usable: a tentative (DAD) or failed address is not yet.
        const global = info.scope === 'global' || info.scope === 0 || info.scope === '0';
        if (global && info.tentative !== true && info.dadfailed !== true && typeof info.local === 'string') {
          addresses6.push({
            address: parseAddress6(info.local, `${at}: local`),
            prefixLength: requireInteger(info.prefixlen, `${at}: prefixlen`),
          });
        }
        return;
      }
      if (info.family !== 'inet') return;
      const address: InterfaceFacts['addresses'][number] = {
        address: parseAddress(info.local, `${at}: local`),
        prefixLength: requireInteger(info.prefixlen, `${at}: prefixlen`),
      };
      if (info.address !== undefined && info.address !== info.local) {
        address.peer = parseAddress(info.address, `${at}: address`);
      }
      (info.secondary === true ? secondary : primary).push(address);
    });
    interfaces[name] = {
      exists: true,
      up,
      addresses: [...primary, ...secondary],
      ...(addresses6.length > 0 ? { addresses6 } : {}),
    };
  });
  const best = new Map<string, { gateway: string; metric: number }>();
  forEachEntry(mainRoutesInput, 'ip route', (route, where) => {
    if (route.dst !== 'default' && route.dst !== '0.0.0.0/0') return;
    if (route.table !== undefined && parseTable(route.table, where) !== 254) return;
    const type = route.type === undefined ? 'unicast' : ROUTE_TYPES[String(route.type)];
    if (type !== 'unicast') return;
    const metric = route.metric === undefined ? 0 : requireInteger(route.metric, `${where}: metric`);
    const hops = Array.isArray(route.nexthops) ? route.nexthops : [route];
    hops.forEach((hop: unknown) => {
      if (!isObject(hop) || typeof hop.dev !== 'string' || typeof hop.gateway !== 'string') return;
      if (hop.gateway.includes(':')) return;
      const gateway = parseAddress(hop.gateway, `${where}: gateway`);
      const current = best.get(hop.dev);
      if (current === undefined || metric < current.metric) best.set(hop.dev, { gateway, metric });
    });
  });
  for (const [dev, { gateway }] of best) {
    const facts = interfaces[dev];
    if (facts !== undefined) facts.detectedGateway = gateway;
  }
  const best6 = new Map<string, { gateway: string; metric: number }>();
  forEachEntry(mainRoutes6Input ?? [], 'ip -6 route', (route, where) => {
    if (route.dst !== 'default' && route.dst !== '::/0') return;
    if (route.table !== undefined && parseTable(route.table, where) !== 254) return;
    const type = route.type === undefined ? 'unicast' : ROUTE_TYPES[String(route.type)];
    if (type !== 'unicast') return;
    const metric = route.metric === undefined ? 1024 : requireInteger(route.metric, `${where}: metric`);
    const hops = Array.isArray(route.nexthops) ? route.nexthops : [route];
    hops.forEach((hop: unknown) => {
      if (!isObject(hop) || typeof hop.dev !== 'string' || typeof hop.gateway !== 'string') return;
      if (!hop.gateway.includes(':')) return;
      const gateway = parseAddress6(hop.gateway, `${where}: gateway`);
      const current = best6.get(hop.dev);
      if (current === undefined || metric < current.metric) best6.set(hop.dev, { gateway, metric });
    });
  });
  for (const [dev, { gateway }] of best6) {
    const facts = interfaces[dev];
    if (facts !== undefined) facts.detectedGateway6 = gateway;
  }
  return { interfaces };
}

function forEachEntry(
  input: string | unknown,
  what: string,
  visit: (entry: Record<string, unknown>, where: string) => void,
): void {
  let value: unknown = input;
  if (typeof input === 'string') {
    // `ip -j` prints nothing at all (not `[]`) for some empty listings.
    if (input.trim() === '') return;
    try {
      value = JSON.parse(input);
    } catch (error) {
      throw new IpJsonError(`${what} -j output is not JSON: ${(error as Error).message}`);
    }
  }
  if (!Array.isArray(value)) throw new IpJsonError(`${what} -j output: expected a JSON array`);
  value.forEach((entry: unknown, index: number) => {
    const where = `${what} entry ${index}`;
    if (!isObject(entry)) throw new IpJsonError(`${where}: not an object`);
    visit(entry, where);
  });
}

function parseTable(value: unknown, where: string): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value === 'number' && Number.isInteger(value)) return value;
  if (typeof value !== 'string')
    throw new IpJsonError(`${where}: table ${JSON.stringify(value)} is not a table`);
  const named = TABLE_NAMES[value];
  if (named !== undefined) return named;
  if (/^\d+$/.test(value)) return Number(value);
  throw new IpJsonError(`${where}: table ${JSON.stringify(value)} is a name from rt_tables; run ip with -N`);
}

function parseProtocol(value: unknown, where: string): number {
  if (value === undefined) return 0;
  if (typeof value === 'number' && Number.isInteger(value)) return value;
  if (typeof value === 'string') {
    const named = PROTOCOL_NAMES[value];
    if (named !== undefined) return named;
    if (/^\d+$/.test(value)) return Number(value);
  }
  throw new IpJsonError(`${where}: protocol ${JSON.stringify(value)} is not a known name; run ip with -N`);
}

/** `src`/`dst` + `srclen`/`dstlen`; undefined for "all" or 0.0.0.0/0. */
function parsePrefix(value: unknown, length: unknown, where: string, v6 = false): string | undefined {
  if (value === undefined || value === 'all' || value === 'default') return undefined;
  if (v6) {
    const address = parseAddress6(value, where);
    const bits = length === undefined ? 128 : requireInteger(length, `${where}len`);
    if (bits < 0 || bits > 128) throw new IpJsonError(`${where}: prefix length ${bits} out of range`);
    return bits === 0 ? undefined : parseCidr6(`${address}/${bits}`, where);
  }
  const address = parseAddress(value, where);
  const bits = length === undefined ? 32 : requireInteger(length, `${where}len`);
  if (bits < 0 || bits > 32) throw new IpJsonError(`${where}: prefix length ${bits} out of range`);
  if (bits === 0) return undefined;
  return parseCidr(`${address}/${bits}`, where);
}

/** Canonical CIDR; a bare address is a /32. */
function parseCidr(value: string, where: string): string {
  const text = value.includes('/') ? value : `${value}/32`;
  if (!ipaddr.IPv4.isValidCIDRFourPartDecimal(text))
    throw new IpJsonError(`${where}: ${JSON.stringify(value)} is not an IPv4 prefix`);
  const [, bits] = ipaddr.IPv4.parseCIDR(text);
  return `${ipaddr.IPv4.networkAddressFromCIDR(text).toString()}/${bits}`;
}

/** Canonical IPv6 CIDR; a bare address is a /128. */
function parseCidr6(value: string, where: string): string {
  const text = value.includes('/') ? value : `${value}/128`;
  if (!ipaddr.IPv6.isValidCIDR(text))
    throw new IpJsonError(`${where}: ${JSON.stringify(value)} is not an IPv6 prefix`);
  const [address, bits] = ipaddr.IPv6.parseCIDR(text);
  return canonicalIpv6Cidr(address.toString(), bits);
}

function parseAddress6(value: unknown, where: string): string {
  if (typeof value !== 'string' || !ipaddr.IPv6.isValid(value) || value.includes('%')) {
    throw new IpJsonError(`${where}: ${JSON.stringify(value)} is not an IPv6 address`);
  }
  return ipaddr.IPv6.parse(value).toString();
}

function parseAddress(value: unknown, where: string): string {
  if (typeof value !== 'string' || !ipaddr.IPv4.isValidFourPartDecimal(value)) {
    throw new IpJsonError(`${where}: ${JSON.stringify(value)} is not an IPv4 address`);
  }
  return ipaddr.IPv4.parse(value).toString();
}

function parsePortRange(
  entry: Record<string, unknown>,
  key: 'sport' | 'dport',
  where: string,
): { start: number; end: number } | undefined {
  if (entry[key] !== undefined) {
    const port = requireInteger(entry[key], `${where}: ${key}`);
    return { start: port, end: port };
  }
  if (entry[`${key}_start`] === undefined && entry[`${key}_end`] === undefined) return undefined;
  return {
    start: requireInteger(entry[`${key}_start`], `${where}: ${key}_start`),
    end: requireInteger(entry[`${key}_end`], `${where}: ${key}_end`),
  };
}

/** A number, or a string in `radix` (hex strings may carry `0x`). */
function parseNumber(value: unknown, where: string, radix = 10): number {
  if (typeof value === 'number' && Number.isInteger(value) && value >= 0) return value;
  if (typeof value === 'string') {
    const hexadecimal = /^0x[0-9a-f]+$/i.test(value) || radix === 16;
    const digits = value.replace(/^0x/i, '');
    if (hexadecimal ? /^[0-9a-f]+$/i.test(digits) : /^\d+$/.test(digits)) {
      const parsed = Number.parseInt(digits, hexadecimal ? 16 : 10);
      if (parsed <= 0xffffffff) return parsed;
    }
  }
  throw new IpJsonError(`${where}: ${JSON.stringify(value)} is not a number`);
}

function requireInteger(value: unknown, where: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value)) {
    throw new IpJsonError(`${where}: ${JSON.stringify(value)} is not an integer`);
  }
  return value;
}

function requireString(value: unknown, where: string): string {
  if (typeof value !== 'string') throw new IpJsonError(`${where}: ${JSON.stringify(value)} is not a string`);
  return value;
}

function requireStringArray(value: unknown, where: string): string[] {
  if (!Array.isArray(value) || !value.every((item) => typeof item === 'string')) {
    throw new IpJsonError(`${where}: ${JSON.stringify(value)} is not a list of strings`);
  }
  return value;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
