/**
 * The bake check's health baseline, kept in the controller state across a restart (D86).
 *
 * The check fails a site only for a provider that was up before the apply and is down after
 * it (an uplink that was already down must not fail a rollout). A restarted controller can
 * ask the agents what they run, but not what their health was before the apply: after it
 * they report the health the change left, so a provider the change broke would pass as
 * "already down". The baseline is therefore captured from the reports the rollout was
 * planned with, persisted before the first apply, and read back on resume.
 */
import type { RolloutPlan, RolloutState } from '../rollout/index.js';
import type { HealthBaseline } from '../state/index.js';
import { healthOf, type ProviderHealthBrief, type SiteReport } from './site-report.js';

/** Per planned site of `plan`, the providers up in `reports` (the ones the bake check will compare). */
export function captureHealthBaseline(
  plan: RolloutPlan,
  reports: ReadonlyMap<string, SiteReport>,
): HealthBaseline {
  const upBefore: Record<string, string[]> = {};
  for (const wave of plan.waves) {
    for (const { site } of wave.sites) {
      const up = (healthOf(reports.get(site)) ?? []).filter((h) => h.state === 'up').map((h) => h.name);
      if (up.length > 0) upBefore[site] = up;
    }
  }
  return { commit: plan.commit, upBefore };
}

/**
 * The resumed rollout's health before its applies, per planned site, from the persisted
 * baseline; undefined when none was persisted for this rollout (a state file written before
 * D86), and the caller falls back to the reports after the restart.
 */
export function healthBeforeOf(
  rollout: RolloutState,
  baseline: HealthBaseline | undefined,
): Map<string, ProviderHealthBrief[]> | undefined {
  if (baseline?.commit !== rollout.plan.commit) return undefined;
  return new Map(
    rollout.perSite.map((p) => [
      p.site,
      (baseline.upBefore[p.site] ?? []).map((name) => ({ name, state: 'up' as const })),
    ]),
  );
}
