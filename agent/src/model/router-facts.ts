/**
 * What only the router knows and a routing decision depends on, as the agent reports it in
 * `status` (D170): every interface with all its addresses, peers, link state and detected
 * gateway (the facts `resolve` uses), the rules and routes Uplink does not own (table main's
 * connected, DHCP, PPP and VPN routes, any adopted or foreign table — what decides a lookup
 * beside Uplink's own objects), and the sysctls the simulator reads (forwarding, rp_filter,
 * src_valid_mark). With these and the desired state, `uplink explain` and `plan` build the
 * router's routing view offline as the agent's own guard does. Pure.
 */
import { z } from 'zod';
import { contentHash } from './content-hash.js';
import { type Facts, interfaceFacts, kernelRoute, kernelRule } from './kernel-state.js';

export const routerFacts = z
  .object({
    /** In the kernel's (ifindex) order. */
    interfaces: z.record(z.string(), interfaceFacts),
    /** Rules Uplink does not own (the kernel's defaults included). */
    rules: z.array(kernelRule),
    /** Routes Uplink does not own, every table but local (255, derived from the addresses). */
    routes: z.array(kernelRoute),
    sysctls: z.record(z.string(), z.string()),
    /**
     * The SSH connection the question came in on, as the router sees it (`SSH_CONNECTION`):
     * the controller's address and the router's, for the management-path guard offline. The
     * controller's port changes with every connection and is left out, so the hash does not.
     */
    connection: z
      .object({ controller: z.string(), router: z.string(), routerPort: z.number().int() })
      .strict()
      .optional(),
  })
  .strict();
export type RouterFacts = z.infer<typeof routerFacts>;

/** The sysctls every router's facts carry, beside each interface's rp_filter and src_valid_mark. */
export const GLOBAL_FACT_SYSCTLS: readonly string[] = [
  'net.ipv4.ip_forward',
  'net.ipv4.conf.all.rp_filter',
  'net.ipv4.conf.all.src_valid_mark',
];

/** The sysctl keys the facts of these interfaces need. */
export function factSysctlKeys(interfaces: Iterable<string>): string[] {
  const keys = new Set(GLOBAL_FACT_SYSCTLS);
  for (const name of interfaces) {
    if (name === 'lo') continue;
    keys.add(`net.ipv4.conf.${name}.rp_filter`);
    keys.add(`net.ipv4.conf.${name}.src_valid_mark`);
  }
  return [...keys].sort();
}

/** sha256 of the canonical JSON: an unchanged set is recognised without resending it. */
export function routerFactsHash(facts: RouterFacts): string {
  return contentHash(facts);
}

/** The part `resolve` takes. */
export function interfaceFactsOf(facts: RouterFacts): Facts {
  return { interfaces: facts.interfaces };
}

/**
 * Facts as a file: what `uplink-agent show --facts` prints, what the controller keeps per site
 * in its state directory, and what `uplink explain/plan --facts FILE` read. `readAt`: when the
 * agent read them (ms since the epoch); `reportedAt`: when the router last reported them
 * unchanged (the controller's poll), absent when read on the router.
 */
export const factsRecord = z
  .object({
    site: z.string().nullable(),
    hash: z.string(),
    readAt: z.number().int(),
    reportedAt: z.number().int().optional(),
    facts: routerFacts,
  })
  .strict();
export type FactsRecord = z.infer<typeof factsRecord>;
