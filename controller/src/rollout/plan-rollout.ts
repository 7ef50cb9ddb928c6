/**
 * Which sites a commit changes, and in which waves they go. Pure: the caller compiles the
 * fleet and asks the agents (or its cache) what they have applied.
 *
 * Wave membership is assigned over the WHOLE fleet, then filtered to the changed sites, so
 * a site's wave never depends on which other sites a commit happens to touch (a canary is
 * a canary whether or not the commit changes the other sites). Empty waves are dropped.
 *
 * A canary for every change (D122): the fleet's first wave is its canary. When a change
 * touches none of its sites, the first changed sites of the first wave that has any — as
 * many as the canary wave holds over the whole fleet — stand in for it: they go first,
 * alone, with the canary wave's concurrency, failure budget and bake, and the rest follow
 * in their own waves. A change that touches no more sites than that goes as planned.
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
  /** The canary stand-in: the fleet's first wave had no changed site; these come from this wave. */
  readonly standInFrom?: string;
  readonly sites: readonly PlannedSite[];
  readonly concurrency: number;
  readonly maxFailures: number;
  readonly bakeMs: number;
}

/** Why a rollout runs: a new commit, an operator's retry, sites behind the target, a resume after suspension. */
export type RolloutTrigger = 'commit' | 'retry' | 'reconcile' | 'resume';

export interface RolloutPlan {
  readonly commit: string;
  /** Absent in plans persisted by older versions: `commit`. */
  readonly trigger?: RolloutTrigger;
  /** Sites left out because they are suspended (`uplink suspend SITE`), in name order. */
  readonly suspended?: readonly string[];
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
  readonly trigger?: RolloutTrigger;
  /**
   * Plan only these sites (a retry of missed sites, a reconciliation): the others keep what
   * they have, even when it differs from the commit's state. Default: every site that differs.
   */
  readonly only?: ReadonlySet<string>;
  /** Leave these out (suspended sites); they are listed in the plan's `suspended`. */
  readonly exclude?: ReadonlySet<string>;
  /**
   * Never halt: every wave's failure budget is its size (reconciliation, whose target the
   * fleet already runs: one site that keeps failing must not stop the others).
   */
  readonly noFailureBudget?: boolean;
}

/**
 * A site whose applied hash equals the desired one is unchanged, even when the hash comes
 * from the cache of an unreachable agent: there is nothing to send it. Everything else is
 * planned; a pending apply of the same hash is not "applied" (it reverts unless confirmed).
 */
export function planRollout(input: PlanRolloutInput): RolloutPlan {
  const { fleet, desired, reported, commit } = input;
  const { waves } = assignWaves(fleet.sites, fleet.rollout.waves);
  const unchanged: string[] = [];
  const suspended: string[] = [];
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
      if (input.only && !input.only.has(site)) continue;
      if (input.exclude?.has(site)) {
        suspended.push(site);
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
        maxFailures: input.noFailureBudget ? changed.length : wave.maxFailures,
        bakeMs: wave.bakeMs,
      });
    }
  }
  const canary = waves[0];
  return {
    commit,
    ...(input.trigger && input.trigger !== 'commit' ? { trigger: input.trigger } : {}),
    ...(suspended.length > 0 ? { suspended: suspended.sort() } : {}),
    waves: canary
      ? withStandInCanary(planned, canary.wave, canary.sites.length, input.noFailureBudget)
      : planned,
    unchanged: unchanged.sort(),
    rollbackOnFailure: fleet.rollout.rollbackOnFailure,
    confirmWithinMs: fleet.rollout.confirmWithinMs,
    siteTimeoutMs: fleet.rollout.siteTimeoutMs,
  };
}

/**
 * The planned waves with a canary first: unchanged when the canary wave has changed sites
 * (or nothing is planned, or the change is no bigger than the canary); otherwise the first
 * `size` changed sites of the first planned wave become a wave shaped like the canary.
 */
function withStandInCanary(
  planned: readonly PlannedWave[],
  canary: {
    readonly name: string;
    readonly concurrency: number;
    readonly maxFailures: number;
    readonly bakeMs: number;
  },
  size: number,
  noFailureBudget: boolean | undefined,
): PlannedWave[] {
  const first = planned[0];
  const total = planned.reduce((n, w) => n + w.sites.length, 0);
  const take = Math.max(1, size);
  if (first === undefined || first.name === canary.name || total <= take) return [...planned];
  const standIn = first.sites.slice(0, take);
  const rest = first.sites.slice(take);
  const wave: PlannedWave = {
    name: canary.name,
    standInFrom: first.name,
    sites: standIn,
    concurrency: canary.concurrency,
    maxFailures: noFailureBudget ? standIn.length : canary.maxFailures,
    bakeMs: canary.bakeMs,
  };
  const remaining =
    rest.length > 0
      ? [{ ...first, sites: rest, ...(noFailureBudget ? { maxFailures: rest.length } : {}) }]
      : [];
  return [wave, ...remaining, ...planned.slice(1)];
}
