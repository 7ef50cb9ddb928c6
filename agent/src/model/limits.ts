/**
 * Every limit the agent enforces on what it is sent, defined once (D89). The desired-state
 * and protocol schemas are built from these, and the controller's validation checks the
 * same numbers with a located message, so whatever validates also applies.
 */

export interface Range {
  readonly min: number;
  readonly max: number;
}

export const LIMITS = {
  /** Commit-confirmed deadline of one apply. */
  confirmWithinMs: { min: 1_000, max: 3_600_000 },
  health: {
    intervalMs: { min: 100, max: 3_600_000 },
    timeoutMs: { min: 50, max: 60_000 },
    failAfter: { min: 1, max: 100 },
    recoverAfter: { min: 1, max: 100 },
    minTargetsUp: { min: 1, max: 16 },
    targets: { min: 0, max: 16 },
  },
  /** Counts per desired state. */
  providers: { min: 0, max: 64 },
  rules: { min: 0, max: 20_000 },
  routes: { min: 0, max: 20_000 },
  nftRules: { min: 0, max: 1_000 },
  sysctls: { min: 0, max: 1_000 },
  adoptTables: { min: 0, max: 64 },
  /** Routed IPv6 prefixes (and their NPTv6 mappings) per provider. */
  ipv6Prefixes: { min: 0, max: 16 },
  /** Weight in the balanced multipath route (the kernel's nexthop weight is 1–256). */
  balanceWeight: { min: 1, max: 256 },
  fallbackOrder: { min: 1, max: 99 },
  /** 0, 32766 and 32767 are the kernel's local, main and default rules. */
  rulePriority: { min: 1, max: 32_765 },
  /** Table ids (0 is "unspecified"; 253–255 are reserved, see RESERVED_TABLES). */
  table: { min: 1, max: 0xfffffffe },
  routeProtocol: { min: 0, max: 255 },
  tos: { min: 0, max: 255 },
  /** Ids of rules and routes, shown in diffs and drift reports. */
  objectIdLength: { min: 1, max: 120 },
  generationLength: { min: 1, max: 100 },
} as const satisfies Record<string, Range | Record<string, Range>>;

/** The kernel's own tables: a provider may never be one, the agent never writes into one. */
export const RESERVED_TABLES: ReadonlyMap<number, string> = new Map([
  [253, 'default'],
  [254, 'main'],
  [255, 'local'],
]);

/** Table 253 may hold the balanced route (`balanceTable: default`, Shorewall's "use the default table"). */
export const DEFAULT_TABLE = 253;
export const MAIN_TABLE = 254;
export const LOCAL_TABLE = 255;

/**
 * Route-protocol numbers Uplink must never take as its tag: it treats every rule and route
 * carrying its tag as its own, and deletes those it does not want. 0–4 are the kernel's
 * (unspec, redirect, kernel, boot, static — `ip rule`'s own 0/32766/32767 rules are
 * `proto kernel`), the rest are routing daemons' (include/uapi/linux/rtnetlink.h).
 */
export const RESERVED_PROTOCOLS: ReadonlyMap<number, string> = new Map([
  [0, 'unspec'],
  [1, 'redirect'],
  [2, 'kernel'],
  [3, 'boot'],
  [4, 'static'],
  [8, 'gated'],
  [9, 'ra'],
  [10, 'mrt'],
  [11, 'zebra'],
  [12, 'bird'],
  [13, 'dnrouted'],
  [14, 'xorp'],
  [15, 'ntk'],
  [16, 'dhcp'],
  [17, 'mrouted'],
  [18, 'keepalived'],
  [42, 'babel'],
  [99, 'openr'],
  [186, 'bgp'],
  [187, 'isis'],
  [188, 'ospf'],
  [189, 'rip'],
  [192, 'eigrp'],
]);

/** `1–256`, `1s–1h`: a range as people write it. */
export function describeRange(range: Range, unit: 'ms' | 'count' = 'count'): string {
  return unit === 'ms' ? `${formatMs(range.min)}–${formatMs(range.max)}` : `${range.min}–${range.max}`;
}

export function inRange(value: number, range: Range): boolean {
  return Number.isInteger(value) && value >= range.min && value <= range.max;
}

/** Why a route-protocol tag cannot be Uplink's, or undefined when it can. */
export function protocolProblem(protocol: number): string | undefined {
  if (!Number.isInteger(protocol) || protocol < 1 || protocol > 255) return 'out of range 1–255';
  const owner = RESERVED_PROTOCOLS.get(protocol);
  return owner === undefined ? undefined : `reserved for ${owner} (proto ${owner})`;
}

/** A duration in the spec's own notation: 1000 → `1s`, 3600000 → `1h`, 250 → `250ms`. */
export function formatMs(ms: number): string {
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0) return `${ms / 60_000}m`;
  if (ms % 1_000 === 0) return `${ms / 1_000}s`;
  return `${ms}ms`;
}
