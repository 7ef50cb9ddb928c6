/**
 * Concrete kernel objects Uplink owns. Both the `effective` state (desired resolved
 * against facts and health) and the `current` state (read from the kernel) have this
 * shape, so diff, verify, drift and revert are comparisons between two values of it.
 */
import { z } from 'zod';
import {
  family,
  interfaceName,
  ipAddress,
  ipCidr,
  ipProto,
  ipv4Address,
  ipv6Address,
  ipv6Cidr,
  portRange,
  u32,
  uidRange,
} from './desired-state.js';

export const kernelRule = z
  .object({
    priority: z.number().int().min(0).max(32767),
    /** Absent: IPv4 (`ip rule`); `inet6`: `ip -6 rule`, a separate list with its own priorities. */
    family: family.optional(),
    action: z.enum(['lookup', 'blackhole', 'unreachable', 'prohibit']),
    table: z.number().int().optional(),
    from: ipCidr.optional(),
    to: ipCidr.optional(),
    iif: interfaceName.optional(),
    oif: interfaceName.optional(),
    fwmark: u32.optional(),
    fwmask: u32.optional(),
    uidrange: uidRange.optional(),
    ipproto: ipProto.optional(),
    sport: portRange.optional(),
    dport: portRange.optional(),
    tos: z.number().int().min(0).max(255).optional(),
    suppressPrefixlength: z.number().int().min(0).max(128).optional(),
    protocol: z.number().int().min(0).max(255),
  })
  .strict();
export type KernelRule = z.infer<typeof kernelRule>;

export const kernelNexthop = z
  .object({ dev: interfaceName, gateway: ipAddress.optional(), weight: z.number().int().min(1).max(256) })
  .strict();
export type KernelNexthop = z.infer<typeof kernelNexthop>;

export const kernelRoute = z
  .object({
    /** Absent: IPv4; `inet6`: an IPv6 route (the kernel gives those metric 1024 when none is set). */
    family: family.optional(),
    table: z.number().int(),
    /** Canonical CIDR; the default route is `0.0.0.0/0` (`::/0`). */
    dst: ipCidr,
    type: z.enum(['unicast', 'blackhole', 'unreachable', 'prohibit', 'throw']),
    dev: interfaceName.optional(),
    gateway: ipAddress.optional(),
    src: ipAddress.optional(),
    scope: z.enum(['global', 'link', 'host']).optional(),
    metric: u32.optional(),
    nexthops: z.array(kernelNexthop).optional(),
    protocol: z.number().int().min(0).max(255),
  })
  .strict();
export type KernelRoute = z.infer<typeof kernelRoute>;

/** A concrete netfilter rule in table `inet uplink` (see `nftRule` for the semantic kinds). */
export const kernelNftRule = z.discriminatedUnion('kind', [
  z
    .object({
      kind: z.literal('track-save'),
      iif: interfaceName,
      mark: u32,
      family: z.literal('ipv6').optional(),
    })
    .strict(),
  z
    .object({
      kind: z.literal('track-restore'),
      chain: z.enum(['prerouting', 'output']),
      mark: u32,
      family: z.literal('ipv6').optional(),
    })
    .strict(),
  z.object({ kind: z.literal('masquerade'), oif: interfaceName }).strict(),
  z.object({ kind: z.literal('snat'), oif: interfaceName, address: ipv4Address }).strict(),
  z.object({ kind: z.literal('npt'), oif: interfaceName, from: ipv6Cidr, to: ipv6Cidr }).strict(),
  /** Anything in table inet uplink that Uplink did not write: always drift. */
  z.object({ kind: z.literal('unknown'), chain: z.string(), text: z.string() }).strict(),
]);
export type KernelNftRule = z.infer<typeof kernelNftRule>;

export const kernelState = z
  .object({
    rules: z.array(kernelRule),
    routes: z.array(kernelRoute),
    /** null: table inet uplink does not exist (distinct from an empty table). */
    nft: z.array(kernelNftRule).nullable(),
    sysctls: z.record(z.string(), z.string()),
  })
  .strict();
export type KernelState = z.infer<typeof kernelState>;

/** One delegated prefix as the DHCPv6 client reported it (D155). */
export const delegatedPrefix = z
  .object({ prefix: ipv6Cidr, validUntil: z.number().int().optional() })
  .strict();
export type DelegatedPrefix = z.infer<typeof delegatedPrefix>;

/** What only the router knows, read from the live kernel (and the DHCPv6 client's reports). */
export const interfaceFacts = z
  .object({
    exists: z.boolean(),
    up: z.boolean(),
    /** Primary first. `peer` is set on point-to-point links. */
    addresses: z.array(
      z.object({ address: ipv4Address, prefixLength: z.number().int(), peer: ipv4Address.optional() }),
    ),
    /** Gateway learnt from the kernel (e.g. a DHCP client's default route on this interface). */
    detectedGateway: ipv4Address.optional(),
    /** Global IPv6 addresses (static, SLAAC or DHCPv6; not tentative or failed DAD), kernel order. */
    addresses6: z.array(z.object({ address: ipv6Address, prefixLength: z.number().int() })).optional(),
    /** The IPv6 default route's next hop on this interface in main (the router advertisement's). */
    detectedGateway6: ipv6Address.optional(),
    /**
     * Prefixes the ISP delegated over this interface (DHCPv6-PD, D155), as the router's client
     * reported them (`uplink-agent delegated`), while valid; `validUntil`: ms since the epoch.
     */
    delegated6: z.array(delegatedPrefix).optional(),
  })
  .strict();
export type InterfaceFacts = z.infer<typeof interfaceFacts>;

export const facts = z.object({ interfaces: z.record(z.string(), interfaceFacts) }).strict();
export type Facts = z.infer<typeof facts>;

/** Probe verdict per provider; providers not listed count as up. */
export type Health = Readonly<Record<string, 'up' | 'down'>>;
