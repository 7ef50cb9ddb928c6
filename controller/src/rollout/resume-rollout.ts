/**
 * Resuming a persisted rollout after a controller restart. The controller's state is a
 * cache; what the agents report is the truth:
 *
 * - a site the agent reports applied with the plan's hash is `confirmed` (never re-applied);
 * - a site whose agent holds a *pending* apply of the plan's hash (the controller died
 *   between apply and confirm) is confirmed only: a `confirm` action, no second apply (the
 *   agent refuses an apply while one is pending);
 * - a site that was `applying` with any other report (or none) goes back to `pending` and is
 *   applied again — never skipped;
 * - a site recorded as failed/unreachable/reverted that now reports the plan's hash is
 *   `confirmed` (the result was lost, not the apply);
 * - `confirmed` sites stay confirmed whatever the agent says now: a change made since is
 *   drift, handled by drift polling, not by re-running this rollout;
 * - in a halted, done or superseded rollout nothing is confirmed any more: a pending apply
 *   is left to the agent's deadline and the site counts as `reverted`;
 * - unreachable or missing reports change nothing but the `applying` → `pending` step.
 */
import type { ReportedSite } from './plan-rollout.js';
import {
  continueRollout,
  indexPlan,
  isTerminal,
  type RolloutAction,
  type RolloutState,
  type RolloutStep,
  type SiteProgress,
} from './step-rollout.js';

export interface MergedRollout {
  readonly state: RolloutState;
  /** Sites left `applying` whose pending apply must be confirmed (not applied again). */
  readonly confirm: readonly string[];
}

export function mergeReportedIntoRollout(
  state: RolloutState,
  reported: ReadonlyMap<string, ReportedSite>,
): MergedRollout {
  const perSite: SiteProgress[] = state.perSite.slice();
  const confirm: string[] = [];
  const terminal = isTerminal(state);
  const planned = indexPlan(state.plan).sites;
  planned.forEach(({ site, hash }, i) => {
    const p = perSite[i]!;
    const report = reported.get(site);
    const fresh = report?.reachable === true ? report : undefined;
    const applied = fresh?.appliedHash === hash;
    const pending = fresh?.pendingHash === hash;
    const { failure: _f, error: _e, ...clean } = p;
    switch (p.status) {
      case 'applying':
      case 'pending':
        if (applied) perSite[i] = { ...clean, status: 'confirmed' };
        else if (pending && terminal) {
          // Nothing more is rolled out: let the agent's deadline revert it.
          perSite[i] = {
            ...clean,
            status: 'reverted',
            failure: 'unconfirmed',
            error: `left unconfirmed: the rollout is ${state.phase}; the agent reverts it at its deadline`,
          };
        } else if (pending) {
          perSite[i] = { ...clean, status: 'applying', attempts: Math.max(1, p.attempts) };
          confirm.push(site);
        } else if (p.status === 'applying') perSite[i] = { ...clean, status: 'pending' };
        break;
      case 'unreachable':
      case 'reverted':
        if (applied) perSite[i] = { ...clean, status: 'confirmed' };
        break;
      case 'failed':
        // An unhealthy site did apply the plan's hash; its failure stands.
        if (applied && p.failure !== 'unhealthy') perSite[i] = { ...clean, status: 'confirmed' };
        break;
      case 'confirmed':
      case 'rolled-back':
        break;
    }
  });
  return { state: { ...state, perSite }, confirm };
}

/**
 * Merge the agents' reports into a loaded rollout and return the actions that continue it:
 * `confirm` for sites holding a pending apply of the plan's hash, then whatever the state
 * machine does next (fill slots, restart an unstarted bake, repeat unfinished rollbacks).
 */
export function resumeRollout(state: RolloutState, reported: ReadonlyMap<string, ReportedSite>): RolloutStep {
  const merged = mergeReportedIntoRollout(state, reported);
  const actions: RolloutAction[] = [];
  if (merged.confirm.length > 0) {
    for (const wave of state.plan.waves) {
      const sites = wave.sites.filter((s) => merged.confirm.includes(s.site));
      if (sites.length > 0) actions.push({ type: 'confirm', wave: wave.name, sites });
    }
  }
  const next = continueRollout(merged.state);
  return { state: next.state, actions: [...actions, ...next.actions] };
}
