/**
 * The health the kernel follows, which is not always the probes' verdicts: under the last
 * resort (D32) every available provider is down and resolve keeps them all as if up, so
 * their traffic was not moved anywhere. Acting on the raw verdicts then (flushing every
 * uplink's conntrack entries) would cut every connection while routing is unchanged.
 */
import { healthKey, resolve } from '../core/resolve.js';
import type { DesiredState } from '../model/desired-state.js';
import type { Facts, Health } from '../model/kernel-state.js';

/**
 * `health` as resolve applied it against `facts`: a provider kept as if up by the last
 * resort reads `up`. An unavailable provider keeps its verdict: its objects are gone anyway.
 */
export function effectiveHealth(desired: DesiredState, facts: Facts, health: Health): Health {
  const { lastResort, lastResort6, unavailable, unavailable6 } = resolve(desired, facts, health);
  if (!lastResort && !lastResort6) return { ...health };
  // Each family has its own last resort: the IPv6 halves' keys are `<provider>:ipv6` (D183).
  const gone = new Set([
    ...unavailable.map((u) => u.provider),
    ...unavailable6.map((u) => healthKey(u.provider, 'inet6')),
  ]);
  const v6 = new Set(desired.providers.map((p) => healthKey(p.name, 'inet6')));
  const effective: Record<string, 'up' | 'down'> = {};
  for (const [name, verdict] of Object.entries(health)) {
    const kept = v6.has(name) ? lastResort6 : lastResort;
    effective[name] = verdict === 'down' && kept && !gone.has(name) ? 'up' : verdict;
  }
  return effective;
}
