/**
 * The desired state of one site: what the controller compiles and the agent accepts.
 *
 * It may hold symbolic references (the current address of ppp1, a DHCP gateway) that
 * only the router can resolve; `resolve` in agent/src/core turns it into a concrete
 * `KernelState` using live facts and provider health. The agent defines this schema and
 * the controller imports it, so the agent never accepts what it cannot apply.
 *
 * IPv4 only (see docs/decisions.md).
 */
import { z } from 'zod';

export const DESIRED_STATE_VERSION = 1;

/** Linux interface names: ≤15 bytes, no '/', whitespace, ':' or shell metacharacters. */
export const interfaceName = z
  .string()
  .regex(/^[A-Za-z0-9_][A-Za-z0-9_.@-]{0,14}$/, 'interface name: 1–15 of A–Z a–z 0–9 _ . @ -');

export const ipv4Address = z
  .string()
  .regex(/^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/, 'IPv4 address');

/** A CIDR in canonical form (host bits zero), e.g. 192.0.2.0/24. `0.0.0.0/0` is the default route. */
export const ipv4Cidr = z
  .string()
  .regex(
    /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}\/(3[0-2]|[12]?\d)$/,
    'IPv4 CIDR',
  );

export const u32 = z.number().int().min(0).max(0xffffffff);
export const tableId = z.number().int().min(1).max(0xfffffffe);
export const priority = z.number().int().min(1).max(32765);
export const port = z.number().int().min(1).max(65535);
export const portRange = z.object({ start: port, end: port }).strict();
export const uidRange = z.object({ start: u32, end: u32 }).strict();
export const ipProto = z.enum(['tcp', 'udp', 'icmp']);

/**
 * An address the agent resolves on the router.
 * - `literal`: a fixed address
 * - `provider-address`: the uplink interface's current primary IPv4 address
 * - `provider-gateway`: the uplink's gateway (static, detected, or the PPP peer)
 */
export const addressRef = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('literal'), address: ipv4Address }).strict(),
  z.object({ kind: z.literal('provider-address'), provider: z.string() }).strict(),
  z.object({ kind: z.literal('provider-gateway'), provider: z.string() }).strict(),
]);
export type AddressRef = z.infer<typeof addressRef>;

/** A destination/source network the agent resolves: a literal CIDR or an uplink's connected subnet. */
export const networkRef = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('literal'), cidr: ipv4Cidr }).strict(),
  z.object({ kind: z.literal('provider-network'), provider: z.string() }).strict(),
  z.object({ kind: z.literal('provider-host'), provider: z.string() }).strict(),
]);
export type NetworkRef = z.infer<typeof networkRef>;

export const gatewayMode = z.discriminatedUnion('kind', [
  /** A fixed next hop inside the uplink's subnet. */
  z.object({ kind: z.literal('static'), address: ipv4Address }).strict(),
  /** Learn the next hop from the kernel (a DHCP client's default route on that interface). */
  z.object({ kind: z.literal('detect') }).strict(),
  /** Point-to-point link (PPP, tunnels): routes go `dev IF` with no next hop. */
  z.object({ kind: z.literal('point-to-point') }).strict(),
]);
export type GatewayMode = z.infer<typeof gatewayMode>;

export const snatMode = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('masquerade') }).strict(),
  z.object({ kind: z.literal('none') }).strict(),
  z.object({ kind: z.literal('address'), address: ipv4Address }).strict(),
]);
export type SnatMode = z.infer<typeof snatMode>;

export const healthSettings = z
  .object({
    /** Probe targets; empty means "the gateway" (resolved by the agent). */
    targets: z.array(ipv4Address),
    method: z.enum(['icmp', 'tcp']),
    tcpPort: port.optional(),
    intervalMs: z.number().int().min(100).max(3_600_000),
    timeoutMs: z.number().int().min(50).max(60_000),
    /** Declare down after this many failed rounds (within `window` rounds). */
    failAfter: z.number().int().min(1).max(100),
    /** Declare up again after this many successful rounds. */
    recoverAfter: z.number().int().min(1).max(100),
    /** A round succeeds when at least this many targets answer. */
    minTargetsUp: z.number().int().min(1).max(16),
    enabled: z.boolean(),
  })
  .strict();
export type HealthSettings = z.infer<typeof healthSettings>;

export const provider = z
  .object({
    name: z.string().regex(/^[a-z][a-z0-9_-]{0,30}$/),
    interface: interfaceName,
    gateway: gatewayMode,
    table: tableId,
    /** The provider's mark, already shifted into the mark mask. */
    mark: u32,
    /** Weight in the balanced multipath default route; null when not balanced. */
    balance: z.number().int().min(1).max(256).nullable(),
    /** Fallback order (lower first) when no balanced provider is up; null when not a fallback. */
    fallback: z.number().int().min(1).max(99).nullable(),
    track: z.boolean(),
    snat: snatMode,
    health: healthSettings,
  })
  .strict();
export type Provider = z.infer<typeof provider>;

/**
 * A routing-policy rule. `requires` names a provider whose availability the rule depends
 * on: it is dropped from the effective state while that provider is unavailable (no
 * interface or no address). Health does not remove rules: a down provider's table loses
 * its default route and rules fall through instead.
 */
export const desiredRule = z
  .object({
    priority,
    /** Stable identity used in diffs and drift reports, e.g. `policy:mail/isp1`. */
    id: z.string().min(1).max(120),
    action: z.enum(['lookup', 'blackhole', 'unreachable', 'prohibit']),
    table: tableId.optional(),
    from: networkRef.optional(),
    to: networkRef.optional(),
    iif: interfaceName.optional(),
    oif: interfaceName.optional(),
    fwmark: u32.optional(),
    fwmask: u32.optional(),
    uidrange: uidRange.optional(),
    ipproto: ipProto.optional(),
    sport: portRange.optional(),
    dport: portRange.optional(),
    tos: z.number().int().min(0).max(255).optional(),
    suppressPrefixlength: z.number().int().min(0).max(32).optional(),
    requires: z.string().optional(),
  })
  .strict();
export type DesiredRule = z.infer<typeof desiredRule>;

export const desiredNexthop = z
  .object({
    provider: z.string(),
    dev: interfaceName,
    gateway: addressRef.optional(),
    weight: z.number().int().min(1).max(256),
  })
  .strict();
export type DesiredNexthop = z.infer<typeof desiredNexthop>;

/**
 * A route in a table Uplink owns. `requires`: dropped while that provider is unavailable;
 * `requiresUp`: also dropped while it is down (its default route). Multipath nexthops are
 * filtered individually by their provider's health.
 */
export const desiredRoute = z
  .object({
    id: z.string().min(1).max(120),
    table: tableId,
    dst: networkRef,
    type: z.enum(['unicast', 'blackhole', 'unreachable', 'prohibit', 'throw']),
    dev: interfaceName.optional(),
    gateway: addressRef.optional(),
    src: addressRef.optional(),
    scope: z.enum(['global', 'link']).optional(),
    metric: u32.optional(),
    nexthops: z.array(desiredNexthop).optional(),
    requires: z.string().optional(),
    requiresUp: z.boolean().optional(),
  })
  .strict();
export type DesiredRoute = z.infer<typeof desiredRoute>;

/** The netfilter objects Uplink emits, in semantic form; rendered to `nft -f` by the agent. */
export const nftRule = z.discriminatedUnion('kind', [
  /** prerouting: a new connection arriving on the uplink gets the uplink's mark in ct mark. */
  z.object({ kind: z.literal('track-save'), provider: z.string(), iif: interfaceName, mark: u32 }).strict(),
  /** prerouting/output: packets of a tracked connection get the ct mark copied into the packet mark. */
  z
    .object({
      kind: z.literal('track-restore'),
      chain: z.enum(['prerouting', 'output']),
      provider: z.string(),
      mark: u32,
    })
    .strict(),
  /** postrouting: source NAT to whatever address the uplink has. */
  z.object({ kind: z.literal('masquerade'), provider: z.string(), oif: interfaceName }).strict(),
  /** postrouting: source NAT to a fixed address. */
  z
    .object({ kind: z.literal('snat'), provider: z.string(), oif: interfaceName, address: ipv4Address })
    .strict(),
]);
export type NftRule = z.infer<typeof nftRule>;

export const settings = z
  .object({
    /** Route protocol tag marking rules and routes as Uplink's. */
    protocol: z.number().int().min(1).max(255),
    markMask: u32,
    /** Table holding the balanced multipath default route (253 = Linux "default" table). */
    balanceTable: tableId.nullable(),
    /** Provider tables the agent may take over even if they hold untagged routes. */
    adoptTables: z.array(tableId),
    /** `report` leaves drift alone; `heal` re-applies the confirmed state. */
    drift: z.enum(['report', 'heal']),
  })
  .strict();
export type Settings = z.infer<typeof settings>;

export const desiredState = z
  .object({
    version: z.literal(DESIRED_STATE_VERSION),
    site: z.string().regex(/^[a-z0-9][a-z0-9_.-]{0,62}$/),
    /** sha256 over the canonical JSON of every other field; identifies the content. */
    hash: z.string().regex(/^[0-9a-f]{64}$/),
    settings,
    providers: z.array(provider).max(64),
    rules: z.array(desiredRule).max(20_000),
    routes: z.array(desiredRoute).max(20_000),
    nft: z.array(nftRule).max(1_000),
    sysctls: z.record(z.string().regex(/^net\.ipv4\.[a-z0-9_.@-]+$/), z.string().regex(/^[0-9]{1,10}$/)),
  })
  .strict();
export type DesiredState = z.infer<typeof desiredState>;
