/**
 * Delegated prefixes as facts (D155). No kernel object says which uplink a DHCPv6-PD prefix
 * came from, so the router's DHCPv6 client tells the agent: its hook runs `uplink-agent
 * delegated`, which keeps one record per interface in the state directory. These are the
 * pure parts: checking a reported prefix, and merging the records still valid into the
 * facts `resolve` reads, so a new or withdrawn prefix is a change of facts, followed like a
 * new DHCP lease, never drift.
 */
import ipaddr from 'ipaddr.js';
import { z } from 'zod';
import { interfaceName } from '../model/desired-state.js';
import { type DelegatedPrefix, delegatedPrefix, type Facts } from '../model/kernel-state.js';
import { routedPrefixProblem } from '../model/routed-prefix.js';

/** `<state-dir>/delegated/<interface>.json`. */
export const delegatedRecord = z
  .object({
    interface: interfaceName,
    prefixes: z.array(delegatedPrefix).max(16),
    /** When the client last reported (ms since the epoch). */
    reportedAt: z.number().int(),
  })
  .strict();
export type DelegatedRecord = z.infer<typeof delegatedRecord>;

/**
 * A prefix as a DHCPv6 client writes it (`2001:DB8:1:100::/56`) in canonical form, or why it
 * is not one an ISP can delegate to a site.
 */
export function checkDelegatedPrefix(
  text: string,
): { ok: true; prefix: string } | { ok: false; message: string } {
  const slash = text.indexOf('/');
  const address = text.slice(0, slash);
  const lengthText = text.slice(slash + 1);
  if (slash < 0 || !ipaddr.IPv6.isValid(address) || address.includes('%') || !/^\d{1,3}$/.test(lengthText))
    return { ok: false, message: `${text} is not an IPv6 prefix; write it as 2001:db8:1:100::/56` };
  const length = Number(lengthText);
  if (length > 128) return { ok: false, message: `${text}: a prefix length is 0–128` };
  const network = ipaddr.IPv6.networkAddressFromCIDR(`${address}/${length}`).toString();
  const prefix = `${network}/${length}`;
  if (ipaddr.IPv6.parse(address).toString() !== network)
    return { ok: false, message: `${text} has host bits set; the prefix is ${prefix}` };
  const problem = routedPrefixProblem(prefix);
  if (problem !== undefined) return { ok: false, message: `${prefix} ${problem}` };
  return { ok: true, prefix };
}

/** A lifetime in seconds as DHCPv6 gives it: 0xffffffff is infinite (no `validUntil`). */
export function validUntil(now: number, lifetimeSeconds: number | undefined): number | undefined {
  if (lifetimeSeconds === undefined || lifetimeSeconds >= 0xffffffff) return undefined;
  return now + lifetimeSeconds * 1000;
}

/**
 * The facts with each interface's delegated prefixes that are still valid at `now`; an
 * interface the kernel does not have gets an entry that says so (its prefixes still count
 * for NPTv6 from them). Interfaces without any keep their facts as read, byte for byte.
 */
export function mergeDelegated(facts: Facts, records: readonly DelegatedRecord[], now: number): Facts {
  const interfaces = { ...facts.interfaces };
  for (const record of records) {
    const valid: DelegatedPrefix[] = record.prefixes.filter(
      (p) => p.validUntil === undefined || p.validUntil > now,
    );
    if (valid.length === 0) continue;
    const iface = interfaces[record.interface] ?? { exists: false, up: false, addresses: [] };
    interfaces[record.interface] = { ...iface, delegated6: valid };
  }
  return { ...facts, interfaces };
}
