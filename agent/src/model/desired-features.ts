/**
 * Which protocol revision a desired state needs (D91): a feature added to the desired state
 * after revision 1 is one an older agent's strict schema refuses, so the controller checks the
 * revision the router's agent negotiated in `hello` before it sends the state, and says which
 * feature needs an upgrade instead of letting the agent refuse a field it does not know.
 */
import type { DesiredState } from './desired-state.js';

export interface DesiredFeature {
  readonly name: string;
  /** The first revision whose agents accept it. */
  readonly revision: number;
  readonly usedBy: (state: DesiredState) => boolean;
}

/** Every desired-state feature newer than revision 1, oldest first. */
export const DESIRED_FEATURES: readonly DesiredFeature[] = [
  {
    // IPv6 rules, routes and nft rules and providers' ipv6 halves (D180): an agent before
    // revision 4 would refuse them, or worse, apply the IPv4 half only.
    name: 'IPv6 (dual-stack providers)',
    revision: 4,
    usedBy: (state) =>
      state.providers.some((p) => p.ipv6 !== undefined) ||
      state.rules.some((r) => r.family !== undefined) ||
      state.routes.some((r) => r.family !== undefined) ||
      state.nft.some((r) => r.kind === 'npt' || ('family' in r && r.family !== undefined)),
  },
];

/** The lowest revision that accepts `state`, and the features that need it. */
export function requiredRevision(state: DesiredState): { revision: number; features: string[] } {
  const used = DESIRED_FEATURES.filter((f) => f.usedBy(state));
  const revision = Math.max(1, ...used.map((f) => f.revision));
  return { revision, features: used.filter((f) => f.revision === revision).map((f) => f.name) };
}
