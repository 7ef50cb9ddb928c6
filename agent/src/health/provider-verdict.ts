/**
 * The per-provider health state machine. Pure: a probe round goes in (with its time), the
 * new state and at most one transition come out. The shell (HealthMonitor) owns timers.
 *
 * - A round succeeds when at least `minTargetsUp` targets answered (capped at the number of
 *   targets, so the gateway-only default needs its one answer).
 * - `failAfter` failed rounds in a row declare the provider down, `recoverAfter` good rounds
 *   in a row bring it back; any round of the other kind resets the streak. The asymmetry is
 *   the hysteresis: a link that flaps faster than both thresholds never changes verdict.
 * - Before the first verdict the provider is `unknown` and counts as up (a restarting agent
 *   must not fail over): one good round makes it `up`, `failAfter` bad ones `down`.
 * - A probe that could not run at all (`ping` or `socat` missing or not executable) is
 *   inconclusive: it says nothing about the uplink, so it is left out of the round, the
 *   streaks and the window; a round of only such probes changes nothing but `probeError`
 *   (D83) — except that a `down` verdict is not kept on no evidence: after `failAfter` such
 *   rounds in a row it is released to `unknown` (which counts as up), so an uplink that was
 *   down when `ping` went missing is not routed around until the agent restarts.
 */
import type { HealthTransition, ProviderHealth } from '../model/protocol.js';

export type Verdict = 'up' | 'down' | 'unknown';

export interface Thresholds {
  readonly failAfter: number;
  readonly recoverAfter: number;
  readonly minTargetsUp: number;
}

export interface ProbeOutcome {
  readonly target: string;
  readonly ok: boolean;
  /** Round trip when answered. */
  readonly rttMs?: number;
  /** Why it failed (`no reply within 400ms`, `ping: connect: Network is unreachable`). */
  readonly error?: string;
  /** The probe could not run (spawn failed): neither answered nor failed (`error` says why). */
  readonly inconclusive?: boolean;
}

export interface VerdictState {
  readonly verdict: Verdict;
  readonly since: number | null;
  readonly failStreak: number;
  readonly okStreak: number;
  /** The outcomes of the last `WINDOW_ROUNDS` rounds, oldest first, for latency and loss. */
  readonly window: readonly (readonly ProbeOutcome[])[];
  /** Newest last, at most `MAX_TRANSITIONS`. */
  readonly transitions: readonly HealthTransition[];
  /** Why the last round had a probe that could not run; null when every probe ran. */
  readonly probeError: string | null;
  /** Rounds in a row in which no probe could run. */
  readonly unrunStreak: number;
}

export const WINDOW_ROUNDS = 20;
export const MAX_TRANSITIONS = 10;

export const initialVerdict: VerdictState = {
  verdict: 'unknown',
  since: null,
  failStreak: 0,
  okStreak: 0,
  window: [],
  transitions: [],
  probeError: null,
  unrunStreak: 0,
};

export interface RoundResult {
  readonly state: VerdictState;
  readonly transition?: HealthTransition;
}

/** Folds one probe round into the state. `outcomes` is one entry per target (empty: no target). */
export function recordRound(
  state: VerdictState,
  round: readonly ProbeOutcome[],
  thresholds: Thresholds,
  at: number,
): RoundResult {
  const unrun = round.find((o) => o.inconclusive === true);
  const probeError = unrun === undefined ? null : (unrun.error ?? 'the probe could not run');
  const outcomes = round.filter((o) => o.inconclusive !== true);
  // Only probes that could not run: nothing is known about the uplink, so nothing moves —
  // but a `down` is not held on no evidence for longer than it took to declare it.
  if (round.length > 0 && outcomes.length === 0) {
    const unrunStreak = state.unrunStreak + 1;
    const next = { ...state, probeError, unrunStreak };
    if (state.verdict !== 'down' || unrunStreak < thresholds.failAfter) return { state: next };
    const transition: HealthTransition = {
      at,
      from: 'down',
      to: 'unknown',
      reason: `${unrunStreak} rounds in a row without a probe that could run (${probeError}): released, unknown counts as up`,
    };
    return {
      state: {
        ...next,
        verdict: 'unknown',
        since: at,
        failStreak: 0,
        okStreak: 0,
        transitions: [...state.transitions, transition].slice(-MAX_TRANSITIONS),
      },
      transition,
    };
  }
  const answered = outcomes.filter((o) => o.ok).length;
  const needed = Math.max(1, Math.min(thresholds.minTargetsUp, outcomes.length));
  const ok = outcomes.length > 0 && answered >= needed;
  const failStreak = ok ? 0 : state.failStreak + 1;
  const okStreak = ok ? state.okStreak + 1 : 0;
  const window = [...state.window, outcomes].slice(-WINDOW_ROUNDS);

  let to: Verdict = state.verdict;
  let reason = '';
  if (ok && state.verdict === 'unknown') {
    to = 'up';
    reason = `first round answered (${answered}/${outcomes.length} targets)`;
  } else if (ok && state.verdict === 'down' && okStreak >= thresholds.recoverAfter) {
    to = 'up';
    reason = `${okStreak} good rounds in a row (${answered}/${outcomes.length} targets answered)`;
  } else if (!ok && state.verdict !== 'down' && failStreak >= thresholds.failAfter) {
    to = 'down';
    reason = `${failStreak} failed rounds in a row: ${describeFailure(outcomes, needed)}`;
  }

  const next = { ...state, failStreak, okStreak, window, probeError, unrunStreak: 0 };
  if (to === state.verdict) return { state: next };
  const transition: HealthTransition = { at, from: state.verdict, to, reason };
  return {
    state: {
      ...next,
      verdict: to,
      since: at,
      transitions: [...state.transitions, transition].slice(-MAX_TRANSITIONS),
    },
    transition,
  };
}

function describeFailure(outcomes: readonly ProbeOutcome[], needed: number): string {
  if (outcomes.length === 0) return 'no probe target';
  const answered = outcomes.filter((o) => o.ok).length;
  const failures = outcomes
    .filter((o) => !o.ok)
    .map((o) => `${o.target} ${o.error ?? 'no reply'}`)
    .join('; ');
  return `${answered}/${outcomes.length} targets answered, ${needed} needed (${failures})`;
}

/** Median round trip of the answered probes in the window; null when none answered. */
export function medianLatency(state: VerdictState): number | null {
  const rtts = state.window
    .flat()
    .flatMap((o) => (o.ok && o.rttMs !== undefined ? [o.rttMs] : []))
    .sort((a, b) => a - b);
  if (rtts.length === 0) return null;
  const mid = Math.floor(rtts.length / 2);
  const median = rtts.length % 2 === 1 ? rtts[mid]! : (rtts[mid - 1]! + rtts[mid]!) / 2;
  return Math.round(median * 1000) / 1000;
}

/** Share of probes in the window without an answer, 0..1 (0 when nothing was probed yet). */
export function lossRatio(state: VerdictState): number {
  const all = state.window.flat();
  if (all.length === 0) return 0;
  return all.filter((o) => !o.ok).length / all.length;
}

/** The `status` view of one provider. */
export function toProviderHealth(name: string, state: VerdictState, probing: boolean): ProviderHealth {
  return {
    name,
    state: state.verdict,
    since: state.since,
    probing,
    latencyMs: medianLatency(state),
    loss: lossRatio(state),
    transitions: [...state.transitions],
    // Only when there is one (and probing goes on), so a controller that predates the field
    // still accepts the answer.
    ...(state.probeError === null || !probing ? {} : { probeError: state.probeError }),
  };
}
