/**
 * Schemas of the files in a fleet repository, exactly as written by people: every key
 * optional where a default or a group can supply it, every object strict so a typo such
 * as `gatway:` is an error. Semantic rules that need the whole site or fleet live in
 * check-site.ts / check-fleet.ts.
 */
import { z } from 'zod';
import {
  INTERFACE_NAME_PATTERN,
  INTERFACE_NAME_RULE,
  LIMITS,
  OBJECT_NAME_PATTERN,
  OBJECT_NAME_RULE,
  SITE_NAME_PATTERN,
  SITE_NAME_RULE,
} from '#agent/model';

// The agent's own name rules (D89): a name that validates is one the agent accepts.
const name = z.string().regex(OBJECT_NAME_PATTERN, OBJECT_NAME_RULE);
const siteName = z.string().regex(SITE_NAME_PATTERN, SITE_NAME_RULE);
const interfaceName = z.string().regex(INTERFACE_NAME_PATTERN, INTERFACE_NAME_RULE);
const count = (range: { readonly min: number; readonly max: number }) =>
  z.number().int().min(range.min).max(range.max);
const duration = z.string().regex(/^\d+(\.\d+)?(ms|s|m|h)$/, 'a duration such as 500ms, 2s, 5m or 1h');
const uint = z.number().int().min(0);
/** An address, CIDR or port expression; checked in detail by the semantic rules. */
const text = z.string().min(1);
const oneOrMany = <T extends z.ZodType>(item: T) => z.union([item, z.array(item).min(1)]);
const portSpec = z.union([
  z.number().int(),
  z.string().regex(/^\d+(-\d+)?$/, 'a port (25) or range ("8000-8080")'),
]);

export const healthSpec = z
  .object({
    enabled: z.boolean().optional(),
    method: z.enum(['icmp', 'tcp']).optional(),
    tcpPort: z.number().int().min(1).max(65535).optional(),
    targets: z.array(text).max(LIMITS.health.targets.max).optional(),
    interval: duration.optional(),
    timeout: duration.optional(),
    failAfter: count(LIMITS.health.failAfter).optional(),
    recoverAfter: count(LIMITS.health.recoverAfter).optional(),
    minTargetsUp: count(LIMITS.health.minTargetsUp).optional(),
  })
  .strict();
export type HealthSpec = z.infer<typeof healthSpec>;

/** The IPv6 half of a provider: the same uplink, its own address, gateway and prefixes (D180). */
export const providerIpv6Spec = z
  .object({
    /** `2001:db8:ff01::2/64`, or `learned` (SLAAC/DHCPv6: the agent reads it from the interface). */
    address: text.optional(),
    /** A global or link-local next hop (`fe80::1`, or `fe80::1%eth1`), or `detect` (the RA's default route). */
    gateway: text.optional(),
    /** Prefixes the ISP routes to the site (the LANs number from them). */
    prefixes: z.array(text).optional(),
    /** Map other providers' prefixes onto this one's when their traffic fails over to it (NPTv6, D181). */
    npt: z.boolean().optional(),
    health: z
      .object({ targets: z.array(text).max(LIMITS.health.targets.max) })
      .strict()
      .optional(),
  })
  .strict();
export type ProviderIpv6Spec = z.infer<typeof providerIpv6Spec>;

export const providerSpec = z
  .object({
    name,
    remove: z.literal(true).optional(),
    interface: interfaceName.optional(),
    /** `false`: an IPv6-only uplink (D165) — no IPv4 address, gateway, routes, rules or SNAT. */
    ipv4: z.boolean().optional(),
    /** The uplink's own static address with prefix (e.g. 198.51.100.2/30); omit when dynamic. */
    address: text.nullable().optional(),
    /** `null` removes an inherited gateway (an IPv6-only site's uplink in a dual-stack group). */
    gateway: text.nullable().optional(),
    /** Prefixes the ISP routes to the router without putting them on the interface (a /29 behind the uplink). */
    routed: z.array(text).nullable().optional(),
    table: z.number().int().min(1).max(0xfffffffe).nullable().optional(),
    mark: uint.nullable().optional(),
    /** `null` removes an inherited value (e.g. a group's balance on a site's fallback uplink). */
    balance: z.number().int().nullable().optional(),
    fallback: z.union([z.boolean(), z.number().int()]).nullable().optional(),
    track: z.boolean().optional(),
    snat: text.optional(),
    rpFilter: z.enum(['off', 'strict', 'loose']).optional(),
    health: healthSpec.optional(),
    /** `null` removes an inherited IPv6 half. */
    ipv6: providerIpv6Spec.nullable().optional(),
  })
  .strict();
export type ProviderSpec = z.infer<typeof providerSpec>;

export const policySpec = z
  .object({
    name,
    remove: z.literal(true).optional(),
    from: oneOrMany(text).optional(),
    to: oneOrMany(text).optional(),
    iif: interfaceName.optional(),
    uid: z.union([z.number().int(), z.string()]).optional(),
    /** `icmp` is ICMPv4; `icmpv6` ICMP for IPv6 (neighbour discovery, ping6, PMTU). */
    proto: z.enum(['tcp', 'udp', 'icmp', 'icmpv6']).optional(),
    dport: oneOrMany(portSpec).optional(),
    sport: oneOrMany(portSpec).optional(),
    tos: z.number().int().optional(),
    mark: z.union([z.number().int(), z.string()]).optional(),
    traffic: z.enum(['all', 'local', 'forwarded']).optional(),
    via: z.array(name).optional(),
    /**
     * `route` (via providers), `main` (main's routes, its default route included: the class
     * takes the router's normal path), `balance` (the balanced default route, whatever later
     * policies say), or a drop: `blackhole`, `unreachable`, `prohibit`.
     */
    action: z.enum(['route', 'main', 'balance', 'blackhole', 'unreachable', 'prohibit']).optional(),
    priority: z.number().int().optional(),
  })
  .strict();
export type PolicySpec = z.infer<typeof policySpec>;

export const lanSpec = z
  .object({
    interface: interfaceName,
    remove: z.literal(true).optional(),
    subnets: z.array(text).optional(),
  })
  .strict();
export type LanSpec = z.infer<typeof lanSpec>;

export const managementSpec = z
  .object({
    address: text,
    port: z.number().int().min(1).max(65535).optional(),
    user: z
      .string()
      .regex(/^[a-z_][a-z0-9_-]{0,31}$/, 'a Unix user name')
      .optional(),
    hostKey: z
      .string()
      .regex(
        /^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp256|ecdsa-sha2-nistp384|ecdsa-sha2-nistp521) [A-Za-z0-9+/=]+$/,
        'an OpenSSH public host key line: "ssh-ed25519 AAAA…"',
      )
      .optional(),
  })
  .strict();
export type ManagementSpec = z.infer<typeof managementSpec>;

export const siteSettingsSpec = z
  .object({
    markMask: uint.optional(),
    protocol: z.number().int().optional(),
    balanceTable: z.union([z.number().int(), z.literal('default')]).optional(),
    adoptTables: z.array(z.number().int()).optional(),
    drift: z.enum(['report', 'heal']).optional(),
  })
  .strict();
export type SiteSettingsSpec = z.infer<typeof siteSettingsSpec>;

const siteBody = {
  extends: z.array(name).optional(),
  labels: z.record(z.string().regex(/^[a-z0-9][a-z0-9_./-]{0,62}$/, 'a label key'), z.string()).optional(),
  settings: siteSettingsSpec.optional(),
  lan: z.array(lanSpec).optional(),
  providers: z.array(providerSpec).optional(),
  policies: z.array(policySpec).optional(),
  sysctls: z.record(z.string(), z.union([z.string(), z.number().int()])).optional(),
};

export const groupSpec = z.object({ name, description: z.string().optional(), ...siteBody }).strict();
export type GroupSpec = z.infer<typeof groupSpec>;

export const siteSpec = z
  .object({ name: siteName, description: z.string().optional(), management: managementSpec, ...siteBody })
  .strict();
export type SiteSpec = z.infer<typeof siteSpec>;

const band = z.tuple([z.number().int(), z.number().int()]);

export const waveSpec = z
  .object({
    name,
    select: z
      .object({ labels: z.record(z.string(), z.string()).optional(), sites: z.array(siteName).optional() })
      .strict()
      .optional(),
    percent: z.number().min(1).max(100).optional(),
    count: z.number().int().min(1).optional(),
    concurrency: z.number().int().min(1).max(1024).optional(),
    maxFailures: z.number().int().min(0).optional(),
    bake: duration.optional(),
  })
  .strict();
export type WaveSpec = z.infer<typeof waveSpec>;

export const fleetSpec = z
  .object({
    description: z.string().optional(),
    defaults: z
      .object({
        protocol: z.number().int().optional(),
        markMask: uint.optional(),
        tables: band.optional(),
        balanceTable: z.union([z.number().int(), z.literal('default')]).optional(),
        drift: z.enum(['report', 'heal']).optional(),
        priorities: z
          .object({
            suppressMain: z.number().int().optional(),
            track: band.optional(),
            source: band.optional(),
            policy: band.optional(),
            balance: z.number().int().optional(),
            fallback: band.optional(),
          })
          .strict()
          .optional(),
        health: healthSpec.optional(),
      })
      .strict()
      .optional(),
    rollout: z
      .object({
        confirmWithin: duration.optional(),
        siteTimeout: duration.optional(),
        rollbackOnFailure: z.boolean().optional(),
        /** `auto`: the controller brings every site back to the commit in force; `report`: it only shows them. */
        reconcile: z.enum(['auto', 'report']).optional(),
        waves: z.array(waveSpec).min(1),
      })
      .strict()
      .optional(),
  })
  .strict();
export type FleetSpec = z.infer<typeof fleetSpec>;
