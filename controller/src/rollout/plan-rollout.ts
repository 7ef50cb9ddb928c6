/**
 * Which sites a commit changes, and in which waves they go. Pure: the caller compiles the
 * fleet and asks the agents (or its cache) what they have applied.
 *
 * Wave membership is assigned over the WHOLE fleet, then filtered to the changed sites, so
 * a site's wave never depends on which other sites a commit happens to touch (a canary is
 * a canary whether or not the commit changes the other sites). Empty waves are dropped.
 */
import type { DesiredState } from '#agent/model';
import { UplinkError } from '../errors.js';
import { assignWaves } from '../spec/assign-waves.js';
import type { ValidFleet } from '../spec/valid-site.js';

/** What is known about a site's agent: from a fresh status call, or the controller's cache. */
export interface ReportedSite {
  /** Content hash of the confirmed (applied) desired state, if the agent has one. */
  readonly appliedHash?: string;
  /** Content hash of an apply waiting for confirmation, if any. */
  readonly pendingHash?: string;
  /** Whether the agent answered the last status call. */
  readonly reachable: boolean;
}

/**
 * Why a site is in the plan:
 * - `changed`: the agent has another desired state applied;
 * - `new`: the agent answered and has nothing applied;
 * - `unknown`: there is no report, or the agent did not answer — we cannot tell, so we try.
 */
export type PlannedSiteReason = 'changed' | 'new' | 'unknown';

export interface PlannedSite {
  readonly site: string;
  /** Hash of the desired state to apply. */
  readonly hash: string;
  /** Hash applied before this rollout, when known: what a rollback goes back to. */
  readonly previousHash?: string;
  readonly reason: PlannedSiteReason;
}

export interface PlannedWave {
  readonly name: string;
  readonly sites: readonly PlannedSite[];
  readonly concurrency: number;
  readonly maxFailures: number;
  readonly bakeMs: number;
}

export interface RolloutPlan {
  readonly commit: string;
  readonly waves: readonly PlannedWave[];
  /** Sites whose applied hash already equals the desired one, in name order. */
  readonly unchanged: readonly string[];
  readonly rollbackOnFailure: boolean;
  readonly confirmWithinMs: number;
  readonly siteTimeoutMs: number;
}

export interface PlanRolloutInput {
  readonly fleet: ValidFleet;
  /** Compiled desired state of every site of the fleet. */
  readonly desired: ReadonlyMap<string, DesiredState>;
  readonly reported: ReadonlyMap<string, ReportedSite>;
  readonly commit: string;
}

/**
 * A site whose applied hash equals the desired one is unchanged, even when the hash comes
 * from the cache of an unreachable agent: there is nothing to send it. Everything else is
 * planned; a pending apply of the same hash is not "applied" (it reverts unless confirmed).
 */
export function planRollout({ fleet, desired, reported, commit }: PlanRolloutInput): RolloutPlan {
  const { waves } = assignWaves(fleet.sites, fleet.rollout.waves);
  const unchanged: string[] = [];
  const planned: PlannedWave[] = [];
  for (const { wave, sites } of waves) {
    const changed: PlannedSite[] = [];
    for (const site of sites) {
      const state = desired.get(site);
      if (!state) throw new UplinkError('internal', `site ${site}: no compiled desired state to plan with`);
      const report = reported.get(site);
      if (report?.appliedHash === state.hash) {
        unchanged.push(site);
        continue;
      }
      const reason: PlannedSiteReason =
        report === undefined || !report.reachable
          ? 'unknown'
          : report.appliedHash === undefined
            ? 'new'
            : 'changed';
      changed.push({
        site,
        hash: state.hash,
        ...(report?.appliedHash !== undefined ? { previousHash: report.appliedHash } : {}),
        reason,
      });
    }
    if (changed.length > 0) {
      planned.push({
        name: wave.name,
        sites: changed,
        concurrency: wave.concurrency,
        maxFailures: wave.maxFailures,
        bakeMs: wave.bakeMs,
      });
    }
  }
  return {
    commit,
    waves: planned,
    unchanged: unchanged.sort(),
    rollbackOnFailure: fleet.rollout.rollbackOnFailure,
    confirmWithinMs: fleet.rollout.confirmWithinMs,
    siteTimeoutMs: fleet.rollout.siteTimeoutMs,
  };
}
