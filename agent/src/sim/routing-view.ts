/**
 * The input of the simulator: everything the kernel consults when it routes an IPv4
 * packet on one router. Build it with `buildView` (from parts) or `buildViewFromState`
 * (from a KernelState — current or effective — plus Facts and the parts Uplink does not
 * own).
 */
import type { Facts, KernelNftRule, KernelRoute, KernelRule, KernelState } from '../model/kernel-state.js';
import { interfaceSysctlKey } from '../model/sysctl-key.js';

export const TABLE_LOCAL = 255;
export const TABLE_MAIN = 254;
export const TABLE_DEFAULT = 253;
/** Route protocol of objects the kernel creates itself (`proto kernel`). */
export const PROTOCOL_KERNEL = 2;
/** Default Uplink mark mask (settings.markMask). */
export const DEFAULT_MARK_MASK = 0xff00;

export interface ViewAddress {
  readonly address: string;
  readonly prefixLength: number;
  /** Point-to-point peer (PPP): the connected route and gateway matching use the peer. */
  readonly peer?: string;
}

export interface ViewInterface {
  readonly name: string;
  /** Administratively up. Routes via a down interface do not exist (the kernel flushes them). */
  readonly up: boolean;
  /** In kernel order: the first address of a subnet is primary, later ones in it secondary. */
  readonly addresses: readonly ViewAddress[];
  /** Effective rp_filter (max of conf.all and conf.<if>); absent = 0. */
  readonly rpFilter?: 0 | 1 | 2;
  /** net.ipv4.conf.<if>.src_valid_mark: the reverse-path lookup uses the packet mark. */
  readonly srcValidMark?: boolean;
  /** Global IPv6 addresses in kernel order (facts' `addresses6`); link-local ones are not known. */
  readonly addresses6?: readonly ViewAddress6[];
}

export interface ViewAddress6 {
  readonly address: string;
  readonly prefixLength: number;
}

export interface LocalAddress {
  readonly address: string;
  readonly dev: string;
}

export interface RoutingView {
  /** All rules, including the kernel defaults (see `withDefaultRules`), in kernel list order. */
  readonly rules: readonly KernelRule[];
  /** Routes of every table except `local` (255), which is derived from `localAddresses`. */
  readonly routes: readonly KernelRoute[];
  readonly localAddresses: readonly LocalAddress[];
  /** In ifindex order (source selection falls back to the first suitable address in this order). */
  readonly interfaces: readonly ViewInterface[];
  /** Table inet uplink, in chain order. */
  readonly nft: readonly KernelNftRule[];
  /** The mark bits Uplink owns (track-save/restore change only these). */
  readonly markMask: number;
  /** net.ipv4.ip_forward. */
  readonly forwarding: boolean;
  /** net.ipv6.conf.all.forwarding (absent: unknown, taken as on). */
  readonly forwarding6?: boolean;
}

/** The three rules every IPv4 namespace starts with. */
export const DEFAULT_RULES: readonly KernelRule[] = [
  { priority: 0, action: 'lookup', table: TABLE_LOCAL, protocol: PROTOCOL_KERNEL },
  { priority: 32766, action: 'lookup', table: TABLE_MAIN, protocol: PROTOCOL_KERNEL },
  { priority: 32767, action: 'lookup', table: TABLE_DEFAULT, protocol: PROTOCOL_KERNEL },
];

function isBareLookup(rule: KernelRule, priority: number, table: number): boolean {
  return (
    rule.priority === priority &&
    rule.action === 'lookup' &&
    rule.table === table &&
    Object.keys(rule).every((k) => k === 'priority' || k === 'action' || k === 'table' || k === 'protocol')
  );
}

/**
 * Add the kernel's default rules (0 local, 32766 main, 32767 default) where absent, and
 * return the rules in kernel order: by priority, ties in insertion (input) order.
 */
export function withDefaultRules(rules: readonly KernelRule[]): KernelRule[] {
  const out = [...rules];
  for (const def of DEFAULT_RULES) {
    if (!rules.some((r) => isBareLookup(r, def.priority, def.table!))) out.push(def);
  }
  // Array.prototype.sort is stable: equal priorities keep insertion order, as the kernel does.
  return out.sort((a, b) => a.priority - b.priority);
}

export interface ViewParts {
  readonly rules?: readonly KernelRule[];
  readonly routes?: readonly KernelRoute[];
  readonly localAddresses?: readonly LocalAddress[];
  readonly interfaces?: readonly ViewInterface[];
  readonly nft?: readonly KernelNftRule[] | null;
  readonly markMask?: number;
  readonly forwarding?: boolean;
  readonly forwarding6?: boolean;
  /** Add default rules where absent (default true). */
  readonly defaultRules?: boolean;
  /** Add the main-table prefix routes the kernel creates for each address (default false here). */
  readonly connectedRoutes?: boolean;
}

/**
 * A view from parts. Local addresses default to every interface address; the loopback
 * interface (127.0.0.1/8) is added when absent.
 */
export function buildView(parts: ViewParts): RoutingView {
  const interfaces = [...(parts.interfaces ?? [])];
  if (!interfaces.some((i) => i.name === 'lo')) {
    interfaces.unshift({ name: 'lo', up: true, addresses: [{ address: '127.0.0.1', prefixLength: 8 }] });
  }
  const localAddresses =
    parts.localAddresses ??
    interfaces.flatMap((i) => i.addresses.map((a) => ({ address: a.address, dev: i.name })));
  let routes = [...(parts.routes ?? [])];
  if (parts.connectedRoutes) routes = mergeRoutes(routes, connectedRoutesOf(interfaces));
  return {
    rules: parts.defaultRules === false ? [...(parts.rules ?? [])] : withDefaultRules(parts.rules ?? []),
    routes,
    localAddresses,
    interfaces,
    nft: parts.nft ?? [],
    markMask: parts.markMask ?? DEFAULT_MARK_MASK,
    forwarding: parts.forwarding ?? true,
    ...(parts.forwarding6 !== undefined ? { forwarding6: parts.forwarding6 } : {}),
  };
}

/**
 * The main-table routes the kernel adds for each address of an up interface
 * (`proto kernel scope link src <address>`): the subnet, or the peer for a
 * point-to-point address.
 */
export function connectedRoutesOf(interfaces: readonly ViewInterface[]): KernelRoute[] {
  const out: KernelRoute[] = [];
  for (const itf of interfaces) {
    if (!itf.up || itf.name === 'lo') continue;
    for (const a of itf.addresses) {
      const base = a.peer ?? a.address;
      const dst = `${networkOf(base, a.prefixLength)}/${a.prefixLength}`;
      if (a.prefixLength === 32 && !a.peer) continue;
      out.push({
        table: TABLE_MAIN,
        dst,
        type: 'unicast',
        dev: itf.name,
        src: a.address,
        scope: 'link',
        protocol: PROTOCOL_KERNEL,
      });
    }
  }
  return out;
}

function networkOf(address: string, prefixLength: number): string {
  const octets = address.split('.').map(Number);
  const value = ((octets[0]! << 24) | (octets[1]! << 16) | (octets[2]! << 8) | octets[3]!) >>> 0;
  const mask = prefixLength === 0 ? 0 : (0xffffffff << (32 - prefixLength)) >>> 0;
  const n = (value & mask) >>> 0;
  return `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
}

function routeKey(r: KernelRoute): string {
  return `${r.table} ${r.dst} ${r.metric ?? 0} ${r.dev ?? ''} ${r.gateway ?? ''}`;
}

function mergeRoutes(a: readonly KernelRoute[], b: readonly KernelRoute[]): KernelRoute[] {
  const seen = new Set(a.map(routeKey));
  return [...a, ...b.filter((r) => !seen.has(routeKey(r)))];
}

/** What the router has that Uplink does not own, for `buildViewFromState`. */
export interface ViewEnvironment {
  /** Rules Uplink does not own (the site's own, other daemons'); defaults are added anyway. */
  readonly rules?: readonly KernelRule[];
  /** Main-table and other foreign routes (LAN, VPN, main's default). Connected routes are derived. */
  readonly routes?: readonly KernelRoute[];
  /** Defaults to every address in Facts. */
  readonly localAddresses?: readonly LocalAddress[];
  /** Sysctls not in the state (e.g. net.ipv4.conf.all.rp_filter, net.ipv4.ip_forward). */
  readonly sysctls?: Readonly<Record<string, string>>;
  readonly markMask?: number;
  /** Derive connected routes from interface addresses (default true). */
  readonly connectedRoutes?: boolean;
}

/**
 * A view of a router under `state` (current, or effective to simulate a planned change):
 * the state's rules, routes and nft; interfaces and addresses from Facts; the rest from
 * the environment. Interfaces are taken in Facts' key order (treated as ifindex order).
 */
export function buildViewFromState(state: KernelState, facts: Facts, env: ViewEnvironment = {}): RoutingView {
  const sysctls: Record<string, string> = { ...(env.sysctls ?? {}), ...state.sysctls };
  const rpAll = sysctlNumber(sysctls['net.ipv4.conf.all.rp_filter']);
  const interfaces: ViewInterface[] = Object.entries(facts.interfaces)
    .filter(([, f]) => f.exists)
    .map(([name, f]) => {
      const rp = Math.max(rpAll, sysctlNumber(sysctls[interfaceSysctlKey(name, 'rp_filter')]));
      const svm =
        sysctls[interfaceSysctlKey(name, 'src_valid_mark')] ?? sysctls['net.ipv4.conf.all.src_valid_mark'];
      return {
        name,
        up: f.up,
        addresses: f.addresses.map((a) =>
          a.peer ? { ...a } : { address: a.address, prefixLength: a.prefixLength },
        ),
        rpFilter: Math.min(rp, 2) as 0 | 1 | 2,
        srcValidMark: svm === '1',
        ...(f.addresses6?.length ? { addresses6: f.addresses6.map((a) => ({ ...a })) } : {}),
      };
    });
  const forward = sysctls['net.ipv4.ip_forward'];
  const forward6 = sysctls['net.ipv6.conf.all.forwarding'];
  return buildView({
    rules: [...(env.rules ?? []), ...state.rules],
    routes: mergeRoutes(state.routes, env.routes ?? []),
    localAddresses: env.localAddresses,
    interfaces,
    nft: state.nft,
    markMask: env.markMask,
    forwarding: forward === undefined ? true : forward !== '0',
    ...(forward6 !== undefined ? { forwarding6: forward6 !== '0' } : {}),
    connectedRoutes: env.connectedRoutes ?? true,
  });
}

function sysctlNumber(value: string | undefined): number {
  const n = value === undefined ? 0 : Number(value);
  return Number.isInteger(n) && n >= 0 ? n : 0;
}
