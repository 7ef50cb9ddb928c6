/** The fully-defaulted, checked form of a site that the compiler consumes. */
import type { HealthSettings, SnatMode } from '#agent/model';

export type Band = readonly [number, number];

export interface FleetDefaults {
  readonly protocol: number;
  readonly markMask: number;
  readonly tables: Band;
  readonly balanceTable: number;
  readonly drift: 'report' | 'heal';
  readonly priorities: {
    readonly suppressMain: number;
    readonly track: Band;
    readonly source: Band;
    readonly policy: Band;
    readonly balance: number;
    readonly fallback: Band;
  };
  readonly health: HealthSettings;
}

export const BUILTIN_DEFAULTS: FleetDefaults = {
  protocol: 252,
  markMask: 0xff00,
  tables: [100, 199],
  balanceTable: 200,
  drift: 'report',
  priorities: {
    suppressMain: 900,
    track: [1000, 1999],
    source: [2000, 2999],
    policy: [10000, 19999],
    balance: 30000,
    fallback: [30001, 30099],
  },
  // Declares a dead uplink down in about 1.5–2 s: three lost rounds at 500 ms.
  health: {
    enabled: true,
    method: 'icmp',
    targets: [],
    intervalMs: 500,
    timeoutMs: 400,
    failAfter: 3,
    recoverAfter: 5,
    minTargetsUp: 1,
  },
};

export interface ValidProvider {
  readonly name: string;
  readonly interface: string;
  /** Static address with prefix length, when declared (e.g. 198.51.100.2/30). */
  readonly address: { readonly address: string; readonly prefixLength: number } | null;
  /** `none`: an IPv6-only uplink (`ipv4: false`, D165) — it has an `ipv6` half and nothing IPv4. */
  readonly gateway:
    | { kind: 'static'; address: string }
    | { kind: 'detect' }
    | { kind: 'point-to-point' }
    | { kind: 'none' };
  /** Prefixes routed to the router by this ISP (not on the interface): replies from them leave by it. */
  readonly routed: readonly string[];
  readonly table: number;
  readonly mark: number;
  readonly balance: number | null;
  readonly fallback: number | null;
  readonly track: boolean;
  readonly snat: SnatMode;
  readonly rpFilter: 'off' | 'strict' | 'loose';
  readonly health: HealthSettings;
  /** Absent: the uplink carries IPv4 only. */
  readonly ipv6?: ValidProviderIpv6;
}

/** A provider's IPv6 half, checked (D180). */
export interface ValidProviderIpv6 {
  /** Static address with prefix length; null: learned (SLAAC/DHCPv6), read by the agent. */
  readonly address: { readonly address: string; readonly prefixLength: number } | null;
  readonly gateway: { kind: 'static'; address: string } | { kind: 'detect' };
  /** Prefixes the ISP routes to the site (the static ones). */
  readonly prefixes: readonly string[];
  /** `delegated` in `prefixes` (DHCPv6-PD, D155): the router's client learns them; null: none. */
  readonly delegated: { readonly length: number | null } | null;
  /** NPTv6 onto this uplink for other providers' prefixes (D181). */
  readonly npt: boolean;
  readonly healthTargets: readonly string[];
}

export interface ValidPolicy {
  readonly name: string;
  readonly from: readonly string[];
  readonly to: readonly string[];
  readonly iif: readonly string[];
  readonly uid: { readonly start: number; readonly end: number } | null;
  readonly proto: 'tcp' | 'udp' | 'icmp' | 'icmpv6' | null;
  readonly dport: readonly { readonly start: number; readonly end: number }[];
  readonly sport: readonly { readonly start: number; readonly end: number }[];
  readonly tos: number | null;
  readonly mark: { readonly value: number; readonly mask: number } | null;
  readonly via: readonly string[];
  readonly action: 'route' | 'main' | 'balance' | 'blackhole' | 'unreachable' | 'prohibit';
  /** First rule priority; the policy's rules are consecutive from here. */
  readonly priority: number;
  /**
   * Number of `ip rule` priorities the policy takes: the larger of its IPv4 and IPv6 rule
   * counts (the two families are separate rule lists, laid out in the same band).
   */
  readonly ruleCount: number;
  /** Which families the policy has rules in; absent means IPv4 only. */
  readonly families?: readonly ('inet' | 'inet6')[];
}

export interface ValidSite {
  readonly name: string;
  readonly file: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly management: {
    readonly address: string;
    readonly port: number;
    readonly user: string;
    /** The pinned host key; without one the controller needs a known_hosts entry for the site. */
    readonly hostKey?: string;
  };
  readonly lan: readonly { readonly interface: string; readonly subnets: readonly string[] }[];
  readonly providers: readonly ValidProvider[];
  readonly policies: readonly ValidPolicy[];
  readonly sysctls: Readonly<Record<string, string>>;
  readonly settings: {
    readonly protocol: number;
    readonly markMask: number;
    readonly balanceTable: number;
    readonly adoptTables: readonly number[];
    readonly drift: 'report' | 'heal';
    readonly priorities: FleetDefaults['priorities'];
  };
}

export interface ValidWave {
  readonly name: string;
  readonly select: {
    readonly labels: Readonly<Record<string, string>>;
    readonly sites: readonly string[];
  } | null;
  readonly percent: number | null;
  readonly count: number | null;
  readonly concurrency: number;
  readonly maxFailures: number;
  readonly bakeMs: number;
}

export interface ValidRollout {
  readonly confirmWithinMs: number;
  readonly siteTimeoutMs: number;
  readonly rollbackOnFailure: boolean;
  /** Sites whose applied state is not the commit in force: brought back (`auto`) or only shown (`report`). */
  readonly reconcile: 'auto' | 'report';
  readonly waves: readonly ValidWave[];
}

export interface ValidFleet {
  readonly defaults: FleetDefaults;
  readonly rollout: ValidRollout;
  readonly sites: readonly ValidSite[];
}
