/**
 * The rollout executor: drives the pure state machine (rollout/step-rollout.ts) with a
 * SiteTransport. It performs the actions the reducer returns — apply a wave's sites, start
 * and check the bake, roll back — and feeds back what happened as events. Every state is
 * handed to `onState` (the daemon persists it there) before its actions run.
 *
 * Bake: after a wave's sites confirmed, the executor waits the wave's bake time, asks each
 * confirmed site for its status again, and reports a site unhealthy when it no longer runs
 * the rollout's state, reverted it, or has a provider down that was up before the apply.
 * With no bake the confirm is the verdict (no extra connection).
 *
 * Site timeout: a site with no outcome within `siteTimeoutMs` counts as unreachable, and its
 * apply is aborted: no confirm is sent after that, so an apply that lands late stays pending
 * and the agent reverts it at its deadline (a halted rollout never leaves a site on its
 * state by a late confirm). `done` settles only once every call this run started has
 * settled, so the next rollout never overlaps this one's applies.
 */
import type { DesiredState } from '#agent/model';
import {
  continueRollout,
  isSettled,
  type PlannedSite,
  type RolloutAction,
  type RolloutEvent,
  type RolloutPlan,
  type RolloutState,
  resumeRollout,
  siteProgress,
  startRollout,
  stepRollout,
} from '../rollout/index.js';
import type { ValidSite } from '../spec/valid-site.js';
import type { ApplyOutcome } from '../transport/index.js';
import { mapWithConcurrency } from '../transport/pool.js';
import {
  generationFor,
  healthOf,
  type ProviderHealthBrief,
  type SiteReport,
  toReportedSite,
  unhealthyReason,
} from './site-report.js';
import type { SiteTransport } from './site-transport.js';

/** The subset of a pino logger the executor writes to. */
export interface RunLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

/** Something that happened, for status pages, metrics and progress displays. */
export type RunNotice =
  | { readonly type: 'action'; readonly action: RolloutAction }
  | {
      readonly type: 'siteOutcome';
      readonly site: string;
      readonly wave: string;
      readonly generation: string;
      readonly outcome: ApplyOutcome['outcome'] | 'timeout';
      readonly durationMs: number;
      readonly error?: string;
    }
  | { readonly type: 'unhealthy'; readonly site: string; readonly wave: string; readonly reason: string }
  | {
      readonly type: 'rolledBack';
      readonly site: string;
      readonly ok: boolean;
      readonly error?: string;
      /** When ok: the generation and content hash the site was put back on. */
      readonly generation?: string;
      readonly hash?: string;
    };

export interface RunRolloutOptions {
  /** The sites of the commit being rolled out, by name. */
  readonly sites: ReadonlyMap<string, ValidSite>;
  /** Compiled desired state of every planned site. */
  readonly desired: ReadonlyMap<string, DesiredState>;
  readonly transport: SiteTransport;
  /** Reports from before the rollout: the baseline for the post-bake health check. */
  readonly reports: ReadonlyMap<string, SiteReport>;
  /**
   * Provider health before the apply, per site, when it is known from elsewhere (a resumed
   * rollout: the persisted baseline, rollout-baseline.ts); wins over `reports` for the bake check.
   */
  readonly healthBefore?: ReadonlyMap<string, readonly ProviderHealthBrief[]>;
  readonly log: RunLog;
  readonly now?: () => number;
  /** Timer for the bake and site timeouts; default setTimeout. */
  readonly setTimer?: (ms: number, run: () => void) => { cancel(): void };
  /** Every new state, before its actions run (persist it here). */
  readonly onState?: (state: RolloutState) => void;
  readonly onNotice?: (notice: RunNotice) => void;
  /** The previous desired state of a site, for `rollbackOnFailure` (undefined: cannot roll back). */
  readonly previousDesired?: (site: string, previousHash: string) => Promise<DesiredState | undefined>;
  /** Status calls at once during the post-bake check. Default 32. */
  readonly concurrency?: number;
}

export interface RolloutRun {
  /** Settles with the final state once nothing is in flight any more. */
  readonly done: Promise<RolloutState>;
  /** The state now. */
  readonly state: () => RolloutState;
  /** A newer commit: it supersedes the rollout at the next wave boundary. */
  newCommit(commit: string): void;
  /** Rollouts are suspended: stop at the next wave boundary (phase `suspended`). */
  suspend(): void;
  /** Suspension lifted before the boundary was reached: go on. */
  resume(): void;
}

/** Start a rollout of `plan`. */
export function runRollout(plan: RolloutPlan, options: RunRolloutOptions): RolloutRun {
  return drive(startRollout(plan), options);
}

/**
 * Continue a persisted rollout after a restart: `reports` are fresh status answers of its
 * sites; what they say wins over the persisted state (resume-rollout.ts).
 */
export function resumeRolloutRun(state: RolloutState, options: RunRolloutOptions): RolloutRun {
  const reported = new Map([...options.reports].map(([site, r]) => [site, toReportedSite(r)!] as const));
  return drive(resumeRollout(state, reported), options);
}

/** Continue a state as is (no reports to merge), e.g. one loaded right after it was written. */
export function continueRolloutRun(state: RolloutState, options: RunRolloutOptions): RolloutRun {
  return drive(continueRollout(state), options);
}

type Timer = NonNullable<RunRolloutOptions['setTimer']>;

/**
 * One run in progress: its state, the reducer's dispatch, and the bookkeeping of calls in
 * flight. The functions below perform one kind of action each.
 */
interface Drive {
  readonly options: RunRolloutOptions;
  readonly log: RunLog;
  readonly transport: SiteTransport;
  readonly commit: string;
  readonly now: () => number;
  readonly setTimer: Timer;
  state: RolloutState;
  /** Feed an event to the reducer, persist the new state, perform its actions. */
  dispatch(event: RolloutEvent): void;
  /** Count `work` as in flight until it has settled (and its handlers ran). */
  track(work: Promise<unknown>): void;
  notice(n: RunNotice): void;
}

function drive(
  first: { state: RolloutState; actions: readonly RolloutAction[] },
  options: RunRolloutOptions,
): RolloutRun {
  let finish!: (s: RolloutState) => void;
  const done = new Promise<RolloutState>((resolve) => {
    finish = resolve;
  });
  let finished = false;
  /** Transport calls started by this run and not settled yet (late ones included). */
  let inFlight = 0;
  const settleCheck = () => {
    if (!finished && inFlight === 0 && isSettled(d.state)) {
      finished = true;
      finish(d.state);
    }
  };
  const d: Drive = {
    options,
    log: options.log,
    transport: options.transport,
    commit: first.state.plan.commit,
    now: options.now ?? Date.now,
    setTimer:
      options.setTimer ??
      ((ms, run) => {
        const t = setTimeout(run, ms);
        return { cancel: () => clearTimeout(t) };
      }),
    state: first.state,
    dispatch(event) {
      if (finished) return;
      const step = stepRollout(d.state, event);
      d.state = step.state;
      options.onState?.(d.state);
      perform(d, step.actions);
      settleCheck();
    },
    track(work) {
      inFlight++;
      void work
        .catch(() => {})
        .finally(() => {
          inFlight--;
          settleCheck();
        });
    },
    notice: (n) => options.onNotice?.(n),
  };

  options.onState?.(d.state);
  queueMicrotask(() => {
    perform(d, first.actions);
    settleCheck();
    // A resumed rollout whose bake clock was already running: finish that bake.
    const wave = d.state.plan.waves[d.state.waveIndex];
    if (d.state.phase === 'baking' && d.state.bakeUntil !== undefined && wave)
      scheduleBakeEnd(d, wave.name, d.state.bakeUntil);
  });
  return {
    done,
    state: () => d.state,
    newCommit: (c) => d.dispatch({ type: 'newCommit', commit: c }),
    suspend: () => d.dispatch({ type: 'suspend' }),
    resume: () => d.dispatch({ type: 'resume' }),
  };
}

/** Perform the reducer's actions, in order. */
function perform(d: Drive, actions: readonly RolloutAction[]): void {
  const { log, commit } = d;
  for (const action of actions) {
    d.notice({ type: 'action', action });
    switch (action.type) {
      case 'start':
        log.info({ wave: action.wave, commit, sites: action.sites.map((s) => s.site) }, 'applying');
        for (const s of action.sites) applySite(d, s, action.wave);
        break;
      case 'confirm':
        for (const s of action.sites) confirmSite(d, s, action.wave);
        break;
      case 'startBake': {
        log.info({ wave: action.wave, commit, bakeMs: action.bakeMs }, 'baking');
        const wave = action.wave;
        queueMicrotask(() => {
          d.dispatch({ type: 'bakeStarted', now: d.now() });
          scheduleBakeEnd(d, wave, d.state.bakeUntil ?? d.now());
        });
        break;
      }
      case 'wavePassed':
        log.info({ wave: action.wave, commit }, 'wave passed');
        break;
      case 'halt':
        log.error(
          { wave: action.halt.wave, commit, failed: action.halt.failed },
          `rollout halted: ${action.halt.reason}`,
        );
        break;
      case 'rollback':
        for (const s of action.sites) rollbackSite(d, s);
        break;
      case 'done':
        log.info({ commit }, 'rollout done');
        break;
      case 'superseded':
        log.info({ commit, by: action.by }, 'rollout superseded by a newer commit');
        break;
      case 'suspended':
        log.warn({ commit }, 'rollout stopped at a wave boundary: rollouts are suspended');
        break;
      case 'ignored':
        log.warn({ commit }, `ignored: ${action.reason}`);
        break;
    }
  }
}

/** A site the compiled fleet does not have: fail it (on the next tick, outside the reducer's step). */
function failMissing(d: Drive, site: string): void {
  queueMicrotask(() =>
    d.dispatch({ type: 'siteFailed', site, kind: 'failed', error: 'not in the compiled fleet' }),
  );
}

/**
 * Apply and confirm one site, racing the site timeout: without an outcome by then the site
 * counts as unreachable and the apply is aborted (no confirm after that; a late apply is
 * reverted by the agent at its deadline).
 */
function applySite(d: Drive, planned: PlannedSite, wave: string): void {
  const { options, log, commit } = d;
  const site = options.sites.get(planned.site);
  const desired = options.desired.get(planned.site);
  const generation = generationFor(commit, planned.hash);
  const started = d.now();
  if (!site || !desired) {
    failMissing(d, planned.site);
    return;
  }
  let settled = false;
  const abort = new AbortController();
  const timeoutMs = d.state.plan.siteTimeoutMs;
  const timer = d.setTimer(timeoutMs, () => {
    if (settled) return;
    settled = true;
    // Never confirm after this: the agent reverts a late apply at its own deadline.
    abort.abort();
    const error = `no outcome within the site timeout of ${timeoutMs} ms; retried on the next rollout`;
    log.warn({ site: planned.site, wave, commit, generation }, error);
    d.notice({
      type: 'siteOutcome',
      site: planned.site,
      wave,
      generation,
      outcome: 'timeout',
      durationMs: d.now() - started,
      error,
    });
    d.dispatch({ type: 'siteFailed', site: planned.site, kind: 'unreachable', error });
  });
  const call = d.transport.apply(site, desired, generation, d.state.plan.confirmWithinMs, abort.signal);
  const handled = call.then(
    (outcome) => {
      if (settled) {
        log.warn(
          { site: planned.site, wave, commit, generation, outcome: outcome.outcome },
          'late outcome after the site timeout (not confirmed by this rollout); ignored',
        );
        return;
      }
      settled = true;
      timer.cancel();
      reportApplyOutcome(d, planned.site, wave, generation, outcome, d.now() - started);
    },
    (e: unknown) => {
      if (settled) return;
      settled = true;
      timer.cancel();
      d.dispatch({
        type: 'siteFailed',
        site: planned.site,
        kind: 'failed',
        error: `this is a bug: ${String(e)}`,
      });
    },
  );
  d.track(handled);
}

/** An apply's outcome: logged, noticed, and fed to the reducer. */
function reportApplyOutcome(
  d: Drive,
  site: string,
  wave: string,
  generation: string,
  outcome: ApplyOutcome,
  durationMs: number,
): void {
  const error = outcome.error?.message;
  const fields = {
    site,
    wave,
    commit: d.commit,
    generation,
    outcome: outcome.outcome,
    changes: outcome.changes,
  };
  if (outcome.outcome === 'applied' || outcome.outcome === 'unchanged') d.log.info(fields, 'site confirmed');
  else d.log.warn({ ...fields, err: error }, 'site failed');
  d.notice({
    type: 'siteOutcome',
    site,
    wave,
    generation,
    outcome: outcome.outcome,
    durationMs,
    ...(error ? { error } : {}),
  });
  switch (outcome.outcome) {
    case 'applied':
    case 'unchanged':
      d.dispatch({ type: 'siteSucceeded', site, healthy: true });
      break;
    case 'unreachable':
    case 'unconfirmed':
    case 'refused':
    case 'failed':
      d.dispatch({ type: 'siteFailed', site, kind: outcome.outcome, ...(error ? { error } : {}) });
      break;
  }
}

/** Confirm a pending apply the agent holds (a resumed rollout): no second apply. */
function confirmSite(d: Drive, planned: PlannedSite, wave: string): void {
  const { options, log, commit } = d;
  const site = options.sites.get(planned.site);
  const generation = generationFor(commit, planned.hash);
  if (!site) {
    failMissing(d, planned.site);
    return;
  }
  const started = d.now();
  const handled = d.transport.confirm(site, generation).then(
    () => {
      log.info({ site: planned.site, wave, commit, generation }, 'pending apply confirmed after restart');
      d.notice({
        type: 'siteOutcome',
        site: planned.site,
        wave,
        generation,
        outcome: 'applied',
        durationMs: d.now() - started,
      });
      d.dispatch({ type: 'siteSucceeded', site: planned.site, healthy: true });
    },
    (e: unknown) => {
      const error = e instanceof Error ? e.message : String(e);
      log.warn({ site: planned.site, wave, commit, generation, err: error }, 'confirm after restart failed');
      d.notice({
        type: 'siteOutcome',
        site: planned.site,
        wave,
        generation,
        outcome: 'unconfirmed',
        durationMs: d.now() - started,
        error,
      });
      d.dispatch({ type: 'siteFailed', site: planned.site, kind: 'unconfirmed', error });
    },
  );
  d.track(handled);
}

/** When the bake ends: check the wave's sites, then tick the reducer past the bake. */
function scheduleBakeEnd(d: Drive, wave: string, until: number): void {
  d.setTimer(Math.max(0, until - d.now()), () => {
    d.track(checkBake(d, wave).then(() => d.dispatch({ type: 'tick', now: Math.max(d.now(), until) })));
  });
}

/**
 * After the bake: ask each confirmed site of the wave again; one that no longer runs the
 * rollout's state, reverted it, or has a provider down that was up before is unhealthy.
 */
async function checkBake(d: Drive, wave: string): Promise<void> {
  const { options, log, commit } = d;
  const planned = d.state.plan.waves.find((w) => w.name === wave)?.sites ?? [];
  const confirmed = planned.filter((p) => siteProgress(d.state, p.site)?.status === 'confirmed');
  await mapWithConcurrency(confirmed, options.concurrency ?? 32, async (p) => {
    const site = options.sites.get(p.site);
    if (!site) return;
    const generation = generationFor(commit, p.hash);
    let reason: string | undefined;
    try {
      const before = options.healthBefore?.get(p.site) ?? healthOf(options.reports.get(p.site));
      reason = unhealthyReason(before, await d.transport.status(site), p.hash, generation);
    } catch (e) {
      reason = `status after the bake failed: ${e instanceof Error ? e.message : String(e)}`;
    }
    if (reason !== undefined) {
      log.warn({ site: p.site, wave, commit, generation, reason }, 'site unhealthy after the bake');
      d.notice({ type: 'unhealthy', site: p.site, wave, reason });
      d.dispatch({ type: 'siteUnhealthy', site: p.site, error: reason });
    }
  });
}

/** Put a site back on its previous desired state (rollbackOnFailure). */
function rollbackSite(d: Drive, planned: PlannedSite): void {
  const { options, log, commit } = d;
  const fail = (error: string) => {
    log.error({ site: planned.site, commit }, `rollback failed: ${error}`);
    d.notice({ type: 'rolledBack', site: planned.site, ok: false, error });
    d.dispatch({ type: 'siteRolledBack', site: planned.site, ok: false, error });
  };
  const site = options.sites.get(planned.site);
  if (!site || planned.previousHash === undefined || !options.previousDesired) {
    queueMicrotask(() => fail('the previous desired state is not known'));
    return;
  }
  const previousHash = planned.previousHash;
  const work = options
    .previousDesired(planned.site, previousHash)
    .then(async (previous) => {
      if (!previous)
        return fail(`no commit found that compiles to the previous state ${previousHash.slice(0, 12)}`);
      const generation = generationFor(commit, previous.hash, 'rollback');
      const outcome = await d.transport.apply(site, previous, generation, d.state.plan.confirmWithinMs);
      if (outcome.outcome === 'applied' || outcome.outcome === 'unchanged') {
        log.info({ site: planned.site, commit, generation }, 'rolled back to the previous state');
        d.notice({ type: 'rolledBack', site: planned.site, ok: true, generation, hash: previous.hash });
        d.dispatch({ type: 'siteRolledBack', site: planned.site, ok: true });
      } else fail(`${outcome.outcome}: ${outcome.error?.message ?? ''}`);
    })
    .catch((e: unknown) => fail(e instanceof Error ? e.message : String(e)));
  d.track(work);
}
