/**
 * The desired state of one site: what the controller compiles and the agent accepts.
 *
 * It may hold symbolic references (the current address of ppp1, a DHCP gateway) that
 * only the router can resolve; `resolve` in agent/src/core turns it into a concrete
 * `KernelState` using live facts and provider health. The agent defines this schema and
 * the controller imports it, so the agent never accepts what it cannot apply.
 *
 * Dual-stack (D180): IPv4 objects carry no `family`, IPv6 ones `family: 'inet6'`, so an
 * IPv4-only state is byte-identical to what it was before IPv6. Every limit and name rule comes from limits.ts,
 * names.ts and sysctl-key.ts, which the controller's validation uses too (D89); the rules
 * that relate fields (reserved tables and protocols, references between objects) are
 * `checkDesiredState` below, part of the schema.
 */
import ipaddr from 'ipaddr.js';
import { z } from 'zod';
import { desiredStateHash } from './content-hash.js';
import { LIMITS, MAIN_TABLE, protocolProblem, type Range, RESERVED_TABLES } from './limits.js';
import {
  INTERFACE_NAME_PATTERN,
  INTERFACE_NAME_RULE,
  OBJECT_NAME_PATTERN,
  SITE_NAME_PATTERN,
} from './names.js';
import { isSysctlKey, SYSCTL_KEY_FORMS } from './sysctl-key.js';

export const DESIRED_STATE_VERSION = 1;

const int = (range: Range) => z.number().int().min(range.min).max(range.max);

/** Linux interface names: ≤15 bytes, no '/', whitespace, ':' or shell metacharacters. */
export const interfaceName = z.string().regex(INTERFACE_NAME_PATTERN, INTERFACE_NAME_RULE);

export const ipv4Address = z
  .string()
  .regex(/^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/, 'IPv4 address');

/** A CIDR in canonical form (host bits zero), e.g. 192.0.2.0/24. `0.0.0.0/0` is the default route. */
export const ipv4Cidr = z
  .string()
  .regex(
    /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}\/(3[0-2]|[12]?\d)$/,
    'IPv4 CIDR',
  )
  .refine(isCanonicalCidr, {
    error: (issue) =>
      `${String(issue.input)} has host bits set; write its network address (${canonicalCidr(String(issue.input))})`,
  });

/** An IPv6 address in RFC 5952 form (lower case, `::` compression), as iproute2 prints it. */
export const ipv6Address = z.string().refine(isCanonicalIpv6, {
  error: (issue) => `${String(issue.input)} is not an IPv6 address in RFC 5952 form (e.g. 2001:db8::1)`,
});

/** An IPv6 CIDR in canonical form (host bits zero), e.g. 2001:db8::/32. `::/0` is the default route. */
export const ipv6Cidr = z.string().refine(isCanonicalIpv6Cidr, {
  error: (issue) =>
    `${String(issue.input)} is not a canonical IPv6 CIDR (e.g. 2001:db8::/32, host bits zero)`,
});

/** Either family, chosen by the text (a `:` is IPv6), so errors speak of the family written. */
const eitherFamily = (v4: z.ZodType<string>, v6: z.ZodType<string>) =>
  z.string().superRefine((text, ctx) => {
    const result = (text.includes(':') ? v6 : v4).safeParse(text);
    if (!result.success)
      for (const issue of result.error.issues) ctx.addIssue({ code: 'custom', message: issue.message });
  });
export const ipAddress = eitherFamily(ipv4Address, ipv6Address);
export const ipCidr = eitherFamily(ipv4Cidr, ipv6Cidr);
/** The family of an object that has one: absent is IPv4. */
export const family = z.literal('inet6');

export const u32 = z.number().int().min(0).max(0xffffffff);
export const tableId = int(LIMITS.table);
export const priority = int(LIMITS.rulePriority);
export const port = z.number().int().min(1).max(65535);
export const portRange = z.object({ start: port, end: port }).strict();
export const uidRange = z.object({ start: u32, end: u32 }).strict();
/** `icmp` is ICMPv4 (protocol 1), `ipv6-icmp` ICMPv6 (58, an IPv6 rule's only): ip(8)'s names. */
export const ipProto = z.enum(['tcp', 'udp', 'icmp', 'ipv6-icmp']);

/**
 * An address the agent resolves on the router.
 * - `literal`: a fixed address
 * - `provider-address`: the uplink interface's current primary IPv4 address
 * - `provider-gateway`: the uplink's gateway (static, detected, or the PPP peer)
 */
export const addressRef = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('literal'), address: ipAddress }).strict(),
  z.object({ kind: z.literal('provider-address'), provider: z.string() }).strict(),
  z.object({ kind: z.literal('provider-gateway'), provider: z.string() }).strict(),
]);
export type AddressRef = z.infer<typeof addressRef>;

/** A destination/source network the agent resolves: a literal CIDR or an uplink's connected subnet. */
export const networkRef = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('literal'), cidr: ipCidr }).strict(),
  z.object({ kind: z.literal('provider-network'), provider: z.string() }).strict(),
  /** The uplink's own address as a /32 — in a rule's `from`, one rule per address of the interface (D92). */
  z.object({ kind: z.literal('provider-host'), provider: z.string() }).strict(),
  /**
   * The prefixes the uplink's ISP delegated (DHCPv6-PD, D155), as the router's client reported
   * them — in a rule's `from`, one rule per delegated prefix (none while none is known).
   */
  z.object({ kind: z.literal('provider-delegated'), provider: z.string() }).strict(),
]);
export type NetworkRef = z.infer<typeof networkRef>;

export const gatewayMode = z.discriminatedUnion('kind', [
  /** A fixed next hop inside the uplink's subnet. */
  z.object({ kind: z.literal('static'), address: ipv4Address }).strict(),
  /** Learn the next hop from the kernel (a DHCP client's default route on that interface). */
  z.object({ kind: z.literal('detect') }).strict(),
  /** Point-to-point link (PPP, tunnels): routes go `dev IF` with no next hop. */
  z.object({ kind: z.literal('point-to-point') }).strict(),
  /** No IPv4 on this uplink (IPv6-only, D165): the provider has an `ipv6` half and nothing else. */
  z.object({ kind: z.literal('none') }).strict(),
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
    targets: z.array(ipv4Address).max(LIMITS.health.targets.max),
    method: z.enum(['icmp', 'tcp']),
    tcpPort: port.optional(),
    intervalMs: int(LIMITS.health.intervalMs),
    timeoutMs: int(LIMITS.health.timeoutMs),
    /** Declare down after this many failed rounds (within `window` rounds). */
    failAfter: int(LIMITS.health.failAfter),
    /** Declare up again after this many successful rounds. */
    recoverAfter: int(LIMITS.health.recoverAfter),
    /** A round succeeds when at least this many targets answer. */
    minTargetsUp: int(LIMITS.health.minTargetsUp),
    enabled: z.boolean(),
  })
  .strict();
export type HealthSettings = z.infer<typeof healthSettings>;

/**
 * One side of an NPTv6 mapping: a prefix from the spec, or the prefix a provider's ISP
 * delegated (D155), resolved on the router; `length` is the spec's expected length.
 */
export const nptPrefix = z.union([
  ipv6Cidr,
  z.object({ delegated: z.string(), length: z.number().int().min(1).max(64) }).strict(),
]);
export type NptPrefix = z.infer<typeof nptPrefix>;

/** `2001:db8:1::/48`, or `delegated(isp1)/56` for a prefix only the router knows. */
export function nptPrefixText(ref: NptPrefix): string {
  return typeof ref === 'string' ? ref : `delegated(${ref.delegated})/${ref.length}`;
}

/** The IPv6 half of a provider (D180): present when the uplink carries IPv6. */
export const providerIpv6 = z
  .object({
    /** A global or link-local next hop on the provider's interface, or the RA's default route. */
    gateway: z.discriminatedUnion('kind', [
      z.object({ kind: z.literal('static'), address: ipv6Address }).strict(),
      z.object({ kind: z.literal('detect') }).strict(),
    ]),
    /** Prefixes the ISP routes to the site: replies from them leave by this uplink. */
    prefixes: z.array(ipv6Cidr).max(LIMITS.ipv6Prefixes.max),
    /**
     * NPTv6 onto this uplink (D181): traffic from another provider's prefix that leaves here
     * (failover) gets the same-length prefix of this one. Empty: none.
     */
    npt: z.array(z.object({ from: nptPrefix, to: nptPrefix }).strict()).max(LIMITS.ipv6Prefixes.max * 4),
    /**
     * The ISP delegates prefixes (DHCPv6-PD, D155): the router's client reports them and the
     * agent follows them as facts. `length`: the length the spec expects (null: any /1–/64).
     */
    delegated: z
      .object({ length: z.number().int().min(1).max(64).nullable() })
      .strict()
      .optional(),
    /** IPv6 probe targets; empty means the IPv6 gateway. */
    healthTargets: z.array(ipv6Address).max(LIMITS.health.targets.max),
  })
  .strict();
export type ProviderIpv6 = z.infer<typeof providerIpv6>;

export const provider = z
  .object({
    name: z.string().regex(OBJECT_NAME_PATTERN),
    interface: interfaceName,
    gateway: gatewayMode,
    table: tableId,
    /** The provider's mark, already shifted into the mark mask. */
    mark: u32,
    /** Weight in the balanced multipath default route; null when not balanced. */
    balance: int(LIMITS.balanceWeight).nullable(),
    /** Fallback order (lower first) when no balanced provider is up; null when not a fallback. */
    fallback: int(LIMITS.fallbackOrder).nullable(),
    track: z.boolean(),
    snat: snatMode,
    health: healthSettings,
    ipv6: providerIpv6.optional(),
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
    family: family.optional(),
    /** Stable identity used in diffs and drift reports, e.g. `policy:mail/isp1`. */
    id: z.string().min(LIMITS.objectIdLength.min).max(LIMITS.objectIdLength.max),
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
    tos: int(LIMITS.tos).optional(),
    suppressPrefixlength: z.number().int().min(0).max(128).optional(),
    requires: z.string().optional(),
  })
  .strict();
export type DesiredRule = z.infer<typeof desiredRule>;

export const desiredNexthop = z
  .object({
    provider: z.string(),
    dev: interfaceName,
    gateway: addressRef.optional(),
    weight: int(LIMITS.balanceWeight),
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
    id: z.string().min(LIMITS.objectIdLength.min).max(LIMITS.objectIdLength.max),
    family: family.optional(),
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
  z
    .object({
      kind: z.literal('track-save'),
      provider: z.string(),
      iif: interfaceName,
      mark: u32,
      family: z.literal('ipv6').optional(),
    })
    .strict(),
  /** prerouting/output: packets of a tracked connection get the ct mark copied into the packet mark. */
  z
    .object({
      kind: z.literal('track-restore'),
      chain: z.enum(['prerouting', 'output']),
      provider: z.string(),
      mark: u32,
      family: z.literal('ipv6').optional(),
    })
    .strict(),
  /** postrouting: source NAT to whatever address the uplink has. */
  z.object({ kind: z.literal('masquerade'), provider: z.string(), oif: interfaceName }).strict(),
  /** postrouting: source NAT to a fixed address. */
  z
    .object({ kind: z.literal('snat'), provider: z.string(), oif: interfaceName, address: ipv4Address })
    .strict(),
  /**
   * postrouting: NPTv6, another provider's prefix mapped onto this uplink's (D181); either side
   * may be a delegated prefix (D155), which the agent resolves (no rule while it is unknown).
   */
  z
    .object({
      kind: z.literal('npt'),
      provider: z.string(),
      oif: interfaceName,
      from: nptPrefix,
      to: nptPrefix,
    })
    .strict(),
]);
export type NftRule = z.infer<typeof nftRule>;

export const settings = z
  .object({
    /** Route protocol tag marking rules and routes as Uplink's. */
    protocol: int(LIMITS.routeProtocol).refine((p) => protocolProblem(p) === undefined, {
      error: (issue) =>
        `protocol ${String(issue.input)} is ${protocolProblem(Number(issue.input))}: Uplink would take that owner's rules and routes for its own; use a free number such as 252`,
    }),
    markMask: u32,
    /** Table holding the balanced multipath default route (253 = Linux "default" table). */
    balanceTable: tableId.nullable(),
    /** Provider tables the agent may take over even if they hold untagged routes. */
    adoptTables: z.array(tableId).max(LIMITS.adoptTables.max),
    /** `report` leaves drift alone; `heal` re-applies the confirmed state. */
    drift: z.enum(['report', 'heal']),
  })
  .strict();
export type Settings = z.infer<typeof settings>;

export const desiredStateShape = z
  .object({
    version: z.literal(DESIRED_STATE_VERSION),
    site: z.string().regex(SITE_NAME_PATTERN),
    /** sha256 over the canonical JSON of every other field; identifies the content. */
    hash: z.string().regex(/^[0-9a-f]{64}$/),
    settings,
    providers: z.array(provider).max(LIMITS.providers.max),
    rules: z.array(desiredRule).max(LIMITS.rules.max),
    routes: z.array(desiredRoute).max(LIMITS.routes.max),
    nft: z.array(nftRule).max(LIMITS.nftRules.max),
    sysctls: z
      .record(
        z.string().refine(isSysctlKey, {
          error: (issue) => `${String(issue.input)}: not a sysctl key Uplink manages (${SYSCTL_KEY_FORMS})`,
        }),
        z.string().regex(/^[0-9]{1,10}$/),
      )
      .refine(
        (record) => Object.keys(record).length <= LIMITS.sysctls.max,
        `at most ${LIMITS.sysctls.max} sysctls`,
      ),
  })
  .strict();

/** A desired state the agent can apply: the shape, and the rules between its fields. */
export const desiredState = desiredStateShape.superRefine((state, ctx) => {
  for (const problem of checkDesiredState(state)) ctx.addIssue({ code: 'custom', ...problem });
});
export type DesiredState = z.infer<typeof desiredState>;

/**
 * A desired state as it arrives from outside (the wire, `--desired FILE`): also its hash
 * must be the hash of its content, or it would be recorded under a generation it is not.
 */
export const receivedDesiredState = desiredState.superRefine((state, ctx) => {
  const expected = desiredStateHash(state);
  if (state.hash !== expected) {
    ctx.addIssue({
      code: 'custom',
      path: ['hash'],
      message: `does not match the content (sha256 of the canonical JSON is ${expected}); the state was changed after it was compiled`,
    });
  }
});

export interface StateProblem {
  readonly path: (string | number)[];
  readonly message: string;
}

/**
 * The rules between fields that keep an apply from touching what is not Uplink's: no
 * reserved table as a provider's or the balanced route's, no route outside the tables the
 * state declares, no adoption of a table it does not use, references to declared providers
 * only, one table/mark/interface per provider, marks inside the mask.
 */
export function checkDesiredState(state: z.infer<typeof desiredStateShape>): StateProblem[] {
  const problems: StateProblem[] = [];
  const add = (path: (string | number)[], message: string) => problems.push({ path, message });
  const { settings: s } = state;
  const names = new Set<string>();
  const seen = {
    table: new Map<number, string>(),
    mark: new Map<number, string>(),
    iface: new Map<string, string>(),
  };
  state.providers.forEach((p, i) => {
    if (names.has(p.name)) add(['providers', i, 'name'], `provider ${p.name} is declared twice`);
    names.add(p.name);
    const reserved = RESERVED_TABLES.get(p.table);
    if (reserved !== undefined)
      add(
        ['providers', i, 'table'],
        `table ${p.table} is the kernel's ${reserved} table; a provider needs its own`,
      );
    if (p.table === s.balanceTable) add(['providers', i, 'table'], `table ${p.table} is the balance table`);
    for (const [key, value, what] of [
      ['table', p.table, 'table'],
      ['mark', p.mark, 'mark'],
    ] as const) {
      const owner = seen[key].get(value);
      if (owner !== undefined) add(['providers', i, key], `${what} ${value} is also provider ${owner}'s`);
      seen[key].set(value, p.name);
    }
    const ifaceOwner = seen.iface.get(p.interface);
    if (ifaceOwner !== undefined)
      add(['providers', i, 'interface'], `interface ${p.interface} is also provider ${ifaceOwner}'s`);
    seen.iface.set(p.interface, p.name);
    if (p.mark === 0 || (p.mark & ~s.markMask) >>> 0 !== 0) {
      add(
        ['providers', i, 'mark'],
        `mark 0x${p.mark.toString(16)} is not a non-zero value inside the mark mask 0x${s.markMask.toString(16)}`,
      );
    }
    if (p.gateway.kind === 'none' && p.ipv6 === undefined)
      add(['providers', i, 'gateway'], "none (IPv6-only) needs the provider's ipv6 half");
    const h = p.health;
    if (h.timeoutMs > h.intervalMs)
      add(
        ['providers', i, 'health', 'timeoutMs'],
        `${h.timeoutMs} is longer than intervalMs ${h.intervalMs}`,
      );
    if (h.method === 'tcp' && h.tcpPort === undefined)
      add(['providers', i, 'health', 'tcpPort'], 'required with method tcp');
    if (h.targets.length > 0 && h.minTargetsUp > h.targets.length) {
      add(
        ['providers', i, 'health', 'minTargetsUp'],
        `${h.minTargetsUp} is more than the ${h.targets.length} targets`,
      );
    }
  });
  if (s.markMask === 0) add(['settings', 'markMask'], 'must not be 0');
  if (s.balanceTable !== null && s.balanceTable !== 253 && RESERVED_TABLES.has(s.balanceTable)) {
    add(
      ['settings', 'balanceTable'],
      `table ${s.balanceTable} is the kernel's ${RESERVED_TABLES.get(s.balanceTable)} table`,
    );
  }
  const writable = new Set(state.providers.map((p) => p.table));
  if (s.balanceTable !== null) writable.add(s.balanceTable);
  s.adoptTables.forEach((table, i) => {
    if (!writable.has(table) || table === MAIN_TABLE) {
      add(
        ['settings', 'adoptTables', i],
        `table ${table} is not a provider's or the balance table; only those can be adopted`,
      );
    }
  });
  const known = (provider: string, path: (string | number)[]) => {
    if (!names.has(provider)) add(path, `names provider ${provider}, which is not declared`);
  };
  const refs = (ref: { kind: string; provider?: string } | undefined, path: (string | number)[]) => {
    if (ref !== undefined && ref.provider !== undefined) known(ref.provider, path);
  };
  state.rules.forEach((rule, i) => {
    const at = (...rest: (string | number)[]) => ['rules', i, ...rest];
    if (rule.action === 'lookup' && rule.table === undefined) add(at('table'), 'a lookup rule needs a table');
    if (rule.table !== undefined && RESERVED_TABLES.get(rule.table) === 'local')
      add(at('table'), 'Uplink never looks up table local');
    if (rule.fwmask !== undefined && rule.fwmark === undefined) add(at('fwmask'), 'fwmask needs fwmark');
    if (rule.requires !== undefined) known(rule.requires, at('requires'));
    refs(rule.from, at('from'));
    refs(rule.to, at('to'));
    delegatedRef(rule.from, at('from'));
    if (rule.to?.kind === 'provider-delegated') add(at('to'), 'a delegated prefix is a rule source only');
    if (rule.from?.kind === 'provider-delegated' && rule.family !== 'inet6')
      add(at('from'), 'a delegated prefix is IPv6: the rule needs family inet6');
    for (const key of ['from', 'to'] as const) {
      const ref = rule[key];
      if (ref?.kind === 'literal' && isIpv6Cidr(ref.cidr) !== (rule.family === 'inet6'))
        add(
          at(key),
          `${ref.cidr} is not an ${rule.family === 'inet6' ? 'IPv6' : 'IPv4'} prefix like the rule`,
        );
    }
    if (rule.suppressPrefixlength !== undefined && rule.family !== 'inet6' && rule.suppressPrefixlength > 32)
      add(at('suppressPrefixlength'), 'an IPv4 rule suppresses prefix lengths 0–32');
  });
  state.routes.forEach((route, i) => {
    const at = (...rest: (string | number)[]) => ['routes', i, ...rest];
    if (!writable.has(route.table))
      add(
        at('table'),
        `table ${route.table} is not a provider's or the balance table; Uplink writes routes only there`,
      );
    if (route.requires !== undefined) known(route.requires, at('requires'));
    refs(route.dst, at('dst'));
    if (route.dst.kind === 'literal' && isIpv6Cidr(route.dst.cidr) !== (route.family === 'inet6'))
      add(
        at('dst'),
        `${route.dst.cidr} is not an ${route.family === 'inet6' ? 'IPv6' : 'IPv4'} prefix like the route`,
      );
    for (const ref of [route.gateway, route.src, ...(route.nexthops ?? []).map((hop) => hop.gateway)]) {
      if (ref?.kind === 'literal' && ref.address.includes(':') !== (route.family === 'inet6'))
        add(
          at('gateway'),
          `${ref.address} is not an ${route.family === 'inet6' ? 'IPv6' : 'IPv4'} address like the route`,
        );
    }
    refs(route.gateway, at('gateway'));
    refs(route.src, at('src'));
    route.nexthops?.forEach((hop, j) => {
      known(hop.provider, at('nexthops', j, 'provider'));
      refs(hop.gateway, at('nexthops', j, 'gateway'));
    });
  });
  for (const [i, rule] of state.nft.entries()) {
    known(rule.provider, ['nft', i, 'provider']);
    if (rule.kind === 'npt')
      for (const side of ['from', 'to'] as const) delegatedRef(rule[side], ['nft', i, side]);
  }
  return problems;

  /** A delegated prefix named anywhere belongs to a provider whose ISP delegates one (D155). */
  function delegatedRef(ref: NptPrefix | NetworkRef | undefined, path: (string | number)[]): void {
    if (ref === undefined || typeof ref === 'string') return;
    const name =
      'delegated' in ref ? ref.delegated : ref.kind === 'provider-delegated' ? ref.provider : undefined;
    if (name === undefined) return;
    const owner = state.providers.find((p) => p.name === name);
    if (owner === undefined) add(path, `names provider ${name}, which is not declared`);
    else if (owner.ipv6?.delegated === undefined)
      add(path, `names the delegated prefix of provider ${name}, whose ipv6 has no delegated prefixes`);
    else if (
      'delegated' in ref &&
      owner.ipv6.delegated.length !== null &&
      owner.ipv6.delegated.length !== ref.length
    )
      add(
        path,
        `expects a /${ref.length} from provider ${name}, which is delegated a /${owner.ipv6.delegated.length}`,
      );
  }
}

function isCanonicalIpv6(text: string): boolean {
  return (
    typeof text === 'string' &&
    ipaddr.IPv6.isValid(text) &&
    !text.includes('%') &&
    ipaddr.IPv6.parse(text).toString() === text
  );
}

function isCanonicalIpv6Cidr(text: string): boolean {
  if (typeof text !== 'string') return false;
  const slash = text.indexOf('/');
  if (slash < 0 || !isCanonicalIpv6(text.slice(0, slash))) return false;
  const lengthText = text.slice(slash + 1);
  if (!/^(12[0-8]|1[01]\d|[1-9]?\d)$/.test(lengthText)) return false;
  return canonicalIpv6Cidr(text.slice(0, slash), Number(lengthText)) === text;
}

/** The network of `address/length` in RFC 5952 form. */
export function canonicalIpv6Cidr(address: string, length: number): string {
  return `${ipaddr.IPv6.networkAddressFromCIDR(`${address}/${length}`).toString()}/${length}`;
}

export function isIpv6Cidr(text: string): boolean {
  return text.includes(':');
}

function isCanonicalCidr(text: string): boolean {
  return canonicalCidr(text) === text;
}

function canonicalCidr(text: string): string {
  try {
    const [address, length] = ipaddr.parseCIDR(text);
    return `${ipaddr.IPv4.networkAddressFromCIDR(`${address.toString()}/${length}`).toString()}/${length}`;
  } catch {
    return text;
  }
}
