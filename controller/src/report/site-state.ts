/**
 * One site's state, in one vocabulary, computed in one place: `uplink status`, `/api/status`,
 * the status page and the metrics all show what this returns (D124). Every condition that
 * holds is listed; the state is the first of them in precedence order:
 *
 *   unknown      nothing is known yet (no status answer, nothing recorded)
 *   unreachable  the last status call failed (or the last apply found no one)
 *   failed       the last attempt to apply the target state failed (refused, not confirmed
 *                and reverted, failed, unhealthy after the bake) and the site does not run it;
 *                a later success clears it
 *   drifted      the kernel differs from the confirmed state (the agent's drift items)
 *   degraded     a provider is down, unavailable (its interface is missing or down, it has
 *                no address or no gateway yet), or its probes cannot run
 *   overridden   the site runs a break-glass apply, not the target state
 *   out-of-date  the site runs another state than the target, and nothing is applying it
 *   rolling-out  a rollout (or reconciliation) is applying the target state to it
 *   in-sync      it runs the target state, confirmed, with none of the above
 *
 * Pure.
 */
import type { StatusResult } from '#agent/model';
import { describeGeneration, shortGeneration } from './generation.js';
import { isoTime } from './iso-time.js';

export type SiteState =
  | 'unknown'
  | 'unreachable'
  | 'failed'
  | 'drifted'
  | 'degraded'
  | 'overridden'
  | 'out-of-date'
  | 'rolling-out'
  | 'in-sync';

/** Every state, in precedence order (the first that holds is the site's state). */
export const SITE_STATES: readonly SiteState[] = [
  'unknown',
  'unreachable',
  'failed',
  'drifted',
  'degraded',
  'overridden',
  'out-of-date',
  'rolling-out',
  'in-sync',
];

export interface SiteCondition {
  readonly state: SiteState;
  /** Subject first, what is wrong, since when. */
  readonly message: string;
}

/** What the controller knows of one site, from wherever it knows it. */
export interface SiteFacts {
  /** Content hash of the target state (the commit in force), when one is known. */
  readonly desiredHash: string | undefined;
  /** The last status answer (or failed call). */
  readonly report:
    | {
        readonly at: number;
        readonly reachable: boolean;
        readonly error?: string;
        /** The agent's wire error code when it answered the status call with an error. */
        readonly agentError?: string;
        readonly status?: StatusResult;
      }
    | undefined;
  /** The controller's last attempt and last success on the site. */
  readonly lastAttempted:
    | { readonly hash: string; readonly outcome: string; readonly at: number; readonly error?: string }
    | undefined;
  /** The controller's last success; newer than the report, it is what the site runs. */
  readonly lastApplied:
    | { readonly hash: string; readonly generation: string; readonly at?: number }
    | undefined;
  /** The site's progress in the rollout now running (undefined: not in it, or none runs). */
  readonly rollout: 'pending' | 'applying' | 'confirmed' | string | undefined;
}

export interface AssessedSiteState {
  readonly state: SiteState;
  /** Every condition that holds, in precedence order (in-sync alone when nothing else). */
  readonly conditions: readonly SiteCondition[];
}

const FAILED_OUTCOMES = new Set(['refused', 'unconfirmed', 'failed', 'unhealthy']);

export function assessSiteState(facts: SiteFacts): AssessedSiteState {
  const { desiredHash, report, lastAttempted: attempt } = facts;
  const status = report?.status;
  const conditions: SiteCondition[] = [];
  const add = (state: SiteState, message: string) => conditions.push({ state, message });
  const last = facts.lastApplied;
  const newer = last !== undefined && last.at !== undefined && (report === undefined || last.at > report.at);
  const appliedHash = newer ? last.hash : (status?.applied?.hash ?? last?.hash);
  const appliedGeneration = newer ? last.generation : (status?.applied?.generation ?? last?.generation);
  const runsTarget = desiredHash !== undefined && appliedHash === desiredHash;
  const pendingTarget = desiredHash !== undefined && status?.pending?.hash === desiredHash;

  if (report === undefined && appliedHash === undefined && attempt === undefined)
    add('unknown', 'no status answer yet');
  if (report !== undefined && !report.reachable) {
    // An agent that answered with an error is there; something on the router is wrong (D103).
    if (report.agentError !== undefined)
      add(
        'failed',
        `the agent answered status with ${report.agentError} at ${isoTime(report.at)}: ${report.error ?? ''}`,
      );
    else add('unreachable', `status call failed at ${isoTime(report.at)}: ${report.error ?? 'no answer'}`);
  } else if (
    attempt?.outcome === 'unreachable' &&
    attempt.hash === desiredHash &&
    !runsTarget &&
    (report === undefined || report.at < attempt.at)
  )
    add('unreachable', `apply found no one at ${isoTime(attempt.at)}: ${attempt.error ?? 'unreachable'}`);

  if (
    attempt !== undefined &&
    attempt.hash === desiredHash &&
    FAILED_OUTCOMES.has(attempt.outcome) &&
    !runsTarget &&
    !pendingTarget
  )
    add('failed', `${attempt.outcome} at ${isoTime(attempt.at)}${attempt.error ? `: ${attempt.error}` : ''}`);

  // Faults of the router's environment (D103): a vanished interface degrades one uplink; a full
  // or read-only state directory or a missing tool keeps the agent from applying anything.
  for (const fault of status?.faults ?? []) {
    add(
      fault.kind === 'interface-missing' ? 'degraded' : 'failed',
      `fault ${fault.kind} (${fault.subject}) since ${isoTime(fault.since)}: ${fault.message}`,
    );
  }

  const drift = status?.drift;
  if (drift && drift.items.length > 0)
    add(
      'drifted',
      `${drift.items.length} owned object(s) differ from the confirmed state (drift policy ${drift.policy}), first seen ${isoTime(Math.min(...drift.items.map((i) => i.firstSeen)))}`,
    );

  for (const h of status?.health ?? []) {
    if (h.state === 'down') {
      const last = h.transitions.at(-1);
      add(
        'degraded',
        `provider ${h.name} down${h.since !== null ? ` since ${isoTime(h.since)}` : ''}${last && last.to === 'down' ? `: ${last.reason}` : ''}`,
      );
    } else if (h.probeError !== undefined)
      add('degraded', `provider ${h.name}: probes cannot run: ${h.probeError}`);
  }
  // An uplink the router cannot use at all (an LTE modem not plugged in, a PPP link not up).
  for (const p of status?.facts.providers ?? []) {
    if (!p.available)
      add('degraded', `provider ${p.name} unavailable: ${p.reason ?? `interface ${p.interface}`}`);
    // A delegated prefix the agent will not route (D155): hosts numbered from it are off its uplink.
    for (const refused of p.refused ?? []) add('degraded', `provider ${p.name}: ${refused}; not routed`);
  }

  const override = appliedGeneration !== undefined ? describeGeneration(appliedGeneration).override : null;
  if (override && !runsTarget)
    add(
      'overridden',
      `manual override by ${override.by}: ${override.reason} (${shortGeneration(appliedGeneration!)})`,
    );

  const applying =
    pendingTarget || (!runsTarget && (facts.rollout === 'pending' || facts.rollout === 'applying'));
  const failed = conditions.some((c) => c.state === 'failed' || c.state === 'unknown');
  if (desiredHash !== undefined && !runsTarget && !applying && !override && !failed) {
    add(
      'out-of-date',
      appliedGeneration === undefined
        ? 'nothing applied; the target state is not rolled out here'
        : `runs ${shortGeneration(appliedGeneration)}, not the target state (${desiredHash.slice(0, 12)})`,
    );
  }
  if (applying)
    add(
      'rolling-out',
      pendingTarget
        ? `the target state awaits confirmation until ${isoTime(status!.pending!.deadline)}`
        : facts.rollout === 'applying'
          ? 'the target state is being applied'
          : 'waiting for its wave',
    );
  if (conditions.length === 0) {
    if (runsTarget) add('in-sync', 'runs the target state, confirmed');
    else add('unknown', 'no target state known');
  }
  conditions.sort((a, b) => SITE_STATES.indexOf(a.state) - SITE_STATES.indexOf(b.state));
  return { state: conditions[0]!.state, conditions };
}
