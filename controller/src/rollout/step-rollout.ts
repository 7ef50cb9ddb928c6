/**
 * The rollout state machine: a pure reducer. The shell feeds it what happened (a site's
 * outcome, the bake clock, a new commit) and performs the actions it returns; time comes in
 * as numbers on the events. State is plain JSON so it can be persisted as is.
 *
 * Rules (DESIGN.md "Rollout", issue 5):
 * - waves run in plan order; within a wave at most `concurrency` sites are in flight, and
 *   the reducer itself fills the slots, so once a wave halts no further site starts;
 * - a site counts as failed when its apply failed or was refused, when it was not confirmed
 *   (the agent reverts by itself), when it was unreachable, or when it reported unhealthy;
 * - more failures than the wave's `maxFailures` halt the rollout at once: nothing more
 *   starts, later waves stay untouched, and with `rollbackOnFailure` every site this rollout
 *   has put on the new state is rolled back (including sites still in flight, when they land);
 * - a wave passes when every site has settled within the budget and the bake has elapsed
 *   (a site that turns unhealthy during the bake counts against the budget);
 * - a newer commit supersedes the rollout at the next wave boundary, never mid-wave;
 * - `uplink suspend` stops it at the next wave boundary too (phase `suspended`): the sites
 *   in flight finish, nothing more starts; after `uplink resume` a new rollout of the same
 *   commit plans the sites still behind (D126).
 */
import type { PlannedSite, PlannedWave, RolloutPlan } from './plan-rollout.js';

export type SiteStatus =
  | 'pending'
  | 'applying'
  | 'confirmed'
  | 'failed'
  | 'unreachable'
  | 'reverted'
  | 'rolled-back';

/** Why a site failed; `unconfirmed` leaves it `reverted`, `unreachable` leaves it `unreachable`. */
export type SiteFailureKind = 'failed' | 'refused' | 'unconfirmed' | 'unreachable' | 'unhealthy';

export interface SiteProgress {
  readonly site: string;
  readonly status: SiteStatus;
  /** Applies started for this site in this rollout. */
  readonly attempts: number;
  readonly failure?: SiteFailureKind;
  readonly error?: string;
  /** A rollback of this site has been asked for and has not reported back yet. */
  readonly rollingBack?: boolean;
}

export type RolloutPhase = 'running' | 'baking' | 'halted' | 'done' | 'superseded' | 'suspended';

export interface RolloutHalt {
  readonly wave: string;
  readonly reason: string;
  readonly failed: readonly string[];
}

export interface RolloutState {
  readonly plan: RolloutPlan;
  readonly waveIndex: number;
  /**
   * One entry per planned site, in plan order (waves flattened). An array, not a record:
   * every event copies it, and copying a 1,000-entry array is ~10× cheaper than an object.
   */
  readonly perSite: readonly SiteProgress[];
  readonly phase: RolloutPhase;
  /** Set once the shell has started the bake clock of the current wave (phase `baking`). */
  readonly bakeUntil?: number;
  /** The newest commit seen during the rollout; it takes over at the next wave boundary. */
  readonly supersededBy?: string;
  /** Suspension was asked for: the rollout stops at the next wave boundary. */
  readonly suspending?: boolean;
  readonly halt?: RolloutHalt;
}

export type RolloutEvent =
  /** The apply was confirmed (or nothing needed to change); `healthy` is the agent's verdict after it. */
  | {
      readonly type: 'siteSucceeded';
      readonly site: string;
      readonly healthy: boolean;
      readonly error?: string;
    }
  | {
      readonly type: 'siteFailed';
      readonly site: string;
      readonly kind: Exclude<SiteFailureKind, 'unhealthy'>;
      readonly error?: string;
    }
  /** A confirmed site of the current wave turned unhealthy (e.g. during the bake); others are ignored. */
  | { readonly type: 'siteUnhealthy'; readonly site: string; readonly error?: string }
  /** The shell started the bake clock it was asked for. */
  | { readonly type: 'bakeStarted'; readonly now: number }
  | { readonly type: 'tick'; readonly now: number }
  | { readonly type: 'newCommit'; readonly commit: string }
  /** Rollouts are suspended (or resumed before the boundary was reached). */
  | { readonly type: 'suspend' }
  | { readonly type: 'resume' }
  | { readonly type: 'siteRolledBack'; readonly site: string; readonly ok: boolean; readonly error?: string };

export type RolloutAction =
  /** Apply the plan's desired state to these sites (they are now `applying`). */
  | { readonly type: 'start'; readonly wave: string; readonly sites: readonly PlannedSite[] }
  /** Only confirm: the agent holds a pending apply of the plan's hash (after a controller restart). */
  | { readonly type: 'confirm'; readonly wave: string; readonly sites: readonly PlannedSite[] }
  /** Start the bake clock and answer with `bakeStarted`; keep sending `tick`s. */
  | { readonly type: 'startBake'; readonly wave: string; readonly bakeMs: number }
  | { readonly type: 'wavePassed'; readonly wave: string }
  | { readonly type: 'halt'; readonly halt: RolloutHalt }
  /** Put these sites back on their previous state (`previousHash`); answer with `siteRolledBack`. */
  | { readonly type: 'rollback'; readonly sites: readonly PlannedSite[] }
  | { readonly type: 'done' }
  | { readonly type: 'superseded'; readonly by: string }
  /** Stopped at a wave boundary because rollouts are suspended. */
  | { readonly type: 'suspended' }
  /** The event did not fit the state (a late or repeated report); log it. */
  | { readonly type: 'ignored'; readonly reason: string };

export interface RolloutStep {
  readonly state: RolloutState;
  readonly actions: readonly RolloutAction[];
}

const FAILED: ReadonlySet<SiteStatus> = new Set(['failed', 'unreachable', 'reverted']);
const TERMINAL: ReadonlySet<RolloutPhase> = new Set(['halted', 'done', 'superseded', 'suspended']);

export function isTerminal(state: RolloutState): boolean {
  return TERMINAL.has(state.phase);
}

/** No apply and no rollback in flight: the shell may stop driving this rollout. */
export function isSettled(state: RolloutState): boolean {
  return isTerminal(state) && state.perSite.every((p) => p.status !== 'applying' && !p.rollingBack);
}

/** The first state of a plan's rollout, and the actions that start its first wave. */
export function startRollout(plan: RolloutPlan): RolloutStep {
  const perSite: SiteProgress[] = indexPlan(plan).sites.map((s) => ({
    site: s.site,
    status: 'pending',
    attempts: 0,
  }));
  const actions: RolloutAction[] = [];
  const state = advance({ plan, waveIndex: 0, perSite, phase: 'running' }, actions);
  return { state, actions };
}

/**
 * The actions that continue a rollout from a loaded state, without any event: fill free
 * slots, ask again for a bake clock that was never started, repeat unfinished rollbacks.
 * Sites still marked `applying` are taken as in flight; reconcile them with what the agents
 * report first (mergeReportedIntoRollout, resume-rollout.ts).
 */
export function continueRollout(state: RolloutState): RolloutStep {
  const actions: RolloutAction[] = [];
  if (state.phase === 'baking' && state.bakeUntil === undefined) {
    const wave = currentWave(state)!;
    actions.push({ type: 'startBake', wave: wave.name, bakeMs: wave.bakeMs });
    return { state, actions };
  }
  const sites = indexPlan(state.plan).sites;
  const rollingBack = sites.filter((_, i) => state.perSite[i]?.rollingBack);
  if (rollingBack.length > 0) actions.push({ type: 'rollback', sites: rollingBack });
  return { state: advance(state, actions), actions };
}

export function stepRollout(state: RolloutState, event: RolloutEvent): RolloutStep {
  const actions: RolloutAction[] = [];
  const ignore = (reason: string): RolloutStep => ({ state, actions: [{ type: 'ignored', reason }] });
  switch (event.type) {
    case 'siteSucceeded':
    case 'siteFailed': {
      const progress = siteProgress(state, event.site);
      if (progress?.status !== 'applying') {
        return ignore(
          `site ${event.site}: ${event.type} but it is ${progress?.status ?? 'not in this rollout'}`,
        );
      }
      let next: SiteProgress;
      if (event.type === 'siteSucceeded') {
        next = event.healthy
          ? withoutFailure({ ...progress, status: 'confirmed' })
          : failedProgress(progress, 'unhealthy', event.error ?? 'unhealthy after apply');
      } else {
        next = failedProgress(progress, event.kind, event.error);
      }
      // A site that lands on the new state after a halt goes back too.
      if (state.phase === 'halted' && state.plan.rollbackOnFailure && needsRollback(next)) {
        next = { ...next, rollingBack: true };
        actions.push({ type: 'rollback', sites: [plannedSite(state, event.site)] });
      }
      return { state: advance(setSites(state, [next]), actions), actions };
    }
    case 'siteUnhealthy': {
      const progress = siteProgress(state, event.site);
      const inWave = currentWave(state)?.sites.some((s) => s.site === event.site) ?? false;
      if (progress?.status !== 'confirmed' || isTerminal(state) || !inWave) {
        return ignore(
          `site ${event.site}: unhealthy report while it is ${progress?.status ?? 'not in this rollout'}`,
        );
      }
      const s = setSites(state, [failedProgress(progress, 'unhealthy', event.error ?? 'unhealthy')]);
      return { state: advance(s, actions), actions };
    }
    case 'bakeStarted': {
      if (state.phase !== 'baking' || state.bakeUntil !== undefined) {
        return ignore(
          `bakeStarted while ${state.phase}${state.bakeUntil !== undefined ? ' (already started)' : ''}`,
        );
      }
      const wave = currentWave(state)!;
      const s: RolloutState = { ...state, bakeUntil: event.now + wave.bakeMs };
      return { state: advance(s, actions), actions };
    }
    case 'tick': {
      if (state.phase !== 'baking' || state.bakeUntil === undefined || event.now < state.bakeUntil) {
        return { state, actions };
      }
      return { state: passWave(state, actions), actions };
    }
    case 'newCommit': {
      if (event.commit === state.plan.commit) return ignore(`commit ${event.commit} is this rollout's`);
      if (isTerminal(state)) return ignore(`commit ${event.commit}: the rollout is already ${state.phase}`);
      return { state: { ...state, supersededBy: event.commit }, actions };
    }
    case 'suspend': {
      if (isTerminal(state)) return ignore(`suspend: the rollout is already ${state.phase}`);
      return { state: { ...state, suspending: true }, actions };
    }
    case 'resume': {
      if (!state.suspending) return { state, actions };
      const { suspending: _, ...rest } = state;
      return { state: rest, actions };
    }
    case 'siteRolledBack': {
      const progress = siteProgress(state, event.site);
      if (!progress?.rollingBack) return ignore(`site ${event.site}: rollback result but none was asked for`);
      const { rollingBack: _, ...rest } = progress;
      const next: SiteProgress = event.ok
        ? withoutFailure({ ...rest, status: 'rolled-back' })
        : { ...rest, error: `rollback failed: ${event.error ?? 'unknown error'}` };
      return { state: setSites(state, [next]), actions };
    }
  }
}

/** Drive the current wave as far as it goes without an event from outside. */
function advance(state: RolloutState, actions: RolloutAction[]): RolloutState {
  if (state.phase !== 'running' && state.phase !== 'baking') return state;
  const wave = currentWave(state);
  if (!wave) {
    actions.push({ type: 'done' });
    return { ...state, phase: 'done' };
  }
  // One pass, no copies: this runs on every event of a rollout over the whole wave.
  const start = indexPlan(state.plan).waveStart[state.waveIndex]!;
  const failed: string[] = [];
  const pending: number[] = [];
  let inFlight = 0;
  for (let i = start; i < start + wave.sites.length; i++) {
    const { site, status } = state.perSite[i]!;
    if (FAILED.has(status)) failed.push(site);
    else if (status === 'applying') inFlight++;
    else if (status === 'pending') pending.push(i);
  }
  if (failed.length > wave.maxFailures) return haltRollout(state, wave, failed, actions);
  if (state.phase === 'baking') return state;

  if (pending.length === 0 && inFlight === 0) {
    if (wave.bakeMs > 0) {
      actions.push({ type: 'startBake', wave: wave.name, bakeMs: wave.bakeMs });
      const { bakeUntil: _, ...rest } = state;
      return { ...rest, phase: 'baking' };
    }
    return passWave(state, actions);
  }
  const starting = pending.slice(0, Math.max(0, wave.concurrency - inFlight));
  if (starting.length === 0) return state;
  const updates = starting.map((i): SiteProgress => {
    const p = state.perSite[i]!;
    return { ...withoutFailure(p), status: 'applying', attempts: p.attempts + 1 };
  });
  actions.push({ type: 'start', wave: wave.name, sites: starting.map((i) => wave.sites[i - start]!) });
  return setSites(state, updates);
}

function passWave(state: RolloutState, actions: RolloutAction[]): RolloutState {
  const wave = currentWave(state)!;
  actions.push({ type: 'wavePassed', wave: wave.name });
  const { bakeUntil: _, ...rest } = state;
  const next: RolloutState = { ...rest, phase: 'running', waveIndex: state.waveIndex + 1 };
  const more = next.waveIndex < state.plan.waves.length;
  if (more && state.supersededBy !== undefined) {
    actions.push({ type: 'superseded', by: state.supersededBy });
    return { ...next, phase: 'superseded' };
  }
  if (more && state.suspending) {
    actions.push({ type: 'suspended' });
    return { ...next, phase: 'suspended' };
  }
  return advance(next, actions);
}

function haltRollout(
  state: RolloutState,
  wave: PlannedWave,
  failed: string[],
  actions: RolloutAction[],
): RolloutState {
  const halt: RolloutHalt = {
    wave: wave.name,
    reason: `wave ${wave.name}: ${failed.length} site(s) failed, more than its failure budget of ${wave.maxFailures}`,
    failed,
  };
  actions.push({ type: 'halt', halt });
  const { bakeUntil: _, ...rest } = state;
  let s: RolloutState = { ...rest, phase: 'halted', halt };
  if (s.plan.rollbackOnFailure) {
    const sites = indexPlan(s.plan).sites;
    const back = sites.filter((_, i) => needsRollback(s.perSite[i]!));
    s = setSites(
      s,
      back.map((p) => ({ ...siteProgress(s, p.site)!, rollingBack: true })),
    );
    if (back.length > 0) actions.push({ type: 'rollback', sites: back });
  }
  return s;
}

/** A site this rollout has put on the new desired state. */
function needsRollback(p: SiteProgress): boolean {
  return !p.rollingBack && (p.status === 'confirmed' || (p.status === 'failed' && p.failure === 'unhealthy'));
}

function failedProgress(p: SiteProgress, kind: SiteFailureKind, error: string | undefined): SiteProgress {
  const status: SiteStatus =
    kind === 'unreachable' ? 'unreachable' : kind === 'unconfirmed' ? 'reverted' : 'failed';
  return { ...withoutFailure(p), status, failure: kind, ...(error !== undefined ? { error } : {}) };
}

function withoutFailure(p: SiteProgress): SiteProgress {
  const { failure: _f, error: _e, ...rest } = p;
  return rest;
}

function setSites(state: RolloutState, updates: readonly SiteProgress[]): RolloutState {
  if (updates.length === 0) return state;
  const { position } = indexPlan(state.plan);
  const perSite = state.perSite.slice();
  for (const p of updates) perSite[position.get(p.site)!] = p;
  return { ...state, perSite };
}

function currentWave(state: RolloutState): PlannedWave | undefined {
  return state.plan.waves[state.waveIndex];
}

function plannedSite(state: RolloutState, site: string): PlannedSite {
  const index = indexPlan(state.plan);
  return index.sites[index.position.get(site)!]!;
}

/** A site's progress, by name; undefined when the site is not in this rollout. */
export function siteProgress(state: RolloutState, site: string): SiteProgress | undefined {
  const i = indexPlan(state.plan).position.get(site);
  return i === undefined ? undefined : state.perSite[i];
}

interface PlanIndex {
  /** Planned sites in plan order: `perSite[i]` is the progress of `sites[i]`. */
  readonly sites: readonly PlannedSite[];
  readonly position: ReadonlyMap<string, number>;
  /** Index in `sites` of each wave's first site. */
  readonly waveStart: readonly number[];
}

// Plans are immutable and shared by every state of a rollout: index each one once.
const planIndexes = new WeakMap<RolloutPlan, PlanIndex>();

export function indexPlan(plan: RolloutPlan): PlanIndex {
  let index = planIndexes.get(plan);
  if (!index) {
    const sites = plan.waves.flatMap((w) => w.sites);
    const waveStart: number[] = [];
    let at = 0;
    for (const w of plan.waves) {
      waveStart.push(at);
      at += w.sites.length;
    }
    index = { sites, position: new Map(sites.map((s, i) => [s.site, i])), waveStart };
    planIndexes.set(plan, index);
  }
  return index;
}
