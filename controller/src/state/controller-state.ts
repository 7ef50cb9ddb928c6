/**
 * The controller's persisted state: per site the last attempted and last applied
 * generation with their outcome, the rollout in progress (the state machine's state, as
 * is), the last good commit, and the last refused commit with its diagnostics.
 *
 * It is a cache. Every agent knows what it has applied, so a controller that lost this
 * file rebuilds from the fleet, and one that kept it still believes the agents over it.
 *
 * Resume after a restart (crash, SIGKILL, upgrade):
 * 1. load this file (a corrupt one is an error that says what to do, not a crash);
 * 2. ask every site of the loaded rollout for its status (applied and pending hash);
 * 3. `resumeRollout(state.rollout, reported)` (rollout/resume-rollout.ts) merges those
 *    reports in — applied with the plan's hash = confirmed and never re-applied; a pending
 *    apply of the plan's hash = confirm only; anything else that was in flight = applied
 *    again, never skipped — and returns the actions that continue the rollout;
 * 4. if the branch has moved meanwhile, send `newCommit`: it supersedes at the next wave
 *    boundary like any other new commit.
 *
 * The bake check's health baseline (which providers were up before a site's apply) is the
 * one thing the agents cannot tell a restarted controller: after the apply they report the
 * health the change left. So it is persisted with the rollout (`healthBaseline`, D86) before
 * the first apply, used on resume, and dropped once that rollout is finished or replaced.
 *
 * Writes are atomic (write-file-atomic.ts). ControllerStateStore coalesces them: at most
 * one write in flight and the newest state queued behind it. Losing the last few updates
 * in a crash is safe precisely because resume trusts the agents, not this file.
 */
import { readFile } from 'node:fs/promises';
import type { z } from 'zod';
import { UplinkError } from '../errors.js';
import type { ReportedSite, RolloutTrigger } from '../rollout/plan-rollout.js';
import { isTerminal, type RolloutState } from '../rollout/step-rollout.js';
import type { Diagnostic } from '../spec/diagnostic.js';
import { CONTROLLER_STATE_VERSION, controllerState, type siteOutcome } from './controller-state-schema.js';
import { writeFileAtomic } from './write-file-atomic.js';

export type SiteOutcome = z.infer<typeof siteOutcome>;

export interface SiteRecord {
  readonly generation: string;
  readonly hash: string;
  readonly commit: string;
  /** Unix time, ms. */
  readonly at: number;
  readonly outcome: SiteOutcome;
  readonly error?: string;
}

export interface SiteHistory {
  readonly lastAttempted?: SiteRecord;
  readonly lastApplied?: SiteRecord;
  /** Reconciliation's backoff: failed tries of `hash` and when the next may start (D125). */
  readonly reconcile?: ReconcileBackoff;
}

export interface ReconcileBackoff {
  readonly hash: string;
  readonly failures: number;
  readonly nextAt: number;
}

export interface FinishedRollout {
  readonly commit: string;
  readonly phase: 'done' | 'halted' | 'superseded' | 'suspended';
  readonly trigger: RolloutTrigger;
  readonly at: number;
}

export interface InvalidCommit {
  readonly commit: string;
  readonly at: number;
  readonly reason: 'invalid-spec' | 'signature';
  readonly message: string;
  readonly diagnostics: readonly Diagnostic[];
}

/**
 * Per planned site of the rollout of `commit`, the providers up before the rollout applied
 * it (sites with none up are left out): what the bake check compares against.
 */
export interface HealthBaseline {
  readonly commit: string;
  readonly upBefore: Readonly<Record<string, readonly string[]>>;
}

export interface ControllerState {
  readonly version: typeof CONTROLLER_STATE_VERSION;
  readonly sites: Readonly<Record<string, SiteHistory>>;
  readonly rollout: RolloutState | null;
  /** The baseline of the rollout in progress; absent when none is needed (or an older file). */
  readonly healthBaseline?: HealthBaseline;
  readonly lastGoodCommit: string | null;
  /** When the commit in force was recorded (absent in older files). */
  readonly lastGoodCommitAt?: number;
  /** The last rollout that finished (absent before the first). */
  readonly lastRollout?: FinishedRollout;
  /** The newest refused commit, while it is newer than the commit in force (a good commit clears it). */
  readonly lastInvalidCommit: InvalidCommit | null;
}

/** The file name inside the controller's state dir. */
export const CONTROLLER_STATE_FILE = 'controller-state.json';

export function emptyControllerState(): ControllerState {
  return {
    version: CONTROLLER_STATE_VERSION,
    sites: {},
    rollout: null,
    lastGoodCommit: null,
    lastInvalidCommit: null,
  };
}

/** Outcomes after which the site runs the attempted generation. */
const APPLIED: ReadonlySet<SiteOutcome> = new Set(['applied', 'unchanged', 'unhealthy']);

/**
 * Records one attempt on a site: always its lastAttempted; its lastApplied too when the
 * site now runs that generation (applied, unchanged, or applied but unhealthy).
 * A rollback is recorded by the caller as an attempt of the previous generation with
 * outcome `rolled-back`, which also becomes lastApplied.
 */
export function recordSiteOutcome(state: ControllerState, site: string, record: SiteRecord): ControllerState {
  const prior = state.sites[site] ?? {};
  const applied = APPLIED.has(record.outcome) || record.outcome === 'rolled-back';
  const next: SiteHistory = { ...prior, lastAttempted: record, ...(applied ? { lastApplied: record } : {}) };
  return { ...state, sites: { ...state.sites, [site]: next } };
}

/**
 * The state with `rollout` in progress. The health baseline stays only while it belongs to
 * a rollout that still runs: a finished, halted or superseded rollout, or one of another
 * commit, drops it, so the file never carries a baseline nothing will read.
 */
export function withRollout(state: ControllerState, rollout: RolloutState | null): ControllerState {
  const { healthBaseline, ...rest } = state;
  const keep =
    healthBaseline !== undefined &&
    rollout !== null &&
    !isTerminal(rollout) &&
    rollout.plan.commit === healthBaseline.commit;
  return { ...rest, rollout, ...(keep ? { healthBaseline } : {}) };
}

/** Records the baseline of the rollout about to start (before its first apply). */
export function withHealthBaseline(state: ControllerState, baseline: HealthBaseline): ControllerState {
  return { ...state, healthBaseline: baseline };
}

/**
 * The commit in force. A refusal recorded before it is over (the fix is in force), so it is
 * cleared: an old refusal never stays red once a good commit followed it.
 */
export function recordGoodCommit(state: ControllerState, commit: string, at?: number): ControllerState {
  const same = state.lastGoodCommit === commit;
  return {
    ...state,
    lastGoodCommit: commit,
    ...(at !== undefined && !same ? { lastGoodCommitAt: at } : {}),
    lastInvalidCommit: same ? state.lastInvalidCommit : null,
  };
}

/** A rollout finished (done, halted, superseded or suspended). */
export function recordFinishedRollout(state: ControllerState, finished: FinishedRollout): ControllerState {
  return { ...state, lastRollout: finished };
}

/** The site's reconciliation backoff (undefined: none). */
export function withReconcileBackoff(
  state: ControllerState,
  site: string,
  backoff: ReconcileBackoff | undefined,
): ControllerState {
  const { reconcile: _, ...prior } = state.sites[site] ?? {};
  return {
    ...state,
    sites: { ...state.sites, [site]: { ...prior, ...(backoff ? { reconcile: backoff } : {}) } },
  };
}

export function recordInvalidCommit(state: ControllerState, invalid: InvalidCommit): ControllerState {
  return { ...state, lastInvalidCommit: invalid };
}

/**
 * What the controller last saw applied, as reports for planning when an agent cannot be
 * asked (reachable: false). A fresh report from the agent always replaces this.
 */
export function cachedReports(state: ControllerState): Map<string, ReportedSite> {
  const reports = new Map<string, ReportedSite>();
  for (const [site, history] of Object.entries(state.sites)) {
    reports.set(site, {
      reachable: false,
      ...(history.lastApplied ? { appliedHash: history.lastApplied.hash } : {}),
    });
  }
  return reports;
}

/** Loads the state; a missing file is an empty state, a corrupt one an error saying what to do. */
export async function readControllerState(file: string): Promise<ControllerState> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return emptyControllerState();
    throw new UplinkError('failed', `${file}: cannot read the controller state: ${(e as Error).message}`);
  }
  return parseControllerState(file, text);
}

/** Parses and validates the state file's text (exported for tests and `uplink status --state`). */
export function parseControllerState(file: string, text: string): ControllerState {
  const advice =
    'move the file aside and restart: the controller rebuilds its state from what the agents report';
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new UplinkError(
      'failed',
      `${file}: controller state is corrupt (not JSON: ${(e as Error).message}); ${advice}`,
    );
  }
  const version = (json as { version?: unknown } | null)?.version;
  if (typeof version === 'number' && version !== CONTROLLER_STATE_VERSION) {
    throw new UplinkError(
      'failed',
      `${file}: controller state version ${version} is not ${CONTROLLER_STATE_VERSION} (written by another Uplink version); ${advice}`,
    );
  }
  const parsed = controllerState.safeParse(json);
  if (!parsed.success) {
    const first = parsed.error.issues[0]!;
    const where = first.path.length > 0 ? first.path.join('.') : '(top level)';
    const more = parsed.error.issues.length > 1 ? ` (and ${parsed.error.issues.length - 1} more)` : '';
    throw new UplinkError(
      'failed',
      `${file}: controller state is corrupt at ${where}: ${first.message}${more}; ${advice}`,
    );
  }
  return parsed.data as ControllerState;
}

export async function writeControllerState(file: string, state: ControllerState): Promise<void> {
  await writeFileAtomic(file, `${JSON.stringify(state)}\n`);
}

/**
 * Owns the state file for the daemon: `update` changes the in-memory state at once and
 * schedules a write; writes never overlap and a burst of updates costs at most two writes.
 * `flush` waits until the newest state is on disk.
 */
export class ControllerStateStore {
  #state: ControllerState;
  #dirty = false;
  #writing: Promise<void> | null = null;
  #lastError: unknown = null;

  private constructor(
    readonly file: string,
    state: ControllerState,
  ) {
    this.#state = state;
  }

  static async open(file: string): Promise<ControllerStateStore> {
    return new ControllerStateStore(file, await readControllerState(file));
  }

  get state(): ControllerState {
    return this.#state;
  }

  /** Applies a pure change and schedules a write of the result. */
  update(change: (state: ControllerState) => ControllerState): ControllerState {
    this.#state = change(this.#state);
    this.#dirty = true;
    if (!this.#writing) this.#writing = this.#drain();
    return this.#state;
  }

  /** Resolves once everything updated so far is on disk; rejects if the newest state could not be written. */
  async flush(): Promise<void> {
    if (this.#dirty && !this.#writing) this.#writing = this.#drain();
    while (this.#writing) await this.#writing;
    if (this.#dirty && this.#lastError) throw this.#lastError;
  }

  async #drain(): Promise<void> {
    try {
      while (this.#dirty) {
        this.#dirty = false;
        try {
          await writeControllerState(this.file, this.#state);
          this.#lastError = null;
        } catch (e) {
          this.#lastError = new UplinkError(
            'failed',
            `${this.file}: cannot write the controller state: ${(e as Error).message}`,
          );
          // The newest state stays unwritten; the next update or flush tries again.
          this.#dirty = true;
          return;
        }
      }
    } finally {
      this.#writing = null;
    }
  }
}
